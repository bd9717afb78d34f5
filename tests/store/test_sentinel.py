"""Redis Sentinel: a real Sentinel and two redis-server processes on 127.0.0.1; the master is killed, the Sentinel
promotes the replica, and the service's client writes to the new master (the breaker fails fast in between)."""
import shutil
import subprocess
import time

import pytest
import redis

from ivr.store import CallStore, connect
from ivr.store.breaker import Breaker, GuardedRedis
from tests.store.test_spool import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def until(condition, what: str, *, bound_s: float = 20.0):
    """Poll an external process's state (a Sentinel deciding), bounded; not a timing assertion."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            result = condition()
        except redis.RedisError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting: {what}")


def test_after_the_master_dies_the_sentinel_promotes_the_replica_and_writes_continue(tmp_path):
    master, replica, sentinel = free_port(), free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor ivr 127.0.0.1 {master} 1\n"
                      f"sentinel down-after-milliseconds ivr 200\nsentinel failover-timeout ivr 2000\n")
    processes = [subprocess.Popen(["redis-server", "--port", str(master), *common], stdout=subprocess.DEVNULL)]
    processes.append(subprocess.Popen(["redis-server", "--port", str(replica), *common, "--replicaof", "127.0.0.1",
                                       str(master)], stdout=subprocess.DEVNULL))
    try:
        until(lambda: redis.Redis(port=replica).info("replication")["master_link_status"] == "up", "replica in sync")
        # Started after the replica is in sync, the Sentinel finds it in its first look at the master (not 10 s on).
        processes.append(subprocess.Popen(["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL))
        watcher = redis.Redis(port=sentinel, decode_responses=True)
        until(lambda: watcher.sentinel_slaves("ivr"), "the sentinel sees the replica")
        breaker = Breaker(open_s=0.0)  # in production 5 s: here each try may reach the new master
        store = CallStore(GuardedRedis(connect(f"redis+sentinel://127.0.0.1:{sentinel}/ivr/0"), breaker),
                          call_ttl_s=60, context_ttl_s=600)
        store.save_state("CA1", {"step": "intent"})
        until(lambda: redis.Redis(port=replica).get("ivr:call:CA1:state"), "the write reaches the replica")
        processes[0].kill()
        processes[0].wait()
        until(lambda: int(watcher.sentinel_get_master_addr_by_name("ivr")[1]) == replica, "failover")
        until(lambda: store.save_state("CA2", {"step": "done"}) is None, "a write to the new master")
        assert store.load_state("CA1") == {"step": "intent"} and store.load_state("CA2") == {"step": "done"}
        assert redis.Redis(port=replica).get("ivr:call:CA2:state")  # the promoted replica took it
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_sentinel_url_must_name_the_master():
    with pytest.raises(ValueError, match="name the master"):
        connect("redis+sentinel://127.0.0.1:26379")
