"""`ivr bench load`: whole calls with varied wording against a real server — gunicorn (2 gthread workers with the
Dockerfile's threads and connection bound) on 127.0.0.1 with a real redis-server when one is installed, a cold
prompt cache, Gather mode with on-prem <Play> prompts — at rising concurrency. Prints webhook latency p50/p95/p99,
the share over Twilio's 15 s limit, and errors. With `flood`, a replay attacker meanwhile holds that many copies of
one captured, signed WebSocket upgrade open (re-opening each as the server closes it): the webhooks must not starve.
Local only and bounded: nothing leaves 127.0.0.1."""
from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import simple_websocket
from twilio.request_validator import RequestValidator

from ivr.config import ROOT
from ivr.grammar import load_grammar
from ivr.testing.simulator import CallerTurn, HttpTransport, TwilioSimulator, scripted_caller

TOKEN = "bench-load-token"
DOCKERFILE_GUNICORN = ("--worker-class", "gthread", "--threads", "32", "--worker-connections", "64")  # as it serves
FILLERS = ("", "um ", "yeah so ", "hi, ", "hello I was wondering ", "okay ")
ENDINGS = ("", " please", " thanks", " right now", " today", " again")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def varied_requests(count: int, seed: int = 7) -> list[str]:
    """Caller first turns in varied wording: grammar phrases with fillers and endings (so the prompt cache and the
    classifier see new text, as on a real Monday)."""
    grammar = load_grammar(ROOT / "grammars" / "en-US" / "hotline.yaml")
    phrases = [p for intent in grammar.intents.values() for p in intent.phrases]
    rng = random.Random(seed)
    return [f"{rng.choice(FILLERS)}{rng.choice(phrases)}{rng.choice(ENDINGS)}" for _ in range(count)]


class TimedTransport(HttpTransport):
    def __init__(self, timings: list[float], errors: list[str], lock: threading.Lock):
        self.timings, self.errors, self.lock = timings, errors, lock
        self.answered = self.to_a_human = 0  # first webhooks of calls; those answered with a queue or a dial

    def post(self, url, params, headers):
        started = time.perf_counter()
        try:
            status, body = super().post(url, params, headers)
        except (OSError, http.client.HTTPException) as exc:
            with self.lock:
                self.errors.append(f"{url}: {type(exc).__name__}")
            return 200, "<Response/>"
        with self.lock:
            self.timings.append(time.perf_counter() - started)
            if status >= 500:
                self.errors.append(f"{url}: HTTP {status}")
            if "/voice/incoming" in url:
                self.answered += 1
                self.to_a_human += "<Enqueue" in body or "<Dial" in body
        return status, body


def start_server(workdir: Path, cache_dir: Path | None = None, *, wait: bool = True
                 ) -> tuple[str, list[subprocess.Popen]]:
    processes: list[subprocess.Popen] = []
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "IVR_API_TOKEN": TOKEN, "IVR_SELFSERVICE": "demo",
           "IVR_SPEECH_MODE": "gather", "IVR_GATHER_PROMPTS": "play", "IVR_AUDIO_DIR": str(workdir / "audio"),
           "IVR_SPOOL_DIR": str(workdir / "spool"), "IVR_LOG_LEVEL": "WARNING", "IVR_SECRET_KEY": TOKEN,
           "IVR_CACHE_DIR": str(cache_dir or workdir / "cache")}
    workers = "1"
    if shutil.which("redis-server"):
        redis_port = free_port()
        processes.append(subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        workers = "2"  # the embedded store lives in one process
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env["IVR_PUBLIC_URL"] = url
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *DOCKERFILE_GUNICORN, "--workers", workers,
         "--timeout", "60", "app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if wait:
        wait_for(url + "/readyz")
    return url, processes


def wait_for(url: str, *, timeout_s: float = 180) -> float:
    """Seconds until `url` answers 200 (polled every 50 ms: a start-up, not a measurement of the probe)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 in {timeout_s:.0f} s")


def place(transport: TimedTransport, url: str, text: str) -> None:
    """One whole call: the varied request, then whatever the dialog asks (yes, an account number, no)."""
    simulator = TwilioSimulator(transport, auth_token=TOKEN, base_url=url)
    simulator.place_call(scripted_caller([CallerTurn(say=text), CallerTurn(say="yes"), CallerTurn(dtmf="12345678"),
                                          CallerTurn(say="no")]))


class UpgradeFlood:
    """Copies of one captured, signed `/media` upgrade held open by `sockets` threads; each re-opens its socket as
    soon as the server closes or refuses it."""

    def __init__(self, url: str, sockets: int):
        self.url = url.replace("http", "ws") + "/media"
        self.headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(self.url, {})}
        self.opened = self.refused = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.hold, daemon=True) for _ in range(sockets)]

    def __enter__(self) -> UpgradeFlood:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()

    def hold(self) -> None:
        while not self.stopping.is_set():
            try:
                client = simple_websocket.Client.connect(self.url, headers=self.headers)
            except (simple_websocket.ConnectionError, OSError):
                with self.lock:
                    self.refused += 1
                self.stopping.wait(0.1)
                continue
            with self.lock:
                self.opened += 1
            try:
                while not self.stopping.is_set():
                    client.receive(timeout=0.5)
                client.close()
            except simple_websocket.ConnectionClosed:
                pass  # the server closed it (no `start` in time): open another


def run(concurrency: tuple[int, ...] = (50, 100, 200), *, flood: int = 0,
        hung_redis: bool = False) -> dict[int, dict[str, float]]:
    """With `hung_redis`, the redis-server is frozen (SIGSTOP) while the calls run: every webhook must still be
    answered, fast, each call sent to an agent's queue."""
    figures: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url, processes = start_server(Path(tmp))
        print(f"server: gunicorn gthread at {url}, {'real redis-server' if len(processes) == 2 else 'embedded store'}")
        if hung_redis and len(processes) < 2:
            raise RuntimeError("--hung-redis needs redis-server installed")
        try:
            for calls in concurrency:
                if hung_redis:
                    os.kill(processes[0].pid, signal.SIGSTOP)
                    try:
                        figures[calls] = place_calls(url, calls)
                    finally:
                        os.kill(processes[0].pid, signal.SIGCONT)
                    time.sleep(6)  # the workers' circuit breakers close again before the next level
                elif flood:
                    with UpgradeFlood(url, flood) as attack:
                        figures[calls] = place_calls(url, calls)
                    print(f"     … meanwhile {flood} replayed upgrades: {attack.opened} sockets opened, "
                          f"{attack.refused} refused")
                else:
                    figures[calls] = place_calls(url, calls)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=30)
    return figures


def place_calls(url: str, calls: int) -> dict[str, float]:
    """`calls` whole calls at once; their webhooks' latency."""
    timings: list[float] = []
    errors: list[str] = []
    transport = TimedTransport(timings, errors, threading.Lock())
    started = time.perf_counter()
    threads = [threading.Thread(target=place, args=(transport, url, text))
               for text in varied_requests(calls, seed=calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    values = np.array(timings) if timings else np.array([float("nan")])
    row = {"webhooks": len(timings), "p50_s": float(np.percentile(values, 50)),
           "p95_s": float(np.percentile(values, 95)), "p99_s": float(np.percentile(values, 99)),
           "max_s": float(values.max()), "over_1s": float((values > 1).mean()),
           "over_15s": float((values > 15).mean()), "errors": len(errors), "wall_s": wall}
    print(f"{calls:4d} concurrent calls: {row['webhooks']} webhooks, p50 {row['p50_s']:.2f} s, "
          f"p95 {row['p95_s']:.2f} s, p99 {row['p99_s']:.2f} s, max {row['max_s']:.2f} s, over 1 s "
          f"{row['over_1s']:.1%}, over 15 s {row['over_15s']:.1%}, errors {row['errors']}, wall {wall:.0f} s; "
          f"{transport.to_a_human} of {transport.answered} calls queued for an agent at once")
    return row


def startup(rounds: int = 2) -> list[tuple[float, float]]:
    """gunicorn (2 workers, real Redis) from launch to alive (/healthz) and to ready (/readyz: grammars loaded, prompts
    rendered), and from SIGTERM to exit: cold (empty classifier and prompt caches) then warm (the caches the first
    start left)."""
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            url, processes = start_server(Path(tmp) / f"run{round_}", cache_dir=Path(tmp) / "cache", wait=False)
            alive = wait_for(url + "/healthz")
            ready = alive + wait_for(url + "/readyz")
            server = processes[-1]
            started = time.perf_counter()
            server.terminate()
            server.wait(timeout=60)
            stopped = time.perf_counter() - started
            for process in processes[:-1]:
                process.terminate()
                process.wait(timeout=30)
            figures.append((ready, stopped))
            print(f"{'cold' if round_ == 0 else 'warm'} start: /healthz after {alive:.1f} s, /readyz after "
                  f"{ready:.1f} s; stopped {stopped:.1f} s after SIGTERM (targets: ready ≤ 15 s warm, stop ≤ 5 s)")
    return figures
