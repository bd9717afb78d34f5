"""Per-call work off the socket thread: each call gets a lane whose jobs run in order, one at a time, on a pool
shared by all calls (decoding, the dialog step, backends and prompt renders never block a call's inbound frames)."""
from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

log = logging.getLogger(__name__)


class Lane:
    """A serial queue of jobs on a shared executor. `submit` never blocks; `settle` waits until the lane is idle."""

    def __init__(self, pool: Executor, *, on_error: Callable[[BaseException], None] | None = None):
        self.pool = pool
        self.on_error = on_error
        self.jobs: deque[tuple[contextvars.Context, Callable[[], None]]] = deque()
        self.idle = threading.Condition()
        self.running = False
        self.closed = False

    def submit(self, job: Callable[[], None]) -> None:
        with self.idle:
            if self.closed:
                return
            self.jobs.append((contextvars.copy_context(), job))  # logs keep the call's CallSid
            if self.running:
                return
            self.running = True
        self.pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self.idle:
                if not self.jobs or self.closed:
                    self.running = False
                    self.jobs.clear()
                    self.idle.notify_all()
                    return
                context, job = self.jobs.popleft()
            try:
                context.run(job)
            except Exception as exc:
                log.exception("stream job failed")
                if self.on_error is not None:
                    try:
                        context.run(self.on_error, exc)
                    except Exception:
                        log.exception("stream fault handler failed")

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far has run (tests, and the end of a stream)."""
        with self.idle:
            return self.idle.wait_for(lambda: not self.running, timeout)

    def close(self) -> None:
        """Drop jobs not yet started; a running one finishes."""
        with self.idle:
            self.closed = True
