"""Under a real gunicorn (as the Dockerfile runs it), log lines name the call: time, level, logger, CallSid."""
import subprocess
import sys
import time

import requests
from twilio.request_validator import RequestValidator

from ivr.config import ROOT
from tests.store.test_spool import free_port
from tests.support import AUTH_TOKEN, CLASSIFIER_CACHE


def test_log_lines_carry_the_callsid_under_gunicorn(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "service.log"
    env = {"PATH": "/usr/bin:/bin", "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "IVR_SELFSERVICE": "demo",
           "IVR_SPEECH_MODE": "gather", "IVR_GATHER_PROMPTS": "say", "IVR_PUBLIC_URL": url,
           "IVR_CACHE_DIR": str(CLASSIFIER_CACHE), "IVR_AUDIO_DIR": str(tmp_path / "audio"),
           "IVR_SPOOL_DIR": str(tmp_path / "spool"), "IVR_NLU_ENCODER": "false", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                   "--worker-class", "gthread", "--threads", "4", "app:app"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # waiting for a server process to listen, not timing it
                try:
                    if requests.get(url + "/healthz", timeout=1).ok:
                        break
                except requests.RequestException:  # not listening, or the worker still loading the app
                    time.sleep(0.1)
            params = {"CallSid": "CA" + "9" * 32, "From": "+15550100001"}
            signature = RequestValidator(AUTH_TOKEN).compute_signature(url + "/voice/gather", params)
            answer = requests.post(url + "/voice/gather", data=params, headers={"X-Twilio-Signature": signature},
                                   timeout=10)
            assert answer.status_code == 200 and "<Enqueue" in answer.text  # an unknown call: to a person
        finally:
            server.kill()  # the log is unbuffered: nothing is lost (`ivr bench startup` measures a graceful stop)
            server.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if "CA" + "9" * 32 in line]
    assert any(" WARNING ivr.telephony.webhooks [CA" + "9" * 32 + " " in line for line in lines), lines


def test_the_load_benchmark_runs_gunicorn_as_the_dockerfile_does():
    from ivr.bench.load import DOCKERFILE_GUNICORN

    command = (ROOT / "Dockerfile").read_text().split("\nCMD ", 1)[1]
    pairs = zip(DOCKERFILE_GUNICORN[::2], DOCKERFILE_GUNICORN[1::2], strict=True)
    assert all(f'"{flag}", "{value}"' in command for flag, value in pairs)
