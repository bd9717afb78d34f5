"""Turn-taking on the frame clock, pure: VAD gating, end-of-turn detection, no-input timeouts, barge-in and DTMF
collection. Fed one 20 ms frame (or key, or playback mark) at a time, it says what should happen: audio to hear,
a barge-in, or the end of the caller's turn. No socket, no thread, no recogniser: tested frame by frame."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ivr.speech.audio import VoiceActivity
from ivr.types import Listen

FRAMES_PER_S = 50
INTER_DIGIT_FRAMES = 3 * FRAMES_PER_S  # a key string ends after 3 s without a key


@dataclass(frozen=True)
class Hear:
    """Feed these PCM bytes to the recogniser."""

    pcm: bytes


@dataclass(frozen=True)
class BargeIn:
    """The caller spoke (or keyed) over an interruptible prompt: drop the prompt audio now."""


@dataclass(frozen=True)
class TurnEnded:
    """The caller's turn is over: keyed digits, or speech (or no input) for the recogniser to finish."""

    digits: str = ""
    reason: str = "speech"  # speech | no_input | digits | endpoint


@dataclass(frozen=True)
class PromptsDone:
    """Every prompt sent so far has been played."""


TurnEvent = Hear | BargeIn | TurnEnded | PromptsDone


@dataclass
class Expecting:
    max_digits: int
    timeout_frames: int
    end_silence_frames: int


class TurnTaking:
    """One call's turn state. Time is counted in received frames, so behaviour never depends on wall time."""

    def __init__(self, vad: VoiceActivity | None = None):
        self.vad = vad or VoiceActivity()
        self.expecting: Expecting | None = None
        self.outstanding: dict[str, bool] = {}  # mark name → prompt may be interrupted
        self.quiet_frames = 0  # since the last prompt finished, while nobody speaks
        self.heard_speech = False  # in this turn (a recogniser endpoint without speech is not a turn)
        self.digits = ""
        self.digit_age = 0
        self.frame = 0
        self.preroll: deque[bytes] = deque(maxlen=10)  # speech heard while a prompt plays, fed on barge-in

    def listen(self, listen: Listen) -> None:
        """The dialog asked a question: start waiting for the caller's answer."""
        self.expecting = Expecting(listen.max_digits, listen.timeout_s * FRAMES_PER_S,
                                   listen.end_silence_ms * FRAMES_PER_S // 1000)
        self.quiet_frames = 0
        self.heard_speech = False

    def prompt_queued(self, name: str, *, interruptible: bool) -> None:
        self.outstanding[name] = interruptible

    @property
    def interruptible(self) -> bool:
        return all(self.outstanding.values())

    def audio(self, pcm: np.ndarray) -> list[TurnEvent]:
        """One inbound 20 ms frame."""
        self.frame += 1
        speaking = self.vad.update(pcm)
        expecting = self.expecting
        if expecting is None:
            return []
        events: list[TurnEvent] = []
        if self.outstanding:
            self.preroll.append(pcm.tobytes())
            if not speaking or not self.interruptible:
                return []  # silence, or the disclosure and other uninterruptible prompts: play to the end
            onset = list(self.preroll)[:-1]  # the first frames of the speech that triggered the barge-in
            events += [self.barge_in(), *(Hear(frame) for frame in onset)]
        events.append(Hear(pcm.tobytes()))
        self.heard_speech |= speaking
        if speaking and self.vad.silent_for() >= expecting.end_silence_frames:
            return events + [self.end("speech")]
        if self.digits:
            self.digit_age += 1
            if self.digit_age >= INTER_DIGIT_FRAMES:
                return events + [self.end("digits", digits=self.digits)]
        elif not speaking:
            self.quiet_frames += 1
            if self.quiet_frames >= expecting.timeout_frames:
                return events + [self.end("no_input")]
        return events

    def keypad(self, digit: str) -> list[TurnEvent]:
        """One DTMF key. Keys over an uninterruptible prompt are kept, and count once it has played."""
        if self.expecting is None:
            return []
        events: list[TurnEvent] = []
        if self.outstanding and self.interruptible:
            events.append(self.barge_in())
        self.digits += digit
        self.digit_age = 0
        return events + self.digits_complete()

    def digits_complete(self) -> list[TurnEvent]:
        if self.expecting is None or self.outstanding or not self.digits:
            return []
        if self.digits.endswith("#") or len(self.digits) >= self.expecting.max_digits:
            return [self.end("digits", digits=self.digits.rstrip("#"))]
        return []  # else the inter-digit timeout ends it

    def mark(self, name: str) -> list[TurnEvent]:
        """Playback reached a mark. When the last prompt has played, listening starts counting."""
        self.outstanding.pop(name, None)
        if self.outstanding:
            return []
        self.quiet_frames = 0
        if self.vad.speaking and not self.heard_speech:
            self.vad.reset()  # speech over an uninterruptible prompt was never heard: wait for it afresh
        return [PromptsDone(), *self.digits_complete()]

    def endpoint(self) -> list[TurnEvent]:
        """The recogniser heard the end of an utterance. Keys being typed win; an endpoint in silence is no turn."""
        if self.expecting is None or self.outstanding:
            return []
        if self.digits:
            return [self.end("digits", digits=self.digits.rstrip("#"))]
        return [self.end("endpoint")] if self.heard_speech else []

    def barge_in(self) -> BargeIn:
        self.outstanding.clear()  # Twilio returns the cleared marks; they no longer gate listening
        self.preroll.clear()
        self.quiet_frames = 0
        return BargeIn()

    def end(self, reason: str, *, digits: str = "") -> TurnEnded:
        self.expecting = None
        self.digits = ""
        self.digit_age = 0
        self.vad.reset()
        return TurnEnded(digits, reason)
