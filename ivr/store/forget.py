"""Deleting everything stored about one calling number (a data-subject request): its calls' state, context,
notes, replies and private prompts, its call-backs, its analytics events, its place in queues and on agents'
desks, and the number's call history. Returns what was deleted, for the report and the audit entry."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import redis

from ivr.store.admins import AuditLog
from ivr.store.breaker import GuardedRedis

PREFIX = "ivr"


def calls_of(client: redis.Redis | GuardedRedis, number: str) -> set[str]:
    """Every CallSid the store links to the number: its history, and any state or context naming it as caller."""
    calls = {json.loads(raw).get("call", "") for raw in client.lrange(f"{PREFIX}:caller:{number}:calls", 0, -1)}
    for pattern in (f"{PREFIX}:call:*:state", f"{PREFIX}:call:*:context"):
        for key in client.scan_iter(match=pattern, count=500):
            raw = client.get(key)
            if raw and json.loads(raw).get("caller") == number:
                calls.add(str(key).split(":")[2])
    calls.update(json.loads(raw).get("call", "") for raw in client.hvals(f"{PREFIX}:callbacks")
                 if json.loads(raw).get("number") == number)
    return {call for call in calls if call}


def forget_caller(client: redis.Redis | GuardedRedis, number: str) -> Counter:
    calls = calls_of(client, number)
    deleted: Counter = Counter({"calls": len(calls)})
    for call in calls:
        keys = list(client.scan_iter(match=f"{PREFIX}:call:{call}:*", count=500))
        if keys:
            deleted["call records"] += client.delete(*keys)
        deleted["call-backs"] += client.hdel(f"{PREFIX}:callbacks", call)
        client.zrem(f"{PREFIX}:waiting", call)
        deleted["queue places"] += client.hdel(f"{PREFIX}:waiting:calls", call)
        client.zrem(f"{PREFIX}:calls:active", call)
    for key in client.scan_iter(match=f"{PREFIX}:agent:*:calls", count=500):
        if calls:
            deleted["desk entries"] += client.zrem(key, *calls)
    for key in client.scan_iter(match=f"{PREFIX}:events:*", count=500) if calls else ():
        raw: str
        for raw in client.lrange(key, 0, -1):  # type: ignore[assignment]
            if json.loads(raw).get("call") in calls:
                deleted["events"] += client.lrem(key, 0, raw)
    deleted["history"] = client.delete(f"{PREFIX}:caller:{number}:calls")
    return +deleted  # without zero counts


def forget_with_audit(client: redis.Redis | GuardedRedis, number: str, *, by: str, now: float) -> Counter:
    """Forget a caller and write the audit entry: who, when, the counts, the number only as a SHA-256 prefix."""
    deleted = forget_caller(client, number)
    report = ", ".join(f"{n} {what}" for what, n in deleted.items()) or "nothing was stored"
    digest = hashlib.sha256(number.encode()).hexdigest()[:16]
    AuditLog(client).record(by, "forgot a caller", f"number sha256 {digest}…: {report}", now=now)
    return deleted

