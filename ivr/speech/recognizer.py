"""Speech recognisers behind one small interface: Vosk (on-prem, streaming, grammar-constrained per dialog
state) and a scripted test double. Vosk names stop here; the rest of the service sees `Utterance`s."""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ivr.grammar import vocabulary
from ivr.types import Utterance

log = logging.getLogger(__name__)
RATE = 8000


class Recognizer(Protocol):
    """One per call. `start` begins an utterance for a dialog state; `feed` takes 8 kHz PCM16 bytes and says
    whether the recogniser itself heard the end of the utterance; `finish` returns what was said."""

    def start(self, expect: str, phrases: Sequence[str]) -> None: ...
    def feed(self, pcm: bytes) -> bool: ...
    def partial(self) -> str: ...
    def finish(self) -> Utterance: ...


@functools.lru_cache(maxsize=2)
def load_model(path: str):
    """One Vosk model per process, shared by every call's recogniser (the model is read-only)."""
    import vosk

    vosk.SetLogLevel(-1)
    log.info("loading Vosk model %s", path)
    return vosk.Model(path)


def constrained(expect: str) -> bool:
    """Digits, yes/no and choices use a closed grammar; the open question uses the full language model."""
    return expect in ("digits", "yes_no", "choice")


class VoskRecognizer:
    """Streaming Vosk at 8 kHz with word confidences and n-best alternatives."""

    def __init__(self, model, *, language: str = "en", alternatives: int = 3):
        self.model = model
        self.language = language
        self.words = vocabulary(language)
        self.alternatives = alternatives
        self.recognizer = None
        self._final: dict | None = None

    def start(self, expect: str, phrases: Sequence[str]) -> None:
        import vosk

        if constrained(expect):
            words = {"digits": self.words.digit_words, "yes_no": self.words.yes_no_words}.get(expect, ())
            vocabulary = [*dict.fromkeys([*words, *(p.lower() for p in phrases)]), "[unk]"]
            recognizer = vosk.KaldiRecognizer(self.model, RATE, json.dumps(vocabulary))
        else:
            recognizer = vosk.KaldiRecognizer(self.model, RATE)
        recognizer.SetWords(True)
        recognizer.SetMaxAlternatives(self.alternatives)
        self.recognizer = recognizer
        self._final = None

    def feed(self, pcm: bytes) -> bool:
        if self.recognizer is None:
            raise RuntimeError("start() an utterance before feeding audio")
        if self.recognizer.AcceptWaveform(pcm):
            self._final = json.loads(self.recognizer.Result())
            return True
        return False

    def partial(self) -> str:
        return json.loads(self.recognizer.PartialResult()).get("partial", "") if self.recognizer else ""

    def finish(self) -> Utterance:
        if self.recognizer is None:
            return Utterance()
        result = self._final or json.loads(self.recognizer.FinalResult())
        self.recognizer = None
        return to_utterance(result or {})


def to_utterance(result: dict) -> Utterance:
    """Vosk's JSON (plain or with `alternatives`) → Utterance with n-best texts and a confidence."""
    if "alternatives" in result:
        options = [a for a in result["alternatives"] if a.get("text", "").strip()]
        if not options:
            return Utterance()
        best = options[0]
        total = sum(max(a.get("confidence", 0.0), 0.0) for a in options) or 1.0
        return Utterance(text=best["text"], confidence=max(best.get("confidence", 0.0), 0.0) / total,
                         alternatives=tuple(a["text"] for a in options[1:]))
    words = result.get("result", [])
    confidence = sum(w.get("conf", 1.0) for w in words) / len(words) if words else 0.0
    return Utterance(text=result.get("text", ""), confidence=confidence)


class ScriptedRecognizer:
    """Test double: hears real audio (the session's VAD decides when an utterance ends) and returns the next
    scripted text for it. Never endpoints by itself."""

    def __init__(self, texts: Sequence[str] = ()):
        self.texts = list(texts)
        self.started: list[str] = []
        self.fed_bytes = 0

    def start(self, expect: str, phrases: Sequence[str]) -> None:
        self.started.append(expect)

    def feed(self, pcm: bytes) -> bool:
        self.fed_bytes += len(pcm)
        return False

    def partial(self) -> str:
        return ""

    def finish(self) -> Utterance:
        return Utterance(self.texts.pop(0)) if self.texts else Utterance()


def model_path(configured: str) -> Path | None:
    """The configured Vosk model directory, if it looks like one."""
    if not configured:
        return None
    path = Path(configured)
    return path if (path / "am").exists() or (path / "final.mdl").exists() else None
