"""The missed-utterance inbox: what real callers said when the bot failed them (not understood, a request the
hotline does not handle, a guess the caller denied, a misroute an agent reported), redacted, grouped by normalised
text with counts and first/last seen, per locale. Entries expire `ttl_s` after they were last seen."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import redis

from ivr.store.breaker import GuardedRedis

PREFIX = "ivr"


def normalised(text: str) -> str:
    return " ".join(re.findall(r"[\w']+", text.lower()))


class MissedUtterances:
    def __init__(self, client: redis.Redis | GuardedRedis, *, ttl_s: int):
        self.redis = client
        self.ttl_s = ttl_s

    def add(self, locale: str, text: str, *, reason: str, now: float, intent: str | None = None) -> None:
        """Count one miss (the text must be redacted already); `intent` is what it should have been, when known."""
        key = normalised(text)
        if not key:
            return
        field = hashlib.sha1(key.encode()).hexdigest()[:16]
        raw = self.redis.hget(f"{PREFIX}:inbox:{locale}", field)
        entry: dict[str, Any] = (json.loads(raw) if raw else
                                 {"text": key, "count": 0, "first": now, "reasons": {}, "intents": {}})
        entry["count"] += 1
        entry["last"] = now
        entry["reasons"][reason] = entry["reasons"].get(reason, 0) + 1
        if intent:
            entry["intents"][intent] = entry["intents"].get(intent, 0) + 1
        self.redis.hset(f"{PREFIX}:inbox:{locale}", field, json.dumps(entry))

    def entries(self, locale: str, *, now: float) -> list[dict]:
        """The inbox, most frequent first; expired entries are dropped as they are found."""
        found = self.redis.hgetall(f"{PREFIX}:inbox:{locale}")
        entries, expired = [], []
        for field, raw in found.items():
            entry = json.loads(raw)
            if entry["last"] < now - self.ttl_s:
                expired.append(field)
            else:
                entries.append({"id": field, **entry})
        if expired:
            self.redis.hdel(f"{PREFIX}:inbox:{locale}", *expired)
        return sorted(entries, key=lambda e: (-e["count"], -e["last"]))

    def dismiss(self, locale: str, entry_id: str) -> bool:
        return bool(self.redis.hdel(f"{PREFIX}:inbox:{locale}", entry_id))
