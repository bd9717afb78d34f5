"""Telephone audio: G.711 μ-law ⇄ 16-bit PCM (numpy tables; the stdlib audioop is gone in Python 3.13),
resampling, 20 ms framing, and an energy gate for voice activity (barge-in and endpointing)."""
from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law, Twilio's media frame
SILENCE = b"\xff" * FRAME_BYTES  # μ-law code for 0


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.int16)


_DECODE = _ulaw_decode_table()


def ulaw_to_pcm(data: bytes) -> np.ndarray:
    """μ-law bytes → int16 samples."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def pcm_to_ulaw(samples: np.ndarray) -> bytes:
    """int16 samples → μ-law bytes (G.711, with the standard bias and clipping)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def resample(samples: np.ndarray, source_rate: int, target_rate: int = RATE) -> np.ndarray:
    """libsoxr's high-quality resampler: scipy's `resample_poly` did as well but cost ~1.7 s to import."""
    if source_rate == target_rate:
        return samples.astype(np.int16)
    return soxr.resample(samples.astype(np.int16), source_rate, target_rate, quality="HQ")


def read_wav(path: str | Path | io.BytesIO) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the sample rate of a PCM WAV file (stereo is mixed down)."""
    with wave.open(path if isinstance(path, io.BytesIO) else str(path), "rb") as f:
        rate, channels, width = f.getframerate(), f.getnchannels(), f.getsampwidth()
        raw = f.readframes(f.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, np.int16)
    else:
        samples = (np.frombuffer(raw, np.int32) >> 16).astype(np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return samples, rate


def write_wav(path: str | Path | io.BytesIO, samples: np.ndarray, rate: int = RATE) -> None:
    with wave.open(path if isinstance(path, io.BytesIO) else str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype(np.int16).tobytes())


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """A 16-bit mono WAV in memory (prompts that must not be written to disk)."""
    out = io.BytesIO()
    write_wav(out, samples, rate)
    return out.getvalue()


def wav_to_ulaw(path: str | Path) -> bytes:
    """Any PCM WAV → 8 kHz μ-law bytes, the format Twilio streams."""
    samples, rate = read_wav(path)
    return pcm_to_ulaw(resample(samples, rate))


def frames(ulaw: bytes) -> list[bytes]:
    """Split μ-law audio into 20 ms frames, padding the last one with silence."""
    padded = ulaw + SILENCE[: (-len(ulaw)) % FRAME_BYTES]
    return [padded[i:i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]


@dataclass
class VoiceActivity:
    """Energy gate with a noise floor: speech starts after `onset` loud frames, ends after `hangover` quiet ones.
    Cheap enough to run on every 20 ms frame; it only decides *when*, the recogniser decides *what*."""

    threshold_db: float = 12.0  # above the tracked noise floor
    onset: int = 2
    floor_db: float = 30.0
    loud_run: int = 0
    quiet_run: int = 0
    speaking: bool = False

    def update(self, pcm: np.ndarray) -> bool:
        """Feed one frame; returns whether the caller is speaking now."""
        rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2))) + 1.0
        level = 20 * np.log10(rms)
        loud = level > max(self.floor_db, 35.0) + self.threshold_db
        if not loud:  # track the background slowly, never up to speech level
            self.floor_db = 0.95 * self.floor_db + 0.05 * level
        self.loud_run = self.loud_run + 1 if loud else 0
        self.quiet_run = 0 if loud else self.quiet_run + 1
        if self.loud_run >= self.onset:
            self.speaking = True
        return self.speaking

    def silent_for(self) -> int:
        """Consecutive quiet frames (for trailing-silence endpointing)."""
        return self.quiet_run

    def reset(self) -> None:
        self.loud_run = self.quiet_run = 0
        self.speaking = False


def transcribe(recognizer, wav: bytes, *, max_seconds: float = 30.0) -> str:
    """What a recogniser hears in a short WAV (any rate, mono or stereo PCM): the admins' test console."""
    try:
        samples, rate = read_wav(io.BytesIO(wav))
    except (wave.Error, EOFError, ValueError) as exc:
        raise ValueError(f"not a PCM WAV file: {exc}") from None
    if len(samples) > max_seconds * rate:
        raise ValueError(f"the recording is longer than {max_seconds:.0f} s")
    pcm = resample(samples, rate).astype("<i2").tobytes()
    recognizer.start("intent", ())
    for at in range(0, len(pcm), 3200):
        recognizer.feed(pcm[at:at + 3200])
    return recognizer.finish().text

