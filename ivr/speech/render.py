"""A long-lived pyttsx3 (espeak-ng) render worker: one JSON request per line on stdin
({"voice", "rate", "out", "text"}), one line back per request ("ok" or "error: …"). One process renders many
prompts (≈10 ms each, not a Python start-up per prompt); the parent kills and restarts it if it ever hangs.

    python ivr/speech/render.py     (run as a file, so it imports only pyttsx3: ~0.3 s to start)
"""
from __future__ import annotations

import json
import os
import sys

BACKGROUND = 10  # niceness: rendering is background work (a webhook without its prompt answers with <Say>), so
# under a burst of calls the webhooks get the CPU first (~11 ms of CPU per prompt; a cold cache at 200 calls at once
# renders hundreds, one render worker per gunicorn worker)


def main() -> int:
    os.nice(BACKGROUND)
    import pyttsx3

    channel, sys.stdout = sys.stdout, sys.stderr  # the driver prints ("Audio saved to …"): keep it off the channel
    engine = pyttsx3.init("espeak")
    ids = [v.id for v in engine.getProperty("voices")]
    for line in sys.stdin:
        try:
            job = json.loads(line)
            voice = job["voice"]
            match = next((i for i in ids if i == voice or i.endswith(f"/{voice}")), None)
            if match:
                engine.setProperty("voice", match)
            engine.setProperty("rate", int(job["rate"]))
            for _attempt in range(3):  # the driver's first run in a process can return before writing the file
                engine.save_to_file(job["text"], job["out"])
                engine.runAndWait()
                if os.path.exists(job["out"]) and os.path.getsize(job["out"]) > 44:
                    break
            answer = "ok" if os.path.exists(job["out"]) else "error: no audio written"
        except Exception as exc:  # one bad request must not end the worker
            answer = f"error: {exc!r}"
        channel.write(answer.replace("\n", " ") + "\n")
        channel.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
