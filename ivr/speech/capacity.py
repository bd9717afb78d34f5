"""How many stream calls a process can decode in real time, from the recogniser's measured cost: CPU seconds per
second of audio, on this machine, with this model (a small English model costs far less than a large one)."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import numpy as np

from ivr.speech.audio import RATE
from ivr.speech.recognizer import Recognizer

log = logging.getLogger(__name__)
HEADROOM = 0.8  # of the cores: webhooks, the NLU and prompt playback need some too
LISTENING = 0.5  # share of a call's time the recogniser is fed: it hears nothing while prompts play


def speech_like(seconds: float) -> bytes:
    """A voiced, syllable-paced signal as 8 kHz PCM16: something the decoder has to work on, without a recording."""
    t = np.arange(int(RATE * seconds)) / RATE
    signal = np.sin(2 * np.pi * 160 * t) + 0.5 * np.sin(2 * np.pi * 480 * t) + 0.2 * np.random.default_rng(0).normal(
        size=t.size)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # about three syllables a second
    return (signal * envelope * 6000).astype(np.int16).tobytes()


def cost_per_audio_second(recognizer: Recognizer, *, seconds: float = 2.0) -> float:
    """CPU seconds this thread spends decoding one second of audio in one utterance. Admission counts on a new
    recogniser's first utterance, the dearest (see `WarmRecognizers`): calls that start together each get a new
    one. Counting on a partly warmed one admitted 7 Korean-model calls here, whose first turns answered 5.7 s late."""
    audio = speech_like(seconds)
    recognizer.start("intent", ())
    started = time.thread_time()
    for offset in range(0, len(audio), 320):
        recognizer.feed(audio[offset:offset + 320])
    recognizer.finish()
    return (time.thread_time() - started) / seconds


def streams_for(cost: float, *, cores: int | None = None) -> int:
    """Calls whose recognition fits in the cores' real time, with headroom; at least one."""
    cores = cores or os.cpu_count() or 1
    return max(1, int(cores * HEADROOM / max(cost * LISTENING, 1e-6)))


def measure(recognizer_for: Callable[[str], Recognizer], *, locale: str = "en-US") -> int:
    """Measure once at start-up and say what it means."""
    cost = cost_per_audio_second(recognizer_for(locale))
    streams = streams_for(cost)
    log.info("speech recognition costs %.2f CPU s per audio s here: %d speaking stream calls fit in real time",
             cost, streams)
    return streams
