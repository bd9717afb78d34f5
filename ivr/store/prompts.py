"""Prompt audio in Redis, for every worker and instance that may serve a <Play> URL: a call's private prompts (a
balance, a whisper; never written to disk by this service, expiring with the call, dropped at hang-up), and the
grammar's prompt files (each instance also keeps them on its own disk)."""
from __future__ import annotations

import base64

import redis

from ivr.store.breaker import GuardedRedis

PREFIX = "ivr"


class RedisPrivatePrompts:
    def __init__(self, client: redis.Redis | GuardedRedis, *, ttl_s: int):
        self.redis = client
        self.ttl_s = ttl_s

    def put(self, call: str, key: str, wav: bytes) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(f"{PREFIX}:call:{call}:prompts", key, base64.b64encode(wav).decode())
        pipe.expire(f"{PREFIX}:call:{call}:prompts", self.ttl_s)
        pipe.execute()

    def get(self, call: str, key: str) -> bytes | None:
        found = self.redis.hget(f"{PREFIX}:call:{call}:prompts", key)
        return None if found is None else base64.b64decode(found)

    def mark(self, call: str, key: str) -> bool:
        pipe = self.redis.pipeline()
        pipe.hsetnx(f"{PREFIX}:call:{call}:prompts", key, "")  # atomic: a finished render is never overwritten
        pipe.expire(f"{PREFIX}:call:{call}:prompts", self.ttl_s)
        return bool(pipe.execute()[0])

    def discard(self, call: str, key: str) -> None:
        self.redis.hdel(f"{PREFIX}:call:{call}:prompts", key)

    def drop(self, call: str) -> None:
        self.redis.delete(f"{PREFIX}:call:{call}:prompts")


class RedisSharedPrompts:
    def __init__(self, client: redis.Redis | GuardedRedis, *, ttl_s: int = 30 * 24 * 3600):
        self.redis = client
        self.ttl_s = ttl_s

    def put(self, key: str, wav: bytes) -> None:
        self.redis.set(f"{PREFIX}:prompt:{key}", base64.b64encode(wav).decode(), ex=self.ttl_s)

    def get(self, key: str) -> bytes | None:
        found = self.redis.get(f"{PREFIX}:prompt:{key}")
        return base64.b64decode(found) if found else None
