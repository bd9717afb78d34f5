"""People who run the hotline (admins change grammars and data, supervisors look and test) and the audit log of
every change they make: who, when, what."""
from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from ivr.store.breaker import GuardedRedis
from ivr.types import Record

PREFIX = "ivr"
ROLES = ("admin", "supervisor")
AUDIT_KEPT = 100_000


@dataclass(frozen=True)
class Admin(Record):
    name: str
    role: str
    password_hash: str

    @property
    def may_change(self) -> bool:
        """Supervisors see everything and try utterances; only admins edit, publish, promote and delete."""
        return self.role == "admin"


class AdminAccounts:
    def __init__(self, client: redis.Redis | GuardedRedis):
        self.redis = client

    def save(self, admin: Admin) -> None:
        if admin.role not in ROLES:
            raise ValueError(f"role {admin.role!r}: use one of {', '.join(ROLES)}")
        self.redis.hset(f"{PREFIX}:admins", admin.name, json.dumps(admin.to_dict()))

    def admin(self, name: str) -> Admin | None:
        raw = self.redis.hget(f"{PREFIX}:admins", name)
        return Admin.from_dict(json.loads(raw)) if raw else None

    def admins(self) -> list[Admin]:
        return sorted((Admin.from_dict(json.loads(raw)) for raw in self.redis.hvals(f"{PREFIX}:admins")),
                      key=lambda a: a.name)

    def remove(self, name: str) -> bool:
        return bool(self.redis.hdel(f"{PREFIX}:admins", name))


class AuditLog:
    """Append-only from the pages' point of view; the newest first."""

    def __init__(self, client: redis.Redis | GuardedRedis):
        self.redis = client

    def record(self, who: str, what: str, detail: str, *, now: float) -> None:
        pipe = self.redis.pipeline()
        pipe.lpush(f"{PREFIX}:audit", json.dumps({"who": who, "what": what, "detail": detail, "at": now}))
        pipe.ltrim(f"{PREFIX}:audit", 0, AUDIT_KEPT - 1)
        pipe.execute()

    def entries(self, limit: int = 200) -> list[dict]:
        return [json.loads(raw) for raw in self.redis.lrange(f"{PREFIX}:audit", 0, limit - 1)]
