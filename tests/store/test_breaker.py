"""A hung or dead Redis costs one timeout, not one per call: the breaker fails the following calls at once."""
import os
import shutil
import signal
import socket
import subprocess
import xml.etree.ElementTree as ET

import pytest
import redis

from ivr.store import connect
from ivr.store.breaker import Breaker, GuardedRedis, StoreUnavailable
from tests.support import TwilioHelper, make_app


class HungRedis:
    def __init__(self):
        self.calls = 0

    def get(self, key):
        self.calls += 1
        raise redis.TimeoutError("Timeout reading from socket")


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_after_one_timeout_calls_fail_at_once_until_the_circuit_closes():
    hung, clock = HungRedis(), Clock()
    client = GuardedRedis(hung, Breaker(open_s=5, clock=clock))
    with pytest.raises(redis.TimeoutError):
        client.get("a")
    for _ in range(10):
        with pytest.raises(StoreUnavailable):
            client.get("a")
    assert hung.calls == 1
    clock.now = 6.0
    with pytest.raises(redis.TimeoutError):
        client.get("a")  # tried again after the open period
    assert hung.calls == 2


def test_after_the_open_period_one_call_probes_redis_while_the_others_still_fail_at_once():
    """Half-open: in a long outage every request in flight would otherwise wait out its own timeout every 5 s."""
    import threading

    clock, probing, release = Clock(), threading.Event(), threading.Event()

    class SlowThenHung(HungRedis):
        def get(self, key):
            probing.set()
            release.wait(5)  # a hung Redis: the probe waits for its timeout
            return super().get(key)

    hung = SlowThenHung()
    client = GuardedRedis(hung, Breaker(open_s=5, clock=clock))
    client._breaker.opened_at = 0.0  # the circuit opened at t=0
    clock.now = 6.0
    probe = threading.Thread(target=lambda: pytest.raises(redis.TimeoutError, client.get, "a"))
    probe.start()
    assert probing.wait(5)
    with pytest.raises(StoreUnavailable):
        client.get("a")  # a second request while the probe is out: fails at once
    release.set()
    probe.join()
    assert hung.calls == 1 and client.circuit_open  # the probe failed: open again from now


@pytest.fixture
def stoppable_redis():
    """A real redis-server of this test's own, on a free port, that the test can freeze with SIGSTOP."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = connect(f"redis://127.0.0.1:{port}/0")  # the service's own connection settings
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            subprocess.run(["sleep", "0.02"])  # the server is starting (a child process, not the test's clock)
    yield server, client
    os.kill(server.pid, signal.SIGCONT)
    server.terminate()
    server.wait()


def test_a_frozen_redis_mid_call_sends_the_caller_to_a_human_with_one_timeout(settings, clock, stoppable_redis):
    server, client = stoppable_redis
    app = make_app(settings, client, clock)
    twilio = TwilioHelper(app.test_client())
    call = {"CallSid": "CAfrozen", "From": "+15550100001"}
    twilio.post("/voice/incoming", call)
    os.kill(server.pid, signal.SIGSTOP)  # Redis hangs: every read times out
    root = ET.fromstring(twilio.post("/voice/gather", {**call, "SpeechResult": "my internet is down"})
                         .get_data(as_text=True))
    assert root.find("./Enqueue").text == "general" and "went wrong" in root.find("./Say").text
    breaker = app.extensions["ivr.store"].redis._breaker
    assert breaker.opened_at is not None  # the first timeout opened it; the fault path failed fast after that
