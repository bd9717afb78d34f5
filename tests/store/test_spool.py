"""Writes that must not be lost while Redis is down go to a local spool and are replayed, in order, when it answers
again — on the embedded store with its connection cut, and on a real redis-server that is killed and restarted."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import fakeredis
import pytest
import redis

from ivr.store import CallStore, connect
from ivr.store.breaker import Breaker, GuardedRedis
from ivr.store.spool import Spool
from ivr.types import CallbackRequest, CallEvent
from tests.store.test_calls import CONTEXT
from tests.support import TwilioHelper, make_app
from tests.test_desk import CALL


def test_writes_during_an_outage_are_spooled_and_replayed_in_order(tmp_path):
    server = fakeredis.FakeServer()
    breaker = Breaker()
    store = CallStore(GuardedRedis(fakeredis.FakeRedis(server=server, decode_responses=True), breaker),
                      call_ttl_s=60, context_ttl_s=600, spool=Spool(tmp_path))
    store.save_state("CA1", {"step": "intent"})
    server.connected = False
    store.save_state("CA1", {"step": "done", "outcome": "transfer"})
    store.save_context(CONTEXT)
    store.add_callback(CallbackRequest("CA1", "+15550100001", "billing", None, "closed", 1.0))
    store.log_event(CallEvent("CA1", "transfer", 2.0, {"queue": "general"}))
    assert len((tmp_path / next(p.name for p in tmp_path.iterdir())).read_text().splitlines()) == 4
    with pytest.raises(redis.ConnectionError):
        store.load_state("CA1")  # still down: the fault path answers
    server.connected = True
    breaker.opened_at = None  # the circuit closes (after 5 s in production)
    assert store.load_state("CA1") == {"step": "done", "outcome": "transfer"}  # replayed before the read
    assert store.load_context("CA1").summary == CONTEXT.summary
    assert [c.call for c in store.callbacks()] == ["CA1"] and store.events()[0].type == "transfer"
    assert list(tmp_path.iterdir()) == [] and store.replay_spool() == 0


def test_redis_failing_as_a_webhook_ends_spools_its_writes_and_the_caller_gets_the_fault_answer(tmp_path):
    server = fakeredis.FakeServer()
    breaker = Breaker()
    store = CallStore(GuardedRedis(fakeredis.FakeRedis(server=server, decode_responses=True), breaker),
                      call_ttl_s=60, context_ttl_s=600, spool=Spool(tmp_path))
    with pytest.raises(redis.ConnectionError), store.batch():  # the webhook answers with its fault reply
        assert store.claim_request("CA1", "k")
        store.save_state("CA1", {"step": "done", "outcome": "transfer"})
        server.connected = False
        store.save_reply("CA1", "k", "<Response/>")
    server.connected = True
    breaker.opened_at = None
    assert store.load_state("CA1") == {"step": "done", "outcome": "transfer"}  # from the spool


def test_while_the_circuit_is_open_reads_do_not_go_through_the_spool_again(tmp_path, monkeypatch):
    """A long outage spools more with every webhook; re-reading (and rewriting) the whole file on each read would
    make every fault answer slower than the last."""
    server = fakeredis.FakeServer()
    store = CallStore(GuardedRedis(fakeredis.FakeRedis(server=server, decode_responses=True), Breaker()),
                      call_ttl_s=60, context_ttl_s=600, spool=Spool(tmp_path))
    server.connected = False
    store.save_state("CA1", {"step": "done"})  # fails: the circuit opens, the write is spooled
    replays = []
    monkeypatch.setattr(store.spool, "replay", lambda apply: replays.append(apply) or 0)
    with pytest.raises(redis.ConnectionError):
        store.load_state("CA1")
    assert replays == []


def test_a_call_transferred_during_an_outage_is_not_resumed_and_its_context_survives(settings, clock):
    server = fakeredis.FakeServer()
    app = make_app(settings, fakeredis.FakeRedis(server=server, decode_responses=True), clock)
    helper = TwilioHelper(app.test_client())
    helper.post("/voice/incoming", CALL)
    server.connected = False
    root = ET.fromstring(helper.post("/voice/gather?turn=0", {**CALL, "SpeechResult": "my internet is down"}).data)
    assert root.find("./Enqueue").text == "general"  # the fault transfer
    server.connected = True
    app.extensions["ivr.store"].redis._breaker.opened_at = None
    late = ET.fromstring(helper.post("/voice/gather?turn=1", {**CALL, "SpeechResult": "hello?"}).data)
    assert late.find("./Enqueue").text == "general" and late.find("./Gather") is None  # the decision stands
    whisper = ET.fromstring(helper.post(f"/voice/whisper?call={CALL['CallSid']}", {"CallSid": "CAagent"}).data)
    assert "No details were collected" not in whisper.find("./Say").text


def test_a_fault_answer_spools_its_writes_with_one_fsync(settings, clock, monkeypatch):
    """During an outage every webhook is a fault answer: its state, context and event wait for one fsync, not three
    in turn (shared with the other webhooks' by the group commit)."""
    server = fakeredis.FakeServer()
    app = make_app(settings, fakeredis.FakeRedis(server=server, decode_responses=True), clock)
    helper = TwilioHelper(app.test_client())
    server.connected = False
    fsyncs = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), fsync(fd))[1])
    root = ET.fromstring(helper.post("/voice/incoming", CALL).data)
    assert root.find("./Enqueue") is not None and len(fsyncs) == 1
    spool = app.extensions["ivr.store"].spool
    assert [json.loads(line)["kind"] for line in spool.path.read_text().splitlines()] == ["state", "context", "event"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_real_redis_server_killed_and_restarted_loses_nothing_that_was_spooled(tmp_path):
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis(port=port).ping()
                return process
            except redis.ConnectionError:
                time.sleep(0.02)  # waiting for a child process to listen, not for the code under test
        raise RuntimeError("redis-server did not start")

    process = start()
    breaker = Breaker()
    store = CallStore(GuardedRedis(connect(f"redis://127.0.0.1:{port}/0"), breaker), call_ttl_s=60,
                      context_ttl_s=600, spool=Spool(tmp_path))
    try:
        store.save_state("CA1", {"step": "intent"})
        process.kill()
        process.wait()
        store.save_context(CONTEXT)  # the transfer while Redis is dead
        store.add_callback(CallbackRequest("CA2", "+15550100002", "billing", None, "closed", 1.0))
        process = start()
        breaker.opened_at = None
        assert store.replay_spool() == 2
        assert store.load_context("CA1").summary == CONTEXT.summary and store.callbacks()[0].call == "CA2"
    finally:
        process.kill()
        process.wait()


def test_appends_made_while_a_flush_is_on_disk_share_the_next_one(tmp_path, monkeypatch):
    """A hung Redis at 100 calls at once: three spooled writes per fault webhook, each fsynced in turn, queued the
    webhooks behind the disk. Appends that arrive while an fsync runs are covered by one fsync after it."""
    import ivr.store.spool as spool_module

    spool = Spool(tmp_path)
    flushes: list[int] = []
    on_disk, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        flushes.append(fd)
        if len(flushes) == 1:  # the first flush is still on disk while the others append
            on_disk.set()
            release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", slow_fsync)
    first = threading.Thread(target=spool.append, args=("state", {"n": 0}))
    first.start()
    on_disk.wait(10)
    others = [threading.Thread(target=spool.append, args=("context", {"n": n})) for n in range(1, 11)]
    for thread in others:
        thread.start()
    while len(spool.path.read_text().splitlines()) < 11:  # every line written, none flushed yet
        time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join()
    assert len(flushes) == 2  # not 11
    replayed: list[int] = []
    assert spool.replay(lambda kind, payload: replayed.append(payload["n"])) == 11
    assert sorted(replayed) == list(range(11))
