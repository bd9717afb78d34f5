"""Prompt audio: pyttsx3 renders, cached on disk as 8 kHz audio keyed by (text, voice, rate, locale).
Grammar prompts are rendered ahead when a grammar loads; dynamic ones on demand, within a timeout."""
from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from ivr.speech.audio import RATE, pcm_to_ulaw, read_wav, resample, wav_bytes, write_wav

log = logging.getLogger(__name__)
VOICES = {"en": "en-us", "de": "de"}
PRIVATE_POLL_S = 0.02  # how often Twilio's fetch of a private prompt looks for it when another worker renders it


class Renderer(Protocol):
    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]: ...


class Pyttsx3Renderer:
    """espeak-ng through pyttsx3 in one long-lived child process (started on first use): a prompt renders in
    milliseconds, and a child that hangs or dies is killed after `timeout_s` and started afresh on the next prompt;
    that prompt falls back to the espeak-ng command line."""

    def __init__(self, timeout_s: float = 10.0):
        self.timeout_s = timeout_s
        self._child: subprocess.Popen | None = None
        self._owner = os.getpid()  # a forked process (a gunicorn worker) starts its own child
        self._lock = threading.Lock()

    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "prompt.wav"
            with self._lock:
                answer = self._ask({"voice": voice, "rate": rate, "out": str(out), "text": text})
            if answer != "ok" or not out.exists() or out.stat().st_size <= 44:
                log.warning("pyttsx3 worker: %s; rendering with the espeak-ng command line", answer or "no answer")
                espeak = ["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), "--stdin"]
                subprocess.run(espeak, input=text, text=True, timeout=self.timeout_s, check=True, capture_output=True)
            if out.exists() and out.stat().st_size > 44:
                return read_wav(out)
            raise RuntimeError(f"espeak-ng produced no audio for {text[:40]!r}")

    def _ask(self, job: dict) -> str:
        """One request to the worker; an empty answer (and a killed worker) when it does not answer in time."""
        if self._child is None or self._child.poll() is not None or self._owner != os.getpid():
            self._owner = os.getpid()
            worker = Path(__file__).with_name("render.py")  # run as a file: not the package and its numpy/scipy
            self._child = subprocess.Popen([sys.executable, str(worker)], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        child = self._child
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(json.dumps(job) + "\n")
            child.stdin.flush()
            ready, _, _ = select.select([child.stdout], [], [], self.timeout_s)
            answer = child.stdout.readline().strip() if ready else ""
        except OSError:
            answer = ""
        if not answer:
            self.close()
        return answer

    def close(self) -> None:
        """Stop the worker (it is started again by the next render)."""
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None


class ToneRenderer:
    """Test double: a 440 Hz tone, 50 ms per character, so prompts have real, distinguishable audio."""

    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]:
        n = int(RATE * 0.05 * max(1, len(text)))
        return (np.sin(np.arange(n) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16), RATE


class Unavailable:
    """A renderer for machines without espeak-ng: every prompt falls back to <Say> at once."""

    def render(self, text: str, *, voice: str, rate: int) -> tuple[np.ndarray, int]:
        raise RuntimeError("no TTS engine installed")


def installed_renderer() -> Renderer:
    """pyttsx3 when espeak-ng is installed, else a renderer that always fails (callers hear Twilio's <Say>)."""
    return Pyttsx3Renderer() if shutil.which("espeak-ng") else Unavailable()


def dry_run(prompts: Iterable[tuple[tuple, str]], locale: str, renderer: Renderer) -> list[tuple[tuple, str]]:
    """Render every (where, text) prompt into a throw-away cache; returns (where, why) for those that fail."""
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        audio = PromptAudio(tmp, renderer)
        for where, text in prompts:
            try:
                audio.ensure(text, locale)
            except Exception as exc:
                failed.append((where, f"cannot be rendered ({exc})"))
    return failed


class PrivatePrompts(Protocol):
    """Where a call's private prompts live (never on disk): shared by every worker that may serve the <Play> URL.
    An empty value marks one being rendered."""

    def put(self, call: str, key: str, wav: bytes) -> None: ...
    def get(self, call: str, key: str) -> bytes | None: ...
    def mark(self, call: str, key: str) -> bool: ...  # as being rendered, unless it is there: whether it was not
    def discard(self, call: str, key: str) -> None: ...
    def drop(self, call: str) -> None: ...


class MemoryPrivatePrompts:
    """One process's memory (the embedded store's single process, and tests); bounded should hang-ups be lost."""

    def __init__(self, calls: int = 2_000):
        self.calls = calls
        self._prompts: OrderedDict[str, dict[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, call: str, key: str, wav: bytes) -> None:
        with self._lock:
            self._store(call, key, wav)

    def _store(self, call: str, key: str, wav: bytes) -> None:
        self._prompts.setdefault(call, {})[key] = wav
        self._prompts.move_to_end(call)
        while len(self._prompts) > self.calls:
            self._prompts.popitem(last=False)

    def get(self, call: str, key: str) -> bytes | None:
        with self._lock:
            return self._prompts.get(call, {}).get(key)

    def mark(self, call: str, key: str) -> bool:
        with self._lock:
            if key in self._prompts.get(call, {}):
                return False
            self._store(call, key, b"")
            return True

    def discard(self, call: str, key: str) -> None:
        with self._lock:
            self._prompts.get(call, {}).pop(key, None)

    def drop(self, call: str) -> None:
        with self._lock:
            self._prompts.pop(call, None)


class SharedPrompts(Protocol):
    """The grammar's prompt files, shared by instances that each keep their own disk cache."""

    def put(self, key: str, wav: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...


class PromptAudio:
    """Rendered prompts. The grammar's own prompts (registered by `prerender`) are cached on disk as `<key>.wav`
    (PCM16 8 kHz, served for <Play>) and shared by every call. Every other text — a balance, a whisper with an
    account number — may carry personal data: it is rendered in memory only, per call, and dropped at hang-up."""

    def __init__(self, cache_dir: str | Path, renderer: Renderer, *, rate: int = 165, memory_prompts: int = 512):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        self.rate = rate
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")  # espeak-ng is flaky in parallel
        self._jobs: list[tuple[int, int, str, str, str, str | None, Future]] = []  # a heap: callers' own prompts first
        self._submitted = itertools.count()
        self._memory: OrderedDict[str, bytes] = OrderedDict()  # key → μ-law, least recently used first
        self._rendering: dict[str, Future] = {}  # jobs queued or being rendered in the background
        self._failed: dict[str, float] = {}  # key → when its render failed
        self._renderer_failing = False  # the last render failed: callers' own prompts are <Say>ed until one works
        self.retry_failed_s = 300.0
        self._lock = threading.Lock()
        self.memory_prompts = memory_prompts
        self._public: set[str] = set()  # keys of the grammar's prompts (on disk)
        self.private: PrivatePrompts = MemoryPrivatePrompts()  # the app puts them in Redis when it has one
        self.shared: SharedPrompts | None = None  # public prompt files for instances that did not render them
        self._unshared = False  # sharing failed (store down): said once, until a prompt is shared again
        self._ended: deque[str] = deque(maxlen=10_000)  # calls whose private prompts were dropped

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
            if self.shared is not None:
                try:
                    self.shared.put(path.stem, path.read_bytes())
                    self._unshared = False
                except Exception:  # another instance renders it itself
                    if not self._unshared:
                        log.warning("prompts not shared while the store is unavailable (first: %s); other instances "
                                    "render their own", path.stem)
                    self._unshared = True
        return path

    def local_or_shared(self, key: str) -> Path | None:
        """The prompt file for a <Play> URL: this instance's cache, else copied from the shared store (another
        instance rendered it), else None."""
        path = self.path(key)
        if path.exists() or self.shared is None:
            return path if path.exists() else None
        try:
            wav = self.shared.get(key)
        except Exception:
            return None
        if wav is None:
            return None
        partial = path.with_suffix(f".{threading.get_ident()}.tmp")
        partial.write_bytes(wav)
        partial.replace(path)
        return path

    def pending_public(self) -> int:
        """Grammar prompts not rendered yet (a render that failed counts as done: <Say> covers it)."""
        with self._lock:
            return sum(1 for key in self._public if key in self._rendering)

    def is_public(self, text: str, locale: str) -> bool:
        return self.key(text, locale) in self._public

    def pcm(self, text: str, locale: str) -> np.ndarray:
        """8 kHz samples: from the disk cache for the grammar's prompts, rendered in memory for anything else."""
        if self.is_public(text, locale):
            return read_wav(self.ensure(text, locale))[0]
        samples, rate = self.renderer.render(text, voice=self.voice(locale), rate=self.rate)
        return resample(samples, rate)

    def ulaw(self, text: str, locale: str) -> bytes:
        """8 kHz μ-law bytes of the prompt, for Media Streams; the most used prompts stay in memory (private ones
        only there, never on disk)."""
        key = self.key(text, locale)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        audio = pcm_to_ulaw(self.pcm(text, locale))
        with self._lock:
            self._memory[key] = audio
            while len(self._memory) > self.memory_prompts:
                self._memory.popitem(last=False)
        return audio

    def prerender(self, texts: Iterable[str], locale: str) -> None:
        """The grammar's prompts: public (on disk, shared), rendered in the background before a caller needs them."""
        for text in dict.fromkeys(texts):
            key = self.key(text, locale)
            with self._lock:
                self._public.add(key)
            if not self.path(key).exists():
                self.render_later(text, locale)

    def ready_private(self, call: str, text: str, locale: str) -> str | None:
        """The key of a call's private prompt (a balance, known only in its own webhook), its render started ahead
        of every public one: the webhook names the audio at once and Twilio's fetch of it waits for the render (~15
        ms; `private_wav_when_ready`). None — the webhook <Say>s it — while the renderer fails or the store is down."""
        key = self.key(text, locale)
        with self._lock:
            if self._renderer_failing or self._failed_recently(key):
                return None
        try:
            if self.private.mark(call, key):  # being rendered: a fetch on any worker waits for it
                self.render_later(text, locale, call=call)
        except Exception:  # the store is down: it could not keep the audio for Twilio's fetch
            log.warning("private prompt %s of %s: store unavailable, said by Twilio", key, call)
            return None
        return key

    def private_wav_when_ready(self, call: str, key: str, *, timeout_s: float) -> bytes | None:
        """A call's private prompt for Twilio's fetch: waits while it is being rendered, on this worker or (polling
        the shared store) on the worker that answered the webhook; None at once for one that is not there (never
        asked for, failed, or dropped at hang-up), and None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = self._rendering.get(f"{call}/{key}")
            if pending is not None:
                try:
                    pending.result(timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    pass
            try:
                audio = self.private.get(call, key)
            except Exception:
                log.warning("private prompt %s of %s unavailable", key, call)
                return None
            if audio is None or audio or time.monotonic() >= deadline:
                return audio or None
            time.sleep(PRIVATE_POLL_S)

    def private_wav(self, call: str, key: str) -> bytes | None:
        """The call's private prompt if it is rendered."""
        try:
            return self.private.get(call, key) or None
        except Exception:  # the store is down: the caller hears <Say>
            log.warning("private prompt %s of %s unavailable", key, call)
            return None

    def forget(self, call: str) -> None:
        """The call ended: its private prompts are dropped."""
        with self._lock:
            self._ended.append(call)
        try:
            self.private.drop(call)
        except Exception:  # they expire with the call's TTL
            log.warning("private prompts of %s not dropped now (they expire with the call)", call)

    def ready(self, text: str, locale: str) -> Path | None:
        """The prompt's WAV if it is rendered; otherwise None at once, with a render started in the background
        (once, however many requests ask; a text that failed is not tried again for `retry_failed_s`)."""
        path = self.cached(text, locale)
        if path is None:
            self.render_later(text, locale)
        return path

    def render_later(self, text: str, locale: str, *, call: str | None = None) -> Future | None:
        """Render in the background, once however many ask (None when it is already being rendered, or failed
        recently: a text that failed is not tried again for `retry_failed_s`). A call's own prompt (`call`) goes
        before the grammar's: a caller or an agent is about to hear it."""
        key = self.key(text, locale)
        job = f"{call}/{key}" if call else key
        done: Future = Future()
        with self._lock:
            if job in self._rendering or self._failed_recently(key):
                return None
            self._rendering[job] = done
            heapq.heappush(self._jobs, (0 if call else 1, next(self._submitted), job, text, locale, call, done))
        self._pool.submit(self._render_next)
        return done

    def _failed_recently(self, key: str) -> bool:
        """A text that failed is not tried again for `retry_failed_s` (called holding the lock)."""
        failed_at = self._failed.get(key)
        return failed_at is not None and time.monotonic() - failed_at < self.retry_failed_s

    def _render_next(self) -> None:
        """One queued job, the most urgent first (one is submitted per job, so every job runs)."""
        with self._lock:
            _, _, job, text, locale, call, done = heapq.heappop(self._jobs)
        self._render_once(job, text, locale, call)
        done.set_result(None)

    def _render_once(self, job: str, text: str, locale: str, call: str | None = None) -> None:
        key = self.key(text, locale)
        try:
            if call is None:
                self.ensure(text, locale)
            else:
                audio = wav_bytes(self.pcm(text, locale))
                with self._lock:
                    ended = call in self._ended
                if not ended:
                    self.private.put(call, key, audio)
            failed = False
        except Exception as exc:
            log.warning("prompt not rendered (%s), callers hear <Say> instead: %r", exc, text[:60])
            failed = True
            if call is not None:
                try:  # Twilio's fetch stops waiting for it
                    self.private.discard(call, key)
                except Exception:
                    log.warning("private prompt %s of %s: failure not recorded (its fetch waits)", key, call)
        with self._lock:
            self._rendering.pop(job, None)
            self._renderer_failing = failed
            if failed:
                self._failed[key] = time.monotonic()
