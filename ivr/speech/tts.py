"""Prompt audio: pyttsx3 renders, cached on disk as 8 kHz audio keyed by (text, voice, rate, locale).
Grammar prompts are rendered ahead when a grammar loads; dynamic ones on demand, within a timeout."""
from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from ivr.speech.audio import RATE, pcm_to_ulaw, read_wav, resample, write_wav

log = logging.getLogger(__name__)
VOICES = {"en": "en-us", "de": "de"}


class Renderer(Protocol):
    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]: ...


class Pyttsx3Renderer:
    """espeak-ng through pyttsx3, one child process per prompt, killed after `timeout_s`."""

    def __init__(self, timeout_s: float = 10.0):
        self.timeout_s = timeout_s

    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "prompt.wav"
            pyttsx3 = [sys.executable, "-m", "ivr.speech.render", voice, str(rate), str(out)]
            # pyttsx3's espeak driver sometimes exits before writing the file under load; the same engine
            # through its own command line is the fallback.
            espeak = ["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), "--stdin"]
            for command in (pyttsx3, espeak):
                subprocess.run(command, input=text, text=True, timeout=self.timeout_s, check=True,
                               capture_output=True)
                if out.exists() and out.stat().st_size > 44:
                    return read_wav(out)
            raise RuntimeError(f"espeak-ng produced no audio for {text[:40]!r}")


class ToneRenderer:
    """Test double: a 440 Hz tone, 50 ms per character, so prompts have real, distinguishable audio."""

    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]:
        n = int(RATE * 0.05 * max(1, len(text)))
        return (np.sin(np.arange(n) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16), RATE


class PromptAudio:
    """Rendered prompts on disk: `<key>.wav` (PCM16 8 kHz, served for <Play>) and μ-law bytes for streams."""

    def __init__(self, cache_dir: str | Path, renderer: Renderer, *, rate: int = 165, memory_prompts: int = 512):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        self.rate = rate
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")  # espeak-ng is flaky in parallel
        self._memory: OrderedDict[str, bytes] = OrderedDict()  # key → μ-law, least recently used first
        self._rendering: set[str] = set()  # keys being rendered in the background
        self._failed: dict[str, float] = {}  # key → when its render failed
        self.retry_failed_s = 300.0
        self._lock = threading.Lock()
        self.memory_prompts = memory_prompts

    @staticmethod
    def voice(locale: str) -> str:
        return VOICES.get(locale[:2], "en-us")

    def key(self, text: str, locale: str) -> str:
        return hashlib.sha1(f"{text}\x00{self.voice(locale)}\x00{self.rate}\x00{locale}".encode()).hexdigest()[:24]

    def path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.wav"

    def cached(self, text: str, locale: str) -> Path | None:
        path = self.path(self.key(text, locale))
        return path if path.exists() else None

    def ensure(self, text: str, locale: str) -> Path:
        """The prompt's WAV, rendering it now when it is not cached. Raises when rendering fails."""
        path = self.path(self.key(text, locale))
        if not path.exists():
            samples, rate = self.renderer.render(text, voice=self.voice(locale), rate=self.rate)
            partial = path.with_suffix(f".{threading.get_ident()}.tmp")
            write_wav(partial, resample(samples, rate))
            partial.replace(path)  # atomic: a concurrent reader sees the whole file or none
        return path

    def ulaw(self, text: str, locale: str) -> bytes:
        """8 kHz μ-law bytes of the prompt, for Media Streams; the most used prompts stay in memory."""
        key = self.key(text, locale)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        samples, _ = read_wav(self.ensure(text, locale))
        audio = pcm_to_ulaw(samples)
        with self._lock:
            self._memory[key] = audio
            while len(self._memory) > self.memory_prompts:
                self._memory.popitem(last=False)
        return audio

    def prerender(self, texts: Iterable[str], locale: str) -> None:
        """Render prompts in the background so the first caller does not wait for them."""
        for text in dict.fromkeys(texts):
            self.render_later(text, locale)

    def ready(self, text: str, locale: str) -> Path | None:
        """The prompt's WAV if it is rendered; otherwise None at once, with a render started in the background
        (once, however many requests ask; a text that failed is not tried again for `retry_failed_s`)."""
        path = self.cached(text, locale)
        if path is None:
            self.render_later(text, locale)
        return path

    def render_later(self, text: str, locale: str) -> None:
        key = self.key(text, locale)
        with self._lock:
            failed_at = self._failed.get(key)
            if key in self._rendering or (failed_at is not None and time.monotonic() - failed_at < self.retry_failed_s):
                return
            self._rendering.add(key)
        self._pool.submit(self._render_once, key, text, locale)

    def _render_once(self, key: str, text: str, locale: str) -> None:
        try:
            self.ensure(text, locale)
            failed = False
        except Exception as exc:
            log.warning("prompt not rendered (%s), callers hear <Say> instead: %r", exc, text[:60])
            failed = True
        with self._lock:
            self._rendering.discard(key)
            if failed:
                self._failed[key] = time.monotonic()
