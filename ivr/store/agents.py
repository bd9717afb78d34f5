"""Agents, their presence, the callers waiting for one, and the reservations that pair them — atomic across workers:
a caller and an agent are each claimed with SET NX, and an agent leaves the idle set with one ZREM, so two workers
never ring the same agent or take the same caller twice."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis

from ivr.store.breaker import GuardedRedis
from ivr.store.channels import channel
from ivr.types import Record

PREFIX = "ivr"
STATES = ("offline", "available", "ringing", "busy", "wrap_up", "missed")


@dataclass(frozen=True)
class Agent(Record):
    """A person who takes calls: `contact` is `client:<id>` (the browser phone) or a phone number."""

    id: str
    name: str
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)
    contact: str = ""
    password_hash: str = ""

    def fits(self, skills: tuple[str, ...] | list[str], language: str) -> bool:
        return set(skills) <= set(self.skills) and language in self.languages


@dataclass(frozen=True)
class Waiting(Record):
    """A caller in a Twilio queue, waiting for an agent."""

    call: str
    queue: str
    queue_sid: str
    skills: tuple[str, ...]
    locale: str
    at: float
    priority: int = 0
    data: dict = field(default_factory=dict)


class AgentStore:
    def __init__(self, client: redis.Redis | GuardedRedis, *, reservation_ttl_s: int = 120):
        self.redis = client
        self.reservation_ttl_s = reservation_ttl_s

    # --- the roster -----------------------------------------------------------------------------------------
    def save_agent(self, agent: Agent) -> None:
        self.redis.hset(f"{PREFIX}:agents", agent.id, json.dumps(agent.to_dict()))

    def agent(self, agent_id: str) -> Agent | None:
        raw = self.redis.hget(f"{PREFIX}:agents", agent_id)
        return _agent(json.loads(raw)) if raw else None

    def agents(self) -> list[Agent]:
        return sorted((_agent(json.loads(r)) for r in self.redis.hvals(f"{PREFIX}:agents")), key=lambda a: a.id)

    def remove_agent(self, agent_id: str) -> bool:
        self.set_state(agent_id, "offline", 0.0)
        return bool(self.redis.hdel(f"{PREFIX}:agents", agent_id))

    # --- presence -------------------------------------------------------------------------------------------
    def set_state(self, agent_id: str, state: str, now: float, **details: str) -> None:
        """Record an agent's state; `available` puts them in the idle set, ordered by how long they have been idle."""
        if state not in STATES:
            raise ValueError(f"unknown agent state {state!r}")
        pipe = self.redis.pipeline()
        pipe.delete(f"{PREFIX}:agent:{agent_id}:presence")
        mapping: dict[str, str | float] = {"state": state, "since": now, **details}
        pipe.hset(f"{PREFIX}:agent:{agent_id}:presence", mapping=mapping)  # type: ignore[arg-type]
        if state == "available":
            pipe.zadd(f"{PREFIX}:agents:idle", {agent_id: now})
        else:
            pipe.zrem(f"{PREFIX}:agents:idle", agent_id)
        pipe.execute()

    def presence(self, agent_id: str) -> dict:
        found = self.redis.hgetall(f"{PREFIX}:agent:{agent_id}:presence")
        return {"state": "offline", "since": 0.0} | {k: (float(v) if k == "since" else v) for k, v in found.items()}

    def idle_agents(self) -> list[str]:
        """Available agents, the longest idle first."""
        return [str(agent) for agent in self.redis.zrange(f"{PREFIX}:agents:idle", 0, -1)]

    def idle(self) -> list[Agent]:
        """The available agents themselves, the longest idle first (one round trip for the roster)."""
        ids = self.idle_agents()
        raws = self.redis.hmget(f"{PREFIX}:agents", ids) if ids else []
        return [_agent(json.loads(raw)) for raw in raws if raw]

    # --- callers waiting ------------------------------------------------------------------------------------
    def add_waiting(self, waiting: Waiting) -> bool:
        """Register a queued caller once (Twilio repeats the waitUrl); higher priority waits as if it came earlier."""
        added = self.redis.hsetnx(f"{PREFIX}:waiting:calls", waiting.call, json.dumps(waiting.to_dict()))
        if added:
            self.redis.zadd(f"{PREFIX}:waiting", {waiting.call: waiting.at - 60 * waiting.priority})
        return bool(added)

    def update_waiting(self, waiting: Waiting) -> None:
        self.redis.hset(f"{PREFIX}:waiting:calls", waiting.call, json.dumps(waiting.to_dict()))

    def waiting(self, call: str) -> Waiting | None:
        raw = self.redis.hget(f"{PREFIX}:waiting:calls", call)
        return _waiting(json.loads(raw)) if raw else None

    def all_waiting(self) -> list[Waiting]:
        """Callers waiting, in the order they are served (priority, then time)."""
        order = [str(call) for call in self.redis.zrange(f"{PREFIX}:waiting", 0, -1)]
        raws = self.redis.hmget(f"{PREFIX}:waiting:calls", order) if order else []
        return [_waiting(json.loads(raw)) for raw in raws if raw]

    def remove_waiting(self, call: str) -> None:
        pipe = self.redis.pipeline()
        pipe.zrem(f"{PREFIX}:waiting", call)
        pipe.hdel(f"{PREFIX}:waiting:calls", call)
        pipe.execute()

    # --- reservations ---------------------------------------------------------------------------------------
    def reserve(self, call: str, agent_id: str) -> str:
        """Pair a caller with an idle agent, or do nothing: the caller and the agent are each claimed once, and the
        agent must still be idle (the ZREM that takes them out of the idle set decides). Returns "reserved", or why
        not: "caller_taken" (look no further for this caller) or "agent_taken" (look no further for this agent)."""
        ttl = self.reservation_ttl_s
        if not self.redis.set(f"{PREFIX}:reserved:call:{call}", agent_id, nx=True, ex=ttl):
            return "caller_taken"
        if self.redis.set(f"{PREFIX}:reserved:agent:{agent_id}", call, nx=True, ex=ttl):
            if self.redis.zrem(f"{PREFIX}:agents:idle", agent_id):
                return "reserved"
            self.redis.delete(f"{PREFIX}:reserved:agent:{agent_id}")
        self.redis.delete(f"{PREFIX}:reserved:call:{call}")
        return "agent_taken"

    def reserved_agent(self, call: str) -> str | None:
        found = self.redis.get(f"{PREFIX}:reserved:call:{call}")
        return str(found) if found else None

    def reserved_call(self, agent_id: str) -> str | None:
        found = self.redis.get(f"{PREFIX}:reserved:agent:{agent_id}")
        return str(found) if found else None

    def extend(self, call: str, agent_id: str, ttl_s: int) -> None:
        """Keep a pairing for the length of the conversation (the ring timeout was only for ringing)."""
        self.redis.expire(f"{PREFIX}:reserved:call:{call}", ttl_s)
        self.redis.expire(f"{PREFIX}:reserved:agent:{agent_id}", ttl_s)

    def caller_left(self, call: str, *, ttl_s: int) -> tuple[Waiting | None, str | None]:
        """The caller hung up: off the waiting list and marked gone, in one round trip. Returns their waiting
        record (if they were queued) and the agent reserved for them (if one was)."""
        pipe = self.redis.pipeline()
        pipe.hget(f"{PREFIX}:waiting:calls", call)
        pipe.zrem(f"{PREFIX}:waiting", call)
        pipe.hdel(f"{PREFIX}:waiting:calls", call)
        pipe.set(f"{PREFIX}:call:{call}:gone", "1", ex=ttl_s)
        pipe.get(f"{PREFIX}:reserved:call:{call}")
        raw, *_, agent_id = pipe.execute()
        return (_waiting(json.loads(raw)) if raw else None), (str(agent_id) if agent_id else None)

    def caller_gone(self, call: str) -> bool:
        return bool(self.redis.exists(f"{PREFIX}:call:{call}:gone"))

    def hand_over(self, call: str, from_agent: str, to_agent: str, ttl_s: int) -> None:
        """A completed warm transfer: the call now belongs to the second agent (the first is released)."""
        pipe = self.redis.pipeline()
        pipe.set(f"{PREFIX}:reserved:call:{call}", to_agent, ex=ttl_s)
        pipe.set(f"{PREFIX}:reserved:agent:{to_agent}", call, ex=ttl_s)
        pipe.delete(f"{PREFIX}:reserved:agent:{from_agent}")
        pipe.delete(f"{PREFIX}:reserved:call:{call}:transfer")
        pipe.execute()

    def release(self, call: str, agent_id: str) -> None:
        """Undo a pairing (the leg ended); only the keys that still name this pair are deleted."""
        if self.redis.get(f"{PREFIX}:reserved:call:{call}") == agent_id:
            self.redis.delete(f"{PREFIX}:reserved:call:{call}")
        if self.redis.get(f"{PREFIX}:reserved:agent:{agent_id}") == call:
            self.redis.delete(f"{PREFIX}:reserved:agent:{agent_id}")


    # --- what an agent may see, and what is pushed to their desk --------------------------------------------
    def assign(self, agent_id: str, call: str, *, ttl_s: int) -> None:
        """Remember that this call was offered to this agent: their desk may read its context."""
        pipe = self.redis.pipeline()
        pipe.zadd(f"{PREFIX}:agent:{agent_id}:calls", {call: 1})
        pipe.expire(f"{PREFIX}:agent:{agent_id}:calls", ttl_s)
        pipe.execute()

    def was_assigned(self, agent_id: str, call: str) -> bool:
        return self.redis.zscore(f"{PREFIX}:agent:{agent_id}:calls", call) is not None

    def publish(self, agent_id: str, event: dict) -> None:
        """Push to the agent's desk, whichever worker serves it (Redis pub/sub)."""
        self.redis.publish(channel(self.redis, f"desk:{agent_id}"), json.dumps(event))

    def subscribe(self, agent_id: str):
        """A pub/sub subscription to the agent's desk events (the SSE stream reads it)."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel(self.redis, f"desk:{agent_id}"))
        return pubsub


def _agent(data: dict) -> Agent:
    return Agent.from_dict(data | {"skills": tuple(data.get("skills", ())),
                                   "languages": tuple(data.get("languages", ("en",)))})


def _waiting(data: dict) -> Waiting:
    return Waiting.from_dict(data | {"skills": tuple(data.get("skills", ()))})
