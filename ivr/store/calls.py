"""Call repository: dialog state (as plain data), context records, webhook replies (for retries), callbacks and
events, keyed by CallSid with a TTL so any worker can serve any webhook."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import redis

from ivr.store.breaker import FAILURES, GuardedRedis
from ivr.store.spool import Spool
from ivr.types import CallbackRequest, CallContext, CallEvent

PREFIX = "ivr"
PENDING = "\x00pending"  # a reply being made; never valid TwiML
DAY = 86_400
log = logging.getLogger(__name__)
Pipe = redis.client.Pipeline | GuardedRedis  # where a write is queued: one round trip for all of a batch


@dataclass
class _Batch:
    """One webhook's writes, sent in one round trip at its end (see `CallStore.batch`), and the state read with its
    claim ((call, raw JSON or None), used once by `load_state`). Only the thread that opened it uses it: a job that
    copied the request's context to another thread writes at once."""

    thread: int = field(default_factory=threading.get_ident)
    writes: list[tuple[str, dict]] = field(default_factory=list)
    prefetched: tuple[str, str | None] | None = None


_batch: ContextVar[_Batch | None] = ContextVar("ivr_batch", default=None)


def current_batch() -> _Batch | None:
    batch = _batch.get()
    return batch if batch is not None and batch.thread == threading.get_ident() else None


def events_key(at: float) -> str:
    return f"{PREFIX}:events:{time.strftime('%Y-%m-%d', time.gmtime(at))}"


class CallStore:
    """Saves and returns plain data and the frozen records of `ivr.types`; knows nothing of the dialog."""

    def __init__(self, client: redis.Redis | GuardedRedis, *, call_ttl_s: int, context_ttl_s: int,
                 spool: Spool | None = None, events_ttl_s: int = 90 * DAY):
        self.redis = client
        self.call_ttl_s = call_ttl_s
        self.context_ttl_s = context_ttl_s
        self.events_ttl_s = events_ttl_s
        self.spool = spool  # where writes that must not be lost go while Redis is down
        self.events_per_day = 1_000_000  # a bound, not a quota: ~100,000 calls a day
        self.writers = {"state": self._write_state, "context": self._write_context, "callback": self._write_callback,
                        "event": self._write_event, "reply": self._write_reply, "started": self._write_started,
                        "history": self._write_history}

    def durably(self, kind: str, payload: dict) -> None:
        """Write now (or at the end of this webhook's batch), or, while Redis is down, to the local spool (replayed
        in order when it answers again)."""
        batch = current_batch()
        if batch is None:
            self.write([(kind, payload)])
            return
        batch.writes.append((kind, payload))
        if kind == "state":
            batch.prefetched = None

    def write(self, writes: list[tuple[str, dict]], *, spool: bool = True) -> None:
        """Writes in one round trip; on a Redis failure every durable one goes to the spool (a reply is not
        durable: the failure is raised, and the webhook answers with its fault reply)."""
        pipe = self.redis.pipeline(transaction=False)
        for kind, payload in writes:
            self.writers[kind](pipe, payload)
        try:
            pipe.execute()
        except FAILURES:
            if self.spool is None or not spool:
                raise
            self.spool.append_all([(kind, payload) for kind, payload in writes if kind != "reply"])
            if any(kind == "reply" for kind, _ in writes):
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One webhook's writes (state, context, events, its reply) go to Redis in one round trip at its end, in
        the order they were made; a read through this store sends them first. Under load each round trip costs a
        thread switch on a contended GIL, so a webhook makes ~2 instead of ~6."""
        batch = _Batch()
        token = _batch.set(batch)
        try:
            yield
        except BaseException:
            unsent = len(batch.writes)
            try:  # what the webhook did before its fault is kept, as if written at once
                self.flush()
            except Exception:
                log.warning("%d writes made before a fault not stored (durable ones spooled)", unsent)
            raise
        else:
            self.flush()
        finally:
            _batch.reset(token)

    def flush(self) -> None:
        batch = current_batch()
        if batch is not None and batch.writes:
            writes, batch.writes = batch.writes, []
            self.write(writes)

    def replay_spool(self, *, look_on_disk: bool = False) -> int:
        """Apply what was spooled during an outage (before anything is read, so a call that was transferred while
        Redis was down is not resumed from its older state). `look_on_disk` also finds other workers' files (the
        periodic replay); a webhook's read only checks this process's flag."""
        if self.spool is None or not (self.spool.pending() or (look_on_disk and self.spool.on_disk())):
            return 0
        if getattr(self.redis, "circuit_open", False):  # Redis failed moments ago: re-reading the spool is waste
            return 0
        return self.spool.replay(lambda kind, payload: self.write([(kind, payload)], spool=False))

    def load_state(self, call_sid: str) -> dict | None:
        batch = current_batch()
        prefetched = batch.prefetched if batch is not None else None
        if batch is not None:
            batch.prefetched = None
        if self.replay_spool() or prefetched is None or prefetched[0] != call_sid:
            self.flush()
            raw = self.redis.get(f"{PREFIX}:call:{call_sid}:state")
        else:  # read with the claim, one round trip ago, and not written since
            raw = prefetched[1]
        return json.loads(raw) if raw else None

    def save_state(self, call_sid: str, state: dict) -> None:
        self.durably("state", {"call": call_sid, "state": state})

    def _write_state(self, r: Pipe, payload: dict) -> None:
        r.set(f"{PREFIX}:call:{payload['call']}:state", json.dumps(payload["state"]), ex=self.call_ttl_s)

    def save_context(self, context: CallContext) -> None:
        self.durably("context", context.to_dict())

    def _write_context(self, r: Pipe, payload: dict) -> None:
        r.set(f"{PREFIX}:call:{payload['call_sid']}:context", json.dumps(payload), ex=self.context_ttl_s)

    def load_context(self, call_sid: str) -> CallContext | None:
        self.flush()
        raw = self.redis.get(f"{PREFIX}:call:{call_sid}:context")
        return CallContext.from_dict(json.loads(raw)) if raw else None

    def claim_request(self, call_sid: str, request_key: str) -> bool:
        """Exactly-once turns: the first copy of a webhook request claims it (atomically, across workers); copies
        that arrive later, or at the same moment on another worker, wait for its reply instead of answering."""
        key = f"{PREFIX}:call:{call_sid}:reply:{request_key}"
        batch = current_batch()
        if batch is None:
            return bool(self.redis.set(key, PENDING, nx=True, ex=self.call_ttl_s))
        pipe = self.redis.pipeline(transaction=False)  # in a webhook's batch: its call's state comes along
        pipe.set(key, PENDING, nx=True, ex=self.call_ttl_s)
        pipe.get(f"{PREFIX}:call:{call_sid}:state")
        claimed, state = pipe.execute()
        batch.prefetched = (call_sid, state) if claimed else None
        return bool(claimed)

    def save_reply(self, call_sid: str, request_key: str, body: str) -> None:
        self.durably("reply", {"call": call_sid, "key": request_key, "body": body})

    def _write_reply(self, r: Pipe, payload: dict) -> None:
        r.set(f"{PREFIX}:call:{payload['call']}:reply:{payload['key']}", payload["body"], ex=self.call_ttl_s)

    def cached_reply(self, call_sid: str, request_key: str) -> str | None:
        """The reply given to a request, once its first copy has answered."""
        self.flush()
        reply = self.redis.get(f"{PREFIX}:call:{call_sid}:reply:{request_key}")
        return None if reply is None or reply == PENDING else str(reply)

    def wait_for_reply(self, call_sid: str, request_key: str, *, timeout_s: float, poll_s: float = 0.05) -> str | None:
        """The first copy's reply, waiting while it is being made; None if it never comes."""
        deadline = time.monotonic() + timeout_s
        while (reply := self.cached_reply(call_sid, request_key)) is None and time.monotonic() < deadline:
            time.sleep(poll_s)
        return reply

    def add_callback(self, request: CallbackRequest) -> None:
        """One call-back request per call (a retried or repeated confirmation replaces it, never adds one)."""
        self.durably("callback", request.to_dict())

    def _write_callback(self, r: Pipe, payload: dict) -> None:
        r.hset(f"{PREFIX}:callbacks", payload["call"], json.dumps(payload))
        r.expire(f"{PREFIX}:callbacks", self.context_ttl_s)

    def remove_callback(self, call_sid: str) -> None:
        self.flush()  # after this webhook's own add, never before it
        self.redis.hdel(f"{PREFIX}:callbacks", call_sid)

    def callback(self, call_sid: str) -> CallbackRequest | None:
        self.flush()
        raw = self.redis.hget(f"{PREFIX}:callbacks", call_sid)
        return CallbackRequest.from_dict(json.loads(raw)) if raw else None

    def callbacks(self) -> list[CallbackRequest]:
        records = [CallbackRequest.from_dict(json.loads(r)) for r in self.redis.hvals(f"{PREFIX}:callbacks")]
        return sorted(records, key=lambda r: r.at)

    def log_event(self, event: CallEvent) -> None:
        """Append to the analytics log (what callers ask for, where the bot fails): one list per UTC day, kept for
        the events retention."""
        self.durably("event", event.to_dict())

    def _write_event(self, r: Pipe, payload: dict) -> None:
        key = events_key(float(payload.get("at", 0.0)))
        r.lpush(key, json.dumps(payload))
        r.ltrim(key, 0, self.events_per_day - 1)
        r.expire(key, self.events_ttl_s + DAY)

    def events(self, limit: int = 100) -> list[CallEvent]:
        """The newest events, newest first (for tools and tests; the pages read a period with `events_between`)."""
        out: list[CallEvent] = []
        for key in sorted(self.redis.scan_iter(match=f"{PREFIX}:events:*", count=500), reverse=True):
            if len(out) >= limit:
                break
            out += [CallEvent.from_dict(json.loads(r)) for r in self.redis.lrange(key, 0, limit - len(out) - 1)]
        return out

    def events_between(self, start: float, end: float) -> list[CallEvent]:
        """Every event from `start` to `end` (epoch seconds), oldest first: what the analytics pages aggregate."""
        out: list[CallEvent] = []
        day = start - start % DAY
        while day < end:
            out += [CallEvent.from_dict(json.loads(r)) for r in reversed(self.redis.lrange(events_key(day), 0, -1))]
            day += DAY
        return sorted((e for e in out if start <= e.at < end), key=lambda e: e.at)

    def call_started(self, call_sid: str, now: float) -> None:
        self.durably("started", {"call": call_sid, "at": now})

    def _write_started(self, r: Pipe, payload: dict) -> None:
        r.zadd(f"{PREFIX}:calls:active", {payload["call"]: payload["at"]})

    def call_ended(self, call_sid: str) -> None:
        """Off the calls in progress, and its stream slot (if it had one) freed."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(f"{PREFIX}:calls:active", call_sid)
        pipe.zrem(f"{PREFIX}:streams", call_sid)
        pipe.execute()

    def active_calls(self, *, now: float) -> int:
        """Calls in progress across workers (a call whose final status never came drops out after the call TTL)."""
        self.redis.zremrangebyscore(f"{PREFIX}:calls:active", "-inf", now - self.call_ttl_s)
        return int(self.redis.zcard(f"{PREFIX}:calls:active"))

    def add_note(self, call_sid: str, note: dict) -> None:
        """An agent's note on a call: it travels with the context to the next agent."""
        key = f"{PREFIX}:call:{call_sid}:notes"
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(note))
        pipe.expire(key, self.context_ttl_s)
        pipe.execute()

    def notes(self, call_sid: str) -> list[dict]:
        return [json.loads(r) for r in self.redis.lrange(f"{PREFIX}:call:{call_sid}:notes", 0, -1)]

    def add_to_history(self, caller: str, entry: dict, *, keep: int = 20) -> None:
        """One line per finished bot conversation of a calling number (when, what about, how it ended)."""
        self.durably("history", {"caller": caller, "entry": entry, "keep": keep})

    def _write_history(self, r: Pipe, payload: dict) -> None:
        key = f"{PREFIX}:caller:{payload['caller']}:calls"
        r.lpush(key, json.dumps(payload["entry"]))
        r.ltrim(key, 0, payload["keep"] - 1)
        r.expire(key, self.context_ttl_s)

    def history(self, caller: str) -> list[dict]:
        """The number's earlier calls, newest first."""
        self.flush()
        return [json.loads(r) for r in self.redis.lrange(f"{PREFIX}:caller:{caller}:calls", 0, -1)]

    def record_wait(self, queue: str, waited_s: int, now: float, *, keep: int = 20) -> None:
        """How long a caller waited before an agent took the call: the queue's recent waits feed wait estimates."""
        pipe = self.redis.pipeline()
        pipe.lpush(f"{PREFIX}:queue:{queue}:waits", json.dumps([now, waited_s]))
        pipe.ltrim(f"{PREFIX}:queue:{queue}:waits", 0, keep - 1)
        pipe.expire(f"{PREFIX}:queue:{queue}:waits", self.context_ttl_s)
        pipe.execute()

    def recent_waits(self, queue: str, *, since: float) -> list[int]:
        """The waits of the queue's callers who reached an agent after `since`, newest first."""
        rows = (json.loads(r) for r in self.redis.lrange(f"{PREFIX}:queue:{queue}:waits", 0, -1))
        return [int(waited) for at, waited in rows if at >= since]

    def admit_stream(self, call_sid: str, *, limit: int, now: float, stale_after_s: float = 7200) -> bool:
        """One admission decision per issued <Stream>, counted across workers: True while fewer than `limit`
        stream calls hold a slot. Slots are released when the call ends (status callback) or go stale."""
        key = f"{PREFIX}:streams"
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(key, "-inf", now - stale_after_s)
        pipe.zadd(key, {call_sid: now})
        pipe.zcard(key)
        held = pipe.execute()[-1]
        if held <= limit:
            return True
        self.redis.zrem(key, call_sid)  # over the limit: this call uses Gather mode
        return False

    def claim_stream(self, call_sid: str) -> bool:
        """The first stream to start for a call wins; any later `start` for it is refused."""
        return bool(self.redis.set(f"{PREFIX}:call:{call_sid}:stream", "1", nx=True, ex=self.call_ttl_s))

    def release_stream(self, call_sid: str) -> None:
        self.redis.zrem(f"{PREFIX}:streams", call_sid)

    def ping(self) -> bool:
        return bool(self.redis.ping())
