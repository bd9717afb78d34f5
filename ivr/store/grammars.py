"""Grammar versions per locale: the admins' draft, immutable published versions (who, when, note, figures, the
YAML itself) and the one in service. Publishing announces itself on a pub/sub channel so every worker loads it at
once; workers also poll, so a missed message costs seconds, not a stale grammar. The files in grammars/ are the seed
(served until a first version is published) and stay the export and import format."""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import redis

from ivr.store.breaker import GuardedRedis
from ivr.store.channels import channel

PREFIX = "ivr:grammar"
log = logging.getLogger(__name__)


class GrammarVersions:
    def __init__(self, client: redis.Redis | GuardedRedis):
        self.redis = client

    # --- the draft ------------------------------------------------------------------------------------------
    def draft(self, locale: str) -> dict | None:
        """{"text", "by", "at", "base"} — `base` is the published version the draft was started from (0: the seed)."""
        raw = self.redis.get(f"{PREFIX}:{locale}:draft")
        return json.loads(raw) if raw else None

    def save_draft(self, locale: str, text: str, *, by: str, now: float, base: int) -> None:
        self.redis.set(f"{PREFIX}:{locale}:draft", json.dumps({"text": text, "by": by, "at": now, "base": base}))

    def discard_draft(self, locale: str) -> bool:
        return bool(self.redis.delete(f"{PREFIX}:{locale}:draft"))

    # --- versions -------------------------------------------------------------------------------------------
    def publish(self, locale: str, text: str, *, by: str, now: float, note: str, figures: dict,
                rollback_of: int | None = None) -> int:
        """Store `text` as the next immutable version, put it in service, drop the draft, tell every worker."""
        number = int(self.redis.incr(f"{PREFIX}:{locale}:seq"))
        record = {"version": number, "locale": locale, "text": text, "by": by, "at": now, "note": note,
                  "figures": figures, "rollback_of": rollback_of}
        pipe = self.redis.pipeline()
        pipe.hset(f"{PREFIX}:{locale}:versions", str(number), json.dumps(record))
        pipe.set(f"{PREFIX}:{locale}:published", number)
        pipe.sadd(f"{PREFIX}:locales", locale)
        pipe.delete(f"{PREFIX}:{locale}:draft")
        pipe.execute()
        self.redis.publish(channel(self.redis, "grammar:published"), json.dumps({"locale": locale, "version": number}))
        return number

    def version(self, locale: str, number: int) -> dict | None:
        raw = self.redis.hget(f"{PREFIX}:{locale}:versions", str(number))
        return json.loads(raw) if raw else None

    def versions(self, locale: str) -> list[dict]:
        """Every version of a locale, newest first."""
        found = [json.loads(raw) for raw in self.redis.hvals(f"{PREFIX}:{locale}:versions")]
        return sorted(found, key=lambda v: -v["version"])

    def in_service(self, locale: str) -> int:
        """The published version number (0: none yet, the seed file serves)."""
        return int(self.redis.get(f"{PREFIX}:{locale}:published") or 0)

    def published(self) -> dict[str, int]:
        """Locale → the version in service, for every locale with a published grammar (what workers poll: numbers
        only; a worker reads a version's YAML once, when the number changes)."""
        locales: set[str] = self.redis.smembers(f"{PREFIX}:locales")  # type: ignore[assignment]
        return {locale: number for locale in locales if (number := self.in_service(locale))}

    def text(self, locale: str, number: int) -> str:
        record = self.version(locale, number)
        if record is None:
            raise LookupError(f"no version {number} for {locale}")
        return record["text"]

    def subscribe(self):
        """A pub/sub subscription to the notices of versions published on this database."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel(self.redis, "grammar:published"))
        return pubsub

    def listen(self, on_publish: Callable[[], object], stopped: threading.Event) -> threading.Thread:
        """Call `on_publish` whenever any worker publishes; reconnects after a store fault until `stopped`."""

        def loop() -> None:
            while not stopped.is_set():
                try:
                    pubsub = self.subscribe()
                    while not stopped.is_set():
                        if pubsub.get_message(timeout=1.0):
                            on_publish()
                except Exception:  # the poll keeps the grammar fresh meanwhile
                    log.warning("grammar publish channel lost; listening again in 5 s")
                    stopped.wait(5.0)

        thread = threading.Thread(target=loop, daemon=True, name="grammar-publish-listener")
        thread.start()
        return thread

    # --- the regression set: utterances admins labelled from real calls ------------------------------------
    def label(self, locale: str, text: str, intent: str) -> None:
        self.redis.hset(f"{PREFIX}:{locale}:labelled", text, intent)

    def unlabel(self, locale: str, text: str) -> bool:
        return bool(self.redis.hdel(f"{PREFIX}:{locale}:labelled", text))

    def labelled(self, locale: str) -> dict[str, str]:
        return dict(self.redis.hgetall(f"{PREFIX}:{locale}:labelled"))
