"""Redis-backed storage. With no REDIS_URL an in-process Redis-compatible store (fakeredis) is used."""
from __future__ import annotations

import logging

import fakeredis
import redis
from flask import Flask

from ivr.store.calls import CallStore

__all__ = ["CallStore", "connect", "init_app"]
log = logging.getLogger(__name__)


def connect(url: str) -> redis.Redis:
    """A Redis client for `url`, or the embedded store when `url` is empty."""
    if not url:
        return fakeredis.FakeRedis(decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)


def init_app(app: Flask) -> None:
    settings = app.config["IVR_SETTINGS"]
    client = app.config.get("REDIS_CLIENT") or connect(settings.redis_url)
    log.info("store: %s", settings.redis_url or "embedded in-process store (no REDIS_URL)")
    app.extensions["ivr.store"] = CallStore(
        client, call_ttl_s=settings.call_ttl_s, context_ttl_s=settings.context_ttl_s
    )
