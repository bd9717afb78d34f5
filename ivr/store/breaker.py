"""Fail fast on a hung or dead Redis: after a connection error or timeout, every call fails at once for a few
seconds instead of each waiting for its own timeout, so a webhook still answers (with a transfer) in time."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)
FAILURES = (redis.ConnectionError, redis.TimeoutError)


class StoreUnavailable(redis.ConnectionError):
    """Redis failed moments ago; not tried again until the circuit closes."""


class Breaker:
    """Shared by every wrapper of one client. `open_s` after a failure, calls fail without touching Redis; then one
    call at a time probes it (half-open) while the others still fail at once, until a probe succeeds."""

    def __init__(self, *, open_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.open_s = open_s
        self.clock = clock
        self.opened_at: float | None = None
        self.probing = False
        self.lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        with self.lock:
            return self._refuses()

    def _refuses(self) -> bool:
        return self.opened_at is not None and (self.probing or self.clock() - self.opened_at < self.open_s)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            if self._refuses():
                raise StoreUnavailable("Redis failed moments ago (circuit open)")
            probe = self.opened_at is not None
            self.probing = self.probing or probe
        try:
            result = fn(*args, **kwargs)
        except FAILURES as exc:
            with self.lock:
                if self.opened_at is None:
                    log.error("Redis unreachable (%s: %s): failing fast for %.0f s", type(exc).__name__, exc,
                              self.open_s)
                self.opened_at = self.clock()
            raise
        finally:
            if probe:
                with self.lock:
                    self.probing = False
        with self.lock:
            if self.opened_at is not None:
                log.warning("Redis reachable again")
            self.opened_at = None
        return result


class GuardedRedis:
    """A Redis client (or pipeline) whose commands go through the breaker."""

    def __init__(self, client: Any, breaker: Breaker):
        self._client = client
        self._breaker = breaker

    @property
    def circuit_open(self) -> bool:
        return self._breaker.is_open

    def pipeline(self, *args: Any, **kwargs: Any) -> GuardedRedis:
        return GuardedRedis(self._client.pipeline(*args, **kwargs), self._breaker)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        if hasattr(self._client, "execute") and name != "execute":  # pipeline commands only queue
            return attribute
        return lambda *args, **kwargs: self._breaker.call(attribute, *args, **kwargs)
