"""On-prem speech: audio codec and VAD, Vosk recognition, pyttsx3 prompts."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flask import Flask

from ivr.speech.recognizer import Recognizer, VoskRecognizer, load_model, model_path
from ivr.speech.tts import PromptAudio, Unavailable, installed_renderer

log = logging.getLogger(__name__)


class Lagging(Protocol):
    """A live stream, as far as admission cares: how far behind real time its recognition is."""

    @property
    def lag_s(self) -> float: ...


@dataclass
class Speech:
    """Prompt audio for both modes; a recogniser factory only when stream mode is on (a model is configured)."""

    prompts: PromptAudio
    recognizer_for: Callable[[str], Recognizer] | None
    workers: Executor  # stream calls' lanes: recognition, dialog steps and prompt renders off the socket threads
    paced: bool = True
    tts: bool = True  # False without espeak-ng: Gather mode <Say>s every prompt
    max_streams: int = 8  # per process: past this, recognition falls behind real time on 2 cores (bench latency)
    max_lag_s: float = 0.5  # a stream whose recogniser is this far behind real time: new calls use Gather mode
    streams: list[Lagging] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def active_streams(self) -> int:
        return len(self.streams)

    def lag_s(self) -> float:
        """How far the most loaded stream's recogniser is behind the audio it was given (back-pressure)."""
        with self._changed:
            return max((stream.lag_s for stream in self.streams), default=0.0)

    def overloaded(self) -> bool:
        return self.lag_s() > self.max_lag_s

    @property
    def stream_mode(self) -> bool:
        return self.recognizer_for is not None

    def stream_opened(self, stream: Lagging) -> None:
        with self._changed:
            self.streams.append(stream)
            self._changed.notify_all()

    def stream_closed(self, stream: Lagging) -> None:
        with self._changed:
            self.streams.remove(stream)
            self._changed.notify_all()

    def wait_for_streams(self, count: int, *, timeout: float) -> bool:
        """Wait until `count` streams are open (shutdown, tests); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.active_streams == count, timeout)


def vosk_factory(path: Path) -> Callable[[str], Recognizer]:
    model = load_model(str(path))
    return lambda locale: VoskRecognizer(model, language=locale[:2])


def cap_streams_by_cost(speech: Speech, configured: int) -> None:
    """Admit no more stream calls than the recogniser can decode in real time here (IVR_MAX_STREAMS is the cap)."""
    from ivr.speech.capacity import measure

    try:
        fits = measure(speech.recognizer_for)  # type: ignore[arg-type]
    except Exception:
        log.exception("could not measure the recogniser's cost; admitting up to IVR_MAX_STREAMS=%d", configured)
        return
    speech.max_streams = min(configured, fits)
    log.info("stream calls admitted per process: %d (IVR_MAX_STREAMS %d)", speech.max_streams, configured)


def init_app(app: Flask) -> None:
    settings = app.config["IVR_SETTINGS"]
    renderer = app.config.get("IVR_TTS")
    if renderer is None:
        renderer = installed_renderer()
    tts = not isinstance(renderer, Unavailable)
    if not tts:
        log.error("espeak-ng is not installed (apt-get install espeak-ng): no on-prem prompts, so Gather mode "
                  "with Twilio's <Say>")
    prompts = PromptAudio(Path(settings.audio_dir) / "cache", renderer)
    factory = app.config.get("IVR_RECOGNIZER_FACTORY") if tts else None
    if factory is None and tts and settings.speech_mode != "gather":
        path = model_path(settings.vosk_model)
        if path is not None:
            factory = vosk_factory(path)
        elif settings.speech_mode == "stream" or settings.vosk_model:
            log.error("no Vosk model at IVR_VOSK_MODEL=%r: falling back to Gather mode", settings.vosk_model)
    if factory is None:
        log.warning("speech: Gather mode (Twilio recognises speech); set IVR_VOSK_MODEL for on-prem recognition")
    else:
        log.info("speech: stream mode, on-prem Vosk recognition")
    pool = ThreadPoolExecutor(settings.stream_workers, thread_name_prefix="stream-lane")
    speech = Speech(prompts, factory, pool, paced=app.config.get("IVR_PACED", True), tts=tts,
                    max_streams=settings.max_streams, max_lag_s=settings.max_stream_lag_ms / 1000)
    app.extensions["ivr.speech"] = speech
    if factory is not None and "IVR_RECOGNIZER_FACTORY" not in app.config:
        pool.submit(cap_streams_by_cost, speech, settings.max_streams)  # ~2 s of decoding, off the start-up path
