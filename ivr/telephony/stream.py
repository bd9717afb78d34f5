"""Twilio Media Streams: caller audio → VAD + recogniser → dialog; prompts → paced μ-law frames with marks;
caller speech during an interruptible prompt → `clear` (barge-in). Audio never leaves the host.
Protocol: https://www.twilio.com/docs/voice/media-streams/websocket-messages"""
from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.conversation import Conversations
from ivr.speech.audio import VoiceActivity, frames, ulaw_to_pcm
from ivr.speech.recognizer import Recognizer
from ivr.speech.tts import PromptAudio
from ivr.types import Action, Hangup, Listen, Say, Transfer, Utterance

log = logging.getLogger(__name__)
FRAMES_PER_S = 50


class Player:
    """Sends queued outbound messages, pacing media at one 20 ms frame per 20 ms (or unpaced, for tests)."""

    def __init__(self, send: Callable[[dict], None], *, paced: bool = True):
        self.send = send
        self.paced = paced
        self.items: queue.Queue = queue.Queue()
        self.generation = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="stream-player")
        self.thread.start()

    def enqueue(self, message: dict) -> None:
        self.items.put((self.generation, message))

    def flush(self) -> None:
        """Drop everything not yet sent (barge-in)."""
        self.generation += 1

    def stop(self) -> None:
        self.items.put(None)

    def drain(self) -> None:
        """Block until everything queued so far has been sent (or dropped)."""
        self.items.join()

    def _run(self) -> None:
        next_at = time.monotonic()
        while (item := self.items.get()) is not None:
            try:
                next_at = self._send(item, next_at)
            finally:
                self.items.task_done()
        self.items.task_done()

    def _send(self, item: tuple[int, dict], next_at: float) -> float:
        generation, message = item
        if generation != self.generation:
            return next_at
        if self.paced and message["event"] == "media":
            next_at = max(next_at + 0.02, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))
        try:
            self.send(message)
        except Exception:  # the socket closed under us: nothing left to play to
            self.generation += 1
        return next_at


@dataclass
class Listening:
    expect: str
    max_digits: int
    timeout_frames: int
    end_silence_frames: int


class MediaSession:
    """One call's stream. Time is counted in received 20 ms frames, so behaviour does not depend on wall time."""

    def __init__(self, conversations: Conversations, prompts: PromptAudio, recognizer_for: Callable[[str], Recognizer],
                 send: Callable[[dict], None], close: Callable[[], None], *, paced: bool = True):
        self.conversations = conversations
        self.prompts = prompts
        self.recognizer_for = recognizer_for
        self.recognizer: Recognizer | None = None
        self.send = send
        self.close = close
        self.player = Player(send, paced=paced)
        self.vad = VoiceActivity()
        self.call_sid = self.stream_sid = ""
        self.locale = "en-US"
        self.outstanding: dict[str, bool] = {}  # mark name → prompt may be interrupted
        self.marks = 0
        self.listening: Listening | None = None
        self.quiet_frames = 0  # since the last prompt finished, while nobody speaks
        self.digits = ""
        self.digit_age = 0
        self.ending = False
        self.events: list[tuple[str, int]] = []  # (what, frame) for tests and benchmarks
        self.frame = 0
        self.preroll: deque[bytes] = deque(maxlen=10)  # speech heard while a prompt plays, fed on barge-in

    # -- inbound ---------------------------------------------------------------------------------------
    def handle(self, message: dict) -> None:
        event = message.get("event")
        try:
            if event == "start":
                self.on_start(message["start"])
            elif event == "media" and message.get("media", {}).get("track", "inbound") == "inbound":
                self.on_audio(base64.b64decode(message["media"]["payload"]))
            elif event == "dtmf":
                self.on_dtmf(message["dtmf"]["digit"])
            elif event == "mark":
                self.on_mark(message["mark"]["name"])
            elif event == "stop":
                self.player.stop()
        except Exception:
            log.exception("call %s: stream fault, transferring to a human", self.call_sid)
            self.perform(self.conversations.fail(self.call_sid, locale=self.locale, reason="speech_fault").actions)

    def on_start(self, start: dict) -> None:
        self.stream_sid, self.call_sid = start["streamSid"], start["callSid"]
        params = start.get("customParameters", {})
        reply = self.conversations.begin(self.call_sid, caller=params.get("caller", ""),
                                         locale=params.get("locale", self.locale))
        self.locale = reply.locale
        self.recognizer = self.recognizer_for(self.locale)
        self.perform(reply.actions)

    def on_audio(self, payload: bytes) -> None:
        self.frame += 1
        pcm = ulaw_to_pcm(payload)
        speaking = self.vad.update(pcm)
        listening = self.listening
        if listening is None or self.recognizer is None:
            return
        if self.outstanding:
            self.preroll.append(pcm.tobytes())
            if not speaking or not all(self.outstanding.values()):
                return  # silence, or the disclosure and other uninterruptible prompts: play to the end
            onset = list(self.preroll)[:-1]  # the first frames of the speech that triggered the barge-in
            self.barge_in()
            for earlier in onset:
                self.recognizer.feed(earlier)
        if self.recognizer.feed(pcm.tobytes()) or (speaking and self.vad.silent_for() >= listening.end_silence_frames):
            return self.respond(self.recognizer.finish())
        if self.digits:
            self.digit_age += 1
            if self.digit_age >= 3 * FRAMES_PER_S:  # inter-digit timeout
                return self.respond(Utterance(digits=self.digits))
        elif not speaking:
            self.quiet_frames += 1
            if self.quiet_frames >= listening.timeout_frames:
                self.respond(self.recognizer.finish())  # no input

    def on_dtmf(self, digit: str) -> None:
        if self.listening is None:
            return
        if self.outstanding:
            self.barge_in()
        self.digits += digit
        self.digit_age = 0
        if digit == "#" or len(self.digits) >= self.listening.max_digits:  # else the inter-digit timeout ends it
            self.respond(Utterance(digits=self.digits.rstrip("#")))

    def on_mark(self, name: str) -> None:
        self.outstanding.pop(name, None)
        if not self.outstanding:
            self.events.append(("prompt_done", self.frame))
            self.quiet_frames = 0
            if self.ending:
                self.player.stop()
                self.close()

    def barge_in(self) -> None:
        self.player.flush()
        self.send({"event": "clear", "streamSid": self.stream_sid})
        self.events.append(("clear", self.frame))
        self.outstanding.clear()  # Twilio returns the cleared marks; they no longer gate listening
        self.preroll.clear()
        self.quiet_frames = 0

    # -- dialog ----------------------------------------------------------------------------------------
    def respond(self, utterance: Utterance) -> None:
        """Hand one caller turn to the dialog and play its answer."""
        self.events.append(("utterance", self.frame))
        self.listening = None
        self.digits = ""
        self.vad.reset()
        self.perform(self.conversations.respond(self.call_sid, utterance).actions)

    def perform(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Say):
                self.play(action.text, interruptible=action.barge_in)
            elif isinstance(action, Listen):
                self.listening = Listening(action.expect, action.max_digits, action.timeout_s * FRAMES_PER_S,
                                           action.end_silence_ms * FRAMES_PER_S // 1000)
                self.quiet_frames = 0
                if self.recognizer is not None:
                    self.recognizer.start(action.expect, action.hints)
            elif isinstance(action, Transfer | Hangup):
                self.ending = True  # the <Connect action> webhook renders the transfer from the stored state
                self.listening = None
        if self.ending and not self.outstanding:
            self.player.stop()
            self.close()

    def play(self, text: str, *, interruptible: bool) -> None:
        audio = self.prompts.ulaw(text, self.locale)
        for frame in frames(audio):
            self.player.enqueue({"event": "media", "streamSid": self.stream_sid,
                                 "media": {"payload": base64.b64encode(frame).decode()}})
        self.marks += 1
        name = f"prompt-{self.marks}"
        self.outstanding[name] = interruptible
        self.player.enqueue({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
        self.events.append(("play", self.frame))

