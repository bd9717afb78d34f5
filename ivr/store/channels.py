"""Pub/sub channel names. Redis delivers a message to every subscriber of a channel on the server, whatever database
either side selected: a channel names its database, so services sharing a server on different databases (and the
test workers sharing one) never hear each other."""
from __future__ import annotations

from typing import Any


def channel(client: Any, name: str) -> str:
    """`name` within the client's database (a redis.Redis, a Sentinel master or a GuardedRedis around either)."""
    return f"ivr:{client.connection_pool.connection_kwargs.get('db', 0)}:{name}"
