"""The project's own Media Stream frames. Transports convert their wire format to and from these at the edge
(`ivr.telephony.media_protocol` for Twilio); everything behind it sees only these."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Start:
    """The stream began: who is calling, and the per-call parameters the TwiML passed."""

    stream_sid: str
    call_sid: str
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class AudioIn:
    """20 ms of caller audio as 8 kHz PCM16 samples."""

    pcm: np.ndarray


@dataclass(frozen=True)
class Keypad:
    """One DTMF key the caller pressed."""

    digit: str


@dataclass(frozen=True)
class PlaybackMark:
    """The caller's side has played our audio up to this mark (or dropped it after a clear)."""

    name: str


@dataclass(frozen=True)
class Stop:
    """The stream ended (the call hung up, or the stream was closed)."""


InboundFrame = Start | AudioIn | Keypad | PlaybackMark | Stop


@dataclass(frozen=True)
class AudioOut:
    """20 ms of prompt audio, 8 kHz μ-law."""

    ulaw: bytes


@dataclass(frozen=True)
class Mark:
    """Ask to be told when playback reaches this point."""

    name: str


@dataclass(frozen=True)
class Clear:
    """Drop the audio not yet played (the caller barged in)."""


OutboundFrame = AudioOut | Mark | Clear
