"""Small immutable types shared by every layer: what was heard, what it meant, what to do next."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ListenKind = Literal["intent", "yes_no", "choice", "digits"]


@dataclass(frozen=True)
class Utterance:
    """One caller turn, transport-neutral: speech text (with n-best) or keyed digits, or nothing (no input)."""

    text: str = ""
    confidence: float = 1.0
    alternatives: tuple[str, ...] = ()
    digits: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and not self.digits


@dataclass(frozen=True)
class Interpretation:
    """The NLU's reading of an utterance: ranked intents with calibrated scores."""

    intent: str | None
    score: float
    ranking: tuple[tuple[str, float], ...] = ()
    out_of_scope: bool = False


# --- Actions: what the dialog asks the transport to do --------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Speak a prompt to the caller."""

    text: str
    barge_in: bool = True


@dataclass(frozen=True)
class Listen:
    """Wait for the caller. `expect` tells the recogniser which grammar applies: intent, yes_no, digits, choice."""

    expect: ListenKind
    hints: tuple[str, ...] = ()
    max_digits: int = 1
    timeout_s: int = 5  # no input
    end_silence_ms: int = 800  # trailing silence that ends the caller's turn (stream mode)


@dataclass(frozen=True)
class Transfer:
    """Hand the caller to a human queue; the context record is stored before this is rendered."""

    queue: str
    skills: tuple[str, ...] = ()
    reason: str = "intent"


@dataclass(frozen=True)
class Hangup:
    """End the call (only after a goodbye; failures transfer instead)."""


Action = Say | Listen | Transfer | Hangup


@dataclass
class Turn:
    """A line of the transcript."""

    speaker: str  # "caller" | "ivr"
    text: str
    at: float
    intent: str | None = None
    score: float | None = None


@dataclass
class SelfServiceResult:
    """What a self-service action returns: words to say, and whether it worked."""

    text: str
    ok: bool = True
    data: dict = field(default_factory=dict)
