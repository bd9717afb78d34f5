"""`ivr bench tts`: how long a dynamic prompt (one never rendered before, like a balance) takes to render with
the service's renderer (one long-lived pyttsx3 worker), against the baseline of a fresh Python child per prompt
(how prompts were rendered before), measured in the same process on the same texts."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ivr.speech.tts import Pyttsx3Renderer

TEXTS = [f"Your balance is {d} dollars and {c} cents, due on December {day}." for d, c, day in
         zip(range(41, 61), range(10, 30), range(1, 21), strict=True)]


def _child_per_prompt(text: str, out: Path) -> None:
    """The baseline: a new Python process that imports pyttsx3 and renders one prompt."""
    code = ("import sys, pyttsx3; e = pyttsx3.init('espeak'); e.setProperty('rate', 165); "
            "e.save_to_file(sys.stdin.read(), sys.argv[1]); e.runAndWait()")
    subprocess.run([sys.executable, "-c", code, str(out)], input=text, text=True, check=True, capture_output=True)


def run(prompts: int = 20) -> dict[str, float]:
    texts = TEXTS[:prompts]
    renderer = Pyttsx3Renderer()
    renderer.render("warm up", voice="en-us", rate=165)  # the worker starts once per process, not per prompt
    worker = []
    for text in texts:
        started = time.perf_counter()
        renderer.render(text, voice="en-us", rate=165)
        worker.append((time.perf_counter() - started) * 1000)
    renderer.close()
    baseline = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(texts[: max(3, prompts // 4)]):
            started = time.perf_counter()
            _child_per_prompt(text, Path(tmp) / f"{index}.wav")
            baseline.append((time.perf_counter() - started) * 1000)
    figures = {"worker_p50_ms": float(np.median(worker)), "worker_p95_ms": float(np.percentile(worker, 95)),
               "child_per_prompt_p50_ms": float(np.median(baseline))}
    figures["speed_up"] = figures["child_per_prompt_p50_ms"] / figures["worker_p50_ms"]
    print(f"dynamic prompt render, {len(worker)} prompts: p50 {figures['worker_p50_ms']:.0f} ms, "
          f"p95 {figures['worker_p95_ms']:.0f} ms (target ≤ 100 ms)")
    print(f"baseline, a Python child per prompt ({len(baseline)} prompts): p50 "
          f"{figures['child_per_prompt_p50_ms']:.0f} ms → {figures['speed_up']:.0f}× faster")
    return figures
