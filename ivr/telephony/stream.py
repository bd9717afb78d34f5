"""One call's Media Stream, wired: inbound frames → turn-taking (on the receive thread, microseconds per frame);
recognition, the dialog step and prompt rendering → the call's lane on the shared worker pool; prompt audio →
a paced player with marks; barge-in → `clear`. Audio never leaves the host."""
from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from ivr.conversation import Conversations
from ivr.speech.audio import frames
from ivr.speech.frames import AudioIn, AudioOut, Clear, InboundFrame, Keypad, Mark, OutboundFrame, PlaybackMark, Start
from ivr.speech.lanes import Lane
from ivr.speech.recognizer import Recognizer
from ivr.speech.tts import PromptAudio
from ivr.speech.turns import BargeIn, Hear, PromptsDone, TurnEnded, TurnEvent, TurnTaking
from ivr.types import Action, Hangup, Listen, Say, Transfer, Utterance

log = logging.getLogger(__name__)
FRAME_S = 0.02


class Player:
    """Sends queued outbound frames on its own thread, pacing audio at one 20 ms frame per 20 ms (or unpaced, for
    tests). An interrupt (barge-in) drops everything queued, including a frame that was waiting for its slot."""

    def __init__(self, send: Callable[[OutboundFrame], None], *, paced: bool = True, lead_s: float = 0.2):
        self.send = send
        self.paced = paced
        self.lead_s = lead_s  # audio sent this far ahead of real time, as real players do, so jitter never starves it
        self.items: queue.Queue = queue.Queue()
        self.generation = 0
        self.lock = threading.Lock()  # a frame's last check and its send, against an interrupt
        self.thread = threading.Thread(target=self._run, daemon=True, name="stream-player")
        self.thread.start()

    def enqueue(self, frame: AudioOut | Mark) -> None:
        self.items.put((self.generation, frame))

    def interrupt(self, clear: Clear) -> None:
        """Barge-in: drop everything queued and send `clear`, atomically, so no frame queued before it (not even
        one being sent right now) reaches the caller after it."""
        with self.lock:
            self.generation += 1
            self.send(clear)

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

    def _send(self, item: tuple[int, AudioOut | Mark], next_at: float) -> float:
        generation, frame = item
        if self.paced and isinstance(frame, AudioOut) and generation == self.generation:
            next_at = max(next_at + 0.02, time.monotonic())  # when this frame plays at the caller's side
            time.sleep(max(0.0, next_at - self.lead_s - time.monotonic()))
        with self.lock:
            if generation != self.generation:  # checked after the pacing wait: nothing plays after a clear
                return next_at
            try:
                self.send(frame)
            except Exception:  # the socket closed under us: nothing left to play to
                self.generation += 1
        return next_at


class MediaSession:
    """Wires one stream. `on_frame` runs on the socket's receive thread and never waits for recognition, the
    dialog, a backend or a prompt render: those run in order on the call's lane."""

    def __init__(self, conversations: Conversations, prompts: PromptAudio, recognizer_for: Callable[[str], Recognizer],
                 send: Callable[[OutboundFrame], None], close: Callable[[], None], *, pool: Executor,
                 paced: bool = True):
        self.conversations = conversations
        self.prompts = prompts
        self.recognizer_for = recognizer_for
        self.recognizer: Recognizer | None = None
        self.send = send
        self.close = close
        self.player = Player(send, paced=paced)
        self.turns = TurnTaking()
        self.lock = threading.Lock()  # guards `turns`: frames arrive on the socket thread, decisions on the lane
        self.lane = Lane(pool, on_error=lambda exc: self.fault())
        self.call_sid = ""
        self.locale = "en-US"
        self.marks = 0
        self.unheard = 0  # frames queued for the recogniser
        self.ending = False
        self.events: list[tuple[str, int]] = []  # (what, frame) for tests and benchmarks

    # -- the receive thread ----------------------------------------------------------------------------
    def on_frame(self, frame: InboundFrame) -> None:
        if isinstance(frame, Start):
            self.call_sid = frame.call_sid
            self.lane.submit(functools.partial(self.begin, frame))
            return
        with self.lock:
            if isinstance(frame, AudioIn):
                events = self.turns.audio(frame.pcm)
            elif isinstance(frame, Keypad):
                events = self.turns.keypad(frame.digit)
            elif isinstance(frame, PlaybackMark):
                events = self.turns.mark(frame.name)
            else:
                return self.stop()
            self.dispatch(events)

    def dispatch(self, events: list[TurnEvent]) -> None:
        """Carry out what turn-taking decided (called with the lock held)."""
        for event in events:
            if isinstance(event, Hear):
                self.unheard += 1
                self.lane.submit(functools.partial(self.hear, event.pcm))
            elif isinstance(event, BargeIn):
                self.player.interrupt(Clear())
                self.events.append(("clear", self.turns.frame))
            elif isinstance(event, TurnEnded):
                self.lane.submit(functools.partial(self.finish, event))
            elif isinstance(event, PromptsDone):
                self.events.append(("prompt_done", self.turns.frame))
                if self.ending:
                    self.hang_up()

    def stop(self) -> None:
        """The stream is over: drop pending work and stop playing."""
        self.lane.close()
        self.player.stop()

    # -- the call's lane -------------------------------------------------------------------------------
    def begin(self, start: Start) -> None:
        reply = self.conversations.begin(start.call_sid, caller=start.parameters.get("caller", ""),
                                         locale=start.parameters.get("locale", self.locale))
        self.locale = reply.locale
        self.recognizer = self.recognizer_for(self.locale)
        self.perform(reply.actions)

    @property
    def lag_s(self) -> float:
        """Audio handed to recognition and not yet decoded: how far this call's recogniser is behind."""
        return self.unheard * FRAME_S

    def hear(self, pcm: bytes) -> None:
        with self.lock:
            self.unheard -= 1
        if self.recognizer is not None and self.recognizer.feed(pcm):  # the recogniser's own endpoint
            with self.lock:
                self.dispatch(self.turns.endpoint())

    def finish(self, ended: TurnEnded) -> None:
        """Hand one caller turn to the conversation and play its answer."""
        if ended.digits or self.recognizer is None:
            utterance = Utterance(digits=ended.digits)
        else:
            utterance = self.recognizer.finish()
        self.events.append(("utterance", self.turns.frame))
        self.perform(self.conversations.respond(self.call_sid, utterance).actions)

    def fault(self) -> None:
        """Recogniser, store, TTS or backend failed mid-call: apologise and transfer, never silence."""
        log.error("call %s: stream fault, transferring to a human", self.call_sid)
        try:
            self.perform(self.conversations.fail(self.call_sid, locale=self.locale, reason="speech_fault").actions)
        except Exception:  # not even the apology plays: close, and /voice/after-stream transfers the caller
            log.exception("call %s: the fault transfer could not be played; closing the stream", self.call_sid)
            self.hang_up()

    def perform(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Say):
                self.play(action.text, interruptible=action.barge_in)
            elif isinstance(action, Listen):
                if self.recognizer is not None:
                    self.recognizer.start(action.expect, action.hints)
                with self.lock:
                    self.turns.listen(action)
            elif isinstance(action, Transfer | Hangup):
                self.ending = True  # the <Connect action> webhook renders the transfer from the stored state
        with self.lock:
            if self.ending and not self.turns.outstanding:
                self.hang_up()

    def play(self, text: str, *, interruptible: bool) -> None:
        audio = self.prompts.ulaw(text, self.locale)
        self.marks += 1
        name = f"prompt-{self.marks}"
        with self.lock:
            self.turns.prompt_queued(name, interruptible=interruptible)
            self.events.append(("play", self.turns.frame))
        for chunk in frames(audio):
            self.player.enqueue(AudioOut(chunk))
        self.player.enqueue(Mark(name))

    def hang_up(self) -> None:
        """Close the stream after the last prompt; Twilio then requests the <Connect action> URL."""
        self.player.stop()
        self.close()
