"""Small immutable types shared by every layer: what was heard, what it meant, what to do next, and the records
that cross the seams (context, callback, event)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

ListenKind = Literal["intent", "yes_no", "choice", "digits"]


@dataclass(frozen=True)
class Utterance:
    """One caller turn, transport-neutral: speech text (with n-best) or keyed digits, or nothing (no input)."""

    text: str = ""
    confidence: float = 1.0
    alternatives: tuple[str, ...] = ()
    digits: str = ""
    # the recogniser's posterior of the text and of each alternative, in that order (empty: it gave none)
    posteriors: tuple[float, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and not self.digits


@dataclass(frozen=True)
class Expectation:
    """What the current question expects, so the NLU reads the answer for it (and ranks intents only if needed)."""

    kind: ListenKind = "intent"
    rank_intents: bool = True  # an open question, or "anything else?" that may name the next need
    choices: tuple[str, ...] = ()  # the intents a "which one?" question offers


@dataclass(frozen=True)
class Interpretation:
    """The NLU's reading of an utterance for the question asked: ranked intents with calibrated scores, and the
    slot values the question expects (yes/no, digits, a choice). The dialog decides from this alone."""

    utterance: Utterance = Utterance()
    intent: str | None = None
    score: float = 0.0
    ranking: tuple[tuple[str, float], ...] = ()
    out_of_scope: bool = False  # no intent: either not understood, or…
    unsupported: bool = False  # …understood as something this hotline does not handle
    wants_agent: bool = False  # an agent word, the agent intent, or a lone 0 key
    yes_no: bool | None = None
    digits: str = ""  # keyed (without "#") or spoken
    choice: str | None = None  # the intent picked in a "which one?" question
    menu_intent: str | None = None  # the intent a keypad menu key selects
    further: tuple[str, ...] = ()  # more needs named in the same sentence, in the order said

    @property
    def no_input(self) -> bool:
        return self.utterance.is_empty


# --- Actions: what the dialog asks the transport (or the conversation) to do ------------------------------


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


@dataclass(frozen=True)
class RunSelfService:
    """Run a registered self-service backend; the conversation feeds its result back to the dialog."""

    name: str
    slots: tuple[tuple[str, str], ...] = ()


Action = Say | Listen | Transfer | Hangup | RunSelfService


@dataclass
class Turn:
    """A line of the transcript."""

    speaker: str  # "caller" | "ivr"
    text: str
    at: float
    intent: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class SelfServiceRequest:
    """What a self-service backend gets: the collected slots and who is calling, in which language."""

    slots: dict[str, str]
    caller: str
    locale: str


@dataclass(frozen=True)
class SelfServiceResult:
    """What a self-service backend returns: words to say, and whether it worked."""

    text: str
    ok: bool = True
    data: dict = field(default_factory=dict)


# --- Records that cross the seams (stored as plain data) ------------------------------------------------


class Record:
    """Frozen records that round-trip through plain dicts (JSON in the store)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class CallContext(Record):
    """Everything the caller already told us, stored before the transfer and shown on the agent's screen."""

    call_sid: str
    caller: str
    locale: str
    intent: str | None
    intent_label: str | None
    confidence: float
    alternatives: tuple[dict, ...]  # {"intent", "score"}
    slots: dict[str, str]
    transcript: tuple[dict, ...]  # {"speaker", "text", "at", ...}
    retries: int
    agent_requested: bool
    mood: str
    queue: str | None
    skills: tuple[str, ...]
    reason: str | None
    callback_number: str | None
    summary: str
    started_at: float
    further: tuple[str, ...] = ()  # needs the caller named too, not handled yet (the agent takes them on)
    verified_slots: tuple[str, ...] = ()  # slots a self-service backend accepted (e.g. it found the account)


@dataclass(frozen=True)
class CallbackRequest(Record):
    """A caller asked to be called back (closed queue, or a long wait on hold)."""

    call: str
    number: str
    queue: str | None
    intent: str | None
    reason: str
    at: float
    locale: str = "en-US"
    attempts: int = 0  # dialled so far
    not_before: float = 0.0  # after a failed attempt, the next waits until then


@dataclass(frozen=True)
class CallEvent(Record):
    """One line of the analytics log: what callers ask for and where the bot fails."""

    call: str
    type: str  # start | turn | transfer | callback | queue_exit | status
    at: float
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"call": self.call, "type": self.type, "at": self.at, **self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallEvent:
        rest = {k: v for k, v in data.items() if k not in ("call", "type", "at")}
        return cls(data.get("call", ""), data.get("type", ""), data.get("at", 0.0), rest)


class TelephonyClient(Protocol):
    """The calls the service places itself (Twilio's REST API): ring an agent's leg, move a queued caller, end a
    leg. Real: `ivr.telephony.client.TwilioClient`; tests and the simulator: `ivr.testing.telephony.FakeTelephony`."""

    def ring(self, to: str, *, url: str, status_callback: str, timeout_s: int) -> str:
        """Place a call to `to` (`client:<id>` or a number); Twilio fetches `url` when it is answered and posts
        `status_callback` when it ends. Returns the leg's CallSid."""
        ...

    def redirect_queued(self, queue_sid: str, call_sid: str, *, url: str) -> None:
        """Take a caller out of a Twilio queue to the TwiML at `url`."""
        ...

    def hang_up(self, call_sid: str) -> None:
        ...

    def redirect_call(self, call_sid: str, *, url: str) -> None:
        """Give a live call new TwiML (a cold transfer sends the caller back to a queue)."""
        ...

    def hold(self, conference: str, call_sid: str, *, on: bool, hold_url: str) -> None:
        """Put a conference participant on hold (with music) or take them off it (a warm transfer's consultation)."""
        ...
