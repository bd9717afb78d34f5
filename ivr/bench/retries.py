"""`ivr bench retries`: Twilio retries a webhook it got no answer to, and a slow network can deliver one request
twice; copies may reach different workers at the same instant. Against a real server — gunicorn (2 gthread
workers) and a real redis-server on 127.0.0.1 — each trial starts a call, then sends 2 or 3 identical copies of its
first answer at once (a barrier releases them together) and checks that the dialog advanced exactly once: one turn
in the stored state, one turn event, the same TwiML to every copy. Prints the count of double-advanced trials."""
from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests
from twilio.request_validator import RequestValidator

from ivr.bench.load import TOKEN, start_server, varied_requests
from ivr.store.calls import events_key


def trial(session: requests.Session, url: str, client: redis.Redis, text: str, copies: int) -> tuple[bool, bool]:
    """(advanced more than once, copies answered differently) for one call."""
    validator = RequestValidator(TOKEN)
    call = "CA" + uuid.uuid4().hex
    base = {"CallSid": call, "AccountSid": "AC" + "0" * 32, "From": "+15550100001", "To": "+15550009999",
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}

    def post(path: str, params: dict) -> str:
        signature = validator.compute_signature(url + path, params)
        response = session.post(url + path, data=params, headers={"X-Twilio-Signature": signature}, timeout=30)
        return f"{response.status_code} {response.text}"

    post("/voice/incoming", {**base, "CallStatus": "ringing"})
    answer = {**base, "SpeechResult": text, "Confidence": "0.9"}
    barrier = threading.Barrier(copies)

    def copy(_: int) -> str:
        barrier.wait()
        return post("/voice/gather?turn=0", answer)

    with ThreadPoolExecutor(copies) as pool:
        bodies = list(pool.map(copy, range(copies)))
    state = json.loads(client.get(f"ivr:call:{call}:state") or "{}")
    now = time.time()  # the server's clock: today's events list (and yesterday's, around midnight)
    turns = sum(json.loads(raw).get("call") == call and json.loads(raw).get("type") == "turn"
                for key in {events_key(now), events_key(now - 86_400)} for raw in client.lrange(key, 0, 49))
    return state.get("turn_count") != 1 or turns != 1, len(set(bodies)) != 1


def run(trials: int = 1000, *, seed: int = 3) -> dict[str, int]:
    if not shutil.which("redis-server"):
        raise SystemExit("ivr bench retries needs redis-server (apt-get install redis-server): copies must reach "
                         "two workers that share one store")
    rng = random.Random(seed)
    texts = varied_requests(trials, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        url, processes = start_server(Path(tmp))
        try:
            client = redis.Redis.from_url(server_redis_url(processes), decode_responses=True)
            session = requests.Session()
            session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))
            doubled = differing = 0
            by_copies = {2: 0, 3: 0}
            for index, text in enumerate(texts):
                copies = rng.choice((2, 3))
                by_copies[copies] += 1
                twice, differ = trial(session, url, client, text, copies)
                doubled += twice
                differing += differ
                if (index + 1) % 250 == 0:
                    print(f"  {index + 1} trials: {doubled} double-advanced, {differing} with differing answers")
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=30)
    print(f"{trials} trials ({by_copies[2]} with 2 copies, {by_copies[3]} with 3), gunicorn 2 workers + redis-server: "
          f"{doubled} double-advanced turns (target 0), {differing} trials whose copies got different answers")
    return {"trials": trials, "doubled": doubled, "differing": differing}


def server_redis_url(processes) -> str:
    """The redis-server start_server launched (its --port argument)."""
    args = processes[0].args
    return f"redis://127.0.0.1:{args[args.index('--port') + 1]}/0"
