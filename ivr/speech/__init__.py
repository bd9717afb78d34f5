"""On-prem speech: audio codec and VAD, Vosk recognition, pyttsx3 prompts."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from ivr.speech.recognizer import Recognizer, VoskRecognizer, load_model, model_path
from ivr.speech.tts import PromptAudio, Pyttsx3Renderer

log = logging.getLogger(__name__)


@dataclass
class Speech:
    """Prompt audio for both modes; a recogniser factory only when stream mode is on (a model is configured)."""

    prompts: PromptAudio
    recognizer_for: Callable[[str], Recognizer] | None
    paced: bool = True

    @property
    def stream_mode(self) -> bool:
        return self.recognizer_for is not None


def vosk_factory(path: Path) -> Callable[[str], Recognizer]:
    model = load_model(str(path))
    return lambda locale: VoskRecognizer(model, language=locale[:2])


def init_app(app: Flask) -> None:
    settings = app.config["IVR_SETTINGS"]
    renderer = app.config.get("IVR_TTS") or Pyttsx3Renderer()
    prompts = PromptAudio(Path(settings.audio_dir) / "cache", renderer)
    factory = app.config.get("IVR_RECOGNIZER_FACTORY")
    if factory is None and settings.speech_mode != "gather":
        path = model_path(settings.vosk_model)
        if path is not None:
            factory = vosk_factory(path)
        elif settings.speech_mode == "stream" or settings.vosk_model:
            log.error("no Vosk model at IVR_VOSK_MODEL=%r: falling back to Gather mode", settings.vosk_model)
    if factory is None:
        log.warning("speech: Gather mode (Twilio recognises speech); set IVR_VOSK_MODEL for on-prem recognition")
    else:
        log.info("speech: stream mode, on-prem Vosk recognition")
    app.extensions["ivr.speech"] = Speech(prompts, factory, paced=app.config.get("IVR_PACED", True))
