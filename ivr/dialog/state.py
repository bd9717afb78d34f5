"""Per-call dialog state: plain data that round-trips through JSON so any worker can continue the call."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from ivr.types import Turn

Step = Literal["intent", "confirm", "disambiguate", "slot", "anything_else", "callback", "done"]


@dataclass
class DialogState:
    """Where one call stands. Stored under its CallSid; never kept in process memory between requests."""

    call_sid: str
    caller: str = ""
    locale: str = "en-US"
    started_at: float = 0.0
    step: Step = "intent"
    intent: str | None = None
    further: list[str] = field(default_factory=list)  # more needs named in the same sentence, handled next
    score: float = 0.0
    ranking: list[tuple[str, float]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    slots: dict[str, str] = field(default_factory=dict)
    verified: list[str] = field(default_factory=list)  # slots a self-service backend accepted (an account it found)
    pending_slot: str | None = None
    retries: int = 0  # in the current step
    total_retries: int = 0
    agent_requested: bool = False
    turns: list[Turn] = field(default_factory=list)
    outcome: str | None = None  # transfer | self_service | callback | goodbye
    queue: str | None = None
    skills: list[str] = field(default_factory=list)
    transfer_reason: str | None = None
    callback_number: str | None = None
    turn_count: int = 0

    def to_dict(self) -> dict:
        """A snapshot as plain data (what `asdict` gives, at a fifth of its cost: every webhook saves one)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("further", "choices", "verified", "skills"):
            data[name] = list(data[name])
        data["slots"] = dict(self.slots)
        data["ranking"] = [tuple(r) for r in self.ranking]
        data["turns"] = [vars(t).copy() for t in self.turns]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DialogState:
        data = dict(data)
        data["turns"] = [Turn(**t) for t in data.get("turns", [])]
        data["ranking"] = [tuple(r) for r in data.get("ranking", [])]
        return cls(**data)
