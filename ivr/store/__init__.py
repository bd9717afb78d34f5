"""Redis-backed storage. With no REDIS_URL an in-process Redis-compatible store (fakeredis) is used."""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

import fakeredis
import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from ivr.logs import mask_url
from ivr.store.breaker import Breaker, GuardedRedis
from ivr.store.calls import CallStore
from ivr.store.spool import Spool

__all__ = ["CallStore", "connect", "init_app"]
log = logging.getLogger(__name__)


FAST = {"decode_responses": True, "socket_timeout": 0.25, "socket_connect_timeout": 0.25,
        "retry": Retry(NoBackoff(), 0)}


def connect(url: str) -> redis.Redis:
    """A Redis client for `url` (`redis://…`, `rediss://…`, or `redis+sentinel://host:port[,host:port]/service[/db]`
    for a Sentinel-managed master that follows failovers), or the embedded store when `url` is empty."""
    if not url:
        return fakeredis.FakeRedis(decode_responses=True)
    # Short timeouts and no retries (redis-py 6+ retries a timeout up to 10 times with backoff by default): a webhook
    # makes a few Redis calls and Twilio waits 15 s in all; after one failure the breaker fails the rest at once.
    if url.startswith("redis+sentinel://"):
        return sentinel_master(url)
    return redis.Redis.from_url(url, **FAST)  # type: ignore[arg-type]


def sentinel_master(url: str) -> redis.Redis:
    """The master a set of Sentinels names; every new connection asks them again, so after a failover the client
    reaches the promoted replica (the first command on an old connection fails and opens the breaker briefly)."""
    parts = urlsplit(url)
    hosts = [(host.rsplit(":", 1)[0], int(host.rsplit(":", 1)[1]) if ":" in host else 26379)
             for host in parts.netloc.rsplit("@", 1)[-1].split(",")]
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"{mask_url(url)}: name the master, e.g. redis+sentinel://127.0.0.1:26379/mymaster/0")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    sentinels = Sentinel(hosts, sentinel_kwargs={"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
                         socket_timeout=0.25)
    return sentinels.master_for(service, db=db, password=parts.password, **FAST)  # type: ignore[arg-type]


def init_app(app: Flask) -> None:
    settings = app.config["IVR_SETTINGS"]
    client = app.config.get("REDIS_CLIENT") or connect(settings.redis_url)
    log.info("store: %s", mask_url(settings.redis_url) or "embedded in-process store (no REDIS_URL)")
    store = CallStore(GuardedRedis(client, Breaker()), call_ttl_s=settings.call_ttl_s,
                      context_ttl_s=settings.context_ttl_s, spool=Spool(settings.spool_dir),
                      events_ttl_s=settings.events_ttl_s)
    app.extensions["ivr.store"] = store
    if not app.testing:
        threading.Thread(target=replay_forever, args=(store,), daemon=True, name="spool-replay").start()


def replay_forever(store: CallStore, *, interval_s: float = 5.0) -> None:
    """Replay what was spooled during a Redis outage as soon as Redis answers again (requests replay first too)."""
    while True:
        time.sleep(interval_s)
        try:
            store.replay_spool(look_on_disk=True)
        except Exception:
            pass  # Redis still down: the breaker has logged it; try again
