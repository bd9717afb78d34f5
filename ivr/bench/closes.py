"""`ivr bench closes`: does a closing Media Stream hold up other requests? The server is run as the Dockerfile runs
it (gunicorn gthread, 32 threads, one worker so every request meets the closing socket's worker). A raw WebSocket
peer opens a signed /media, sends a start the service refuses (so the server closes at once), then answers the
server's close frame 100 ms late, or never, keeping its TCP socket open; meanwhile /healthz is requested every
10 ms for 3 s. Prints the worst /healthz time after each close and how many closes stalled a request > 100 ms."""
from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

from ivr.bench.load import free_port, wait_for
from ivr.config import ROOT

TOKEN = "bench-closes-token"
SERVER = ["--worker-class", "gthread", "--threads", "32", "--timeout", "30", "--graceful-timeout", "10"]  # Dockerfile


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask)."""
    mask = os.urandom(4)
    size = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return bytes([0x80 | opcode]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def refused_stream(url: str, port: int, *, answer_close_after_s: float | None) -> socket.socket:
    """A signed stream whose start is refused; the peer answers the close late or never and keeps its socket."""
    signature = RequestValidator(TOKEN).compute_signature(url.replace("http://", "ws://") + "/media", {})
    peer = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    peer.sendall((f"GET /media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nX-Twilio-Signature: {signature}\r\n\r\n"
                  ).encode())
    if b" 101 " not in peer.recv(4096).split(b"\r\n")[0]:
        raise RuntimeError("the /media upgrade was refused")
    start = {"event": "start", "start": {"callSid": "CA" + "1" * 32, "streamSid": "MZ1", "customParameters": {}}}
    peer.sendall(masked(0x1, json.dumps(start).encode()))
    if answer_close_after_s is not None:
        def answer() -> None:
            time.sleep(answer_close_after_s)
            peer.sendall(masked(0x8, (1000).to_bytes(2, "big")))

        threading.Thread(target=answer, daemon=True).start()
    return peer


def run(closes: int = 5) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "IVR_PUBLIC_URL": url, "IVR_LOG_LEVEL": "WARNING",
               "IVR_SPEECH_MODE": "gather", "IVR_SELFSERVICE": "demo", "IVR_SPOOL_DIR": str(Path(tmp) / "spool"),
               "IVR_AUDIO_DIR": str(Path(tmp) / "audio"), "IVR_CACHE_DIR": str(Path(tmp) / "cache")}
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                   *SERVER, "app:app"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        try:
            wait_for(url + "/readyz")
            import gunicorn

            print(f"gunicorn {gunicorn.__version__} {' '.join(SERVER)}, 1 worker")
            held = []
            for mode, after in (("answers the close 100 ms late", 0.1), ("never answers the close", None)):
                worst = []
                for _ in range(closes):
                    held.append(refused_stream(url, port, answer_close_after_s=after))
                    started, slowest = time.perf_counter(), 0.0
                    while time.perf_counter() - started < 3.0:
                        began = time.perf_counter()
                        requests.get(url + "/healthz", timeout=10)
                        slowest = max(slowest, time.perf_counter() - began)
                        time.sleep(0.01)  # the probe's pace, not a measurement
                    worst.append(slowest)
                figures[mode] = worst
                print(f"peer {mode}: worst /healthz per close "
                      f"{', '.join(f'{w * 1000:.0f}' for w in worst)} ms; {sum(w > 0.1 for w in worst)} of "
                      f"{len(worst)} closes stalled a request > 100 ms (target 0)")
            for peer in held:
                peer.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return figures
