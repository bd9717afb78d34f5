"""Music on hold, generated: a slow, soft arpeggio (a I–vi–IV–V progression in sine tones with gentle attack and
decay) at 8 kHz, telephone-band, so the service ships no third-party recording and needs no licence."""
from __future__ import annotations

import functools
import io
import wave

import numpy as np

from ivr.speech.audio import RATE

_CHORDS = ((261.63, 329.63, 392.00), (220.00, 261.63, 329.63), (174.61, 220.00, 261.63), (196.00, 246.94, 293.66))
_NOTE_S = 0.5


def _note(frequency: float) -> np.ndarray:
    t = np.arange(int(RATE * _NOTE_S)) / RATE
    envelope = np.minimum(1.0, t / 0.04) * np.exp(-3.0 * t)  # soft attack, bell-like decay
    tone = np.sin(2 * np.pi * frequency * t) + 0.3 * np.sin(2 * np.pi * 2 * frequency * t)  # a little warmth
    return envelope * tone


@functools.cache
def hold_music_wav(seconds: int = 20) -> bytes:
    """A loop of `seconds` (whole bars of the progression) as a 16-bit mono WAV for <Play>."""
    bar = np.concatenate([_note(f) for chord in _CHORDS for f in (*chord, chord[1])])
    bars = max(1, round(seconds / (len(bar) / RATE)))
    samples = np.tile(bar, bars)
    pcm = (samples / np.max(np.abs(samples)) * 0.25 * 32767).astype("<i2")  # quiet: music under a queue
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()
