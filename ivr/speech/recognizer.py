"""Speech recognisers behind one small interface: Vosk (on-prem, streaming, grammar-constrained per dialog
state) and a scripted test double. Vosk names stop here; the rest of the service sees `Utterance`s."""
from __future__ import annotations

import functools
import json
import logging
import math
import threading
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


class WarmRecognizers:
    """Open-vocabulary Kaldi recognisers of one model, kept after an utterance for the next one (any call's).
    Vosk composes a lookahead model's graph lazily inside each recogniser: a new one spends ~2 CPU s of its first
    utterance building its share (Korean model, 2 cores), a reused one decodes the same audio in ~0.2 s. Each keeps
    ~50 MB of composed graph, so at most `keep` wait idle."""

    def __init__(self, model, *, keep: int = 8):
        self.model = model
        self.keep = keep
        self._idle: list = []
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            recognizer = self._idle.pop() if self._idle else None
        if recognizer is None:
            import vosk

            return vosk.KaldiRecognizer(self.model, RATE)
        return recognizer

    def give_back(self, recognizer) -> None:
        """Finalised first: after an endpoint (or a reset) Vosk would carry the feature pipeline, and with it the
        last caller's speaker adaptation, into the next utterance; a finalised one starts a fresh pipeline. One that
        fails to finalise is dropped: a recogniser that broke on one call never reaches another."""
        try:
            recognizer.AcceptWaveform(b"")
            recognizer.FinalResult()
        except Exception as exc:
            log.warning("a Vosk recogniser failed to finalise (%s): dropped, not reused", exc)
            return
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(recognizer)


@functools.cache
def warm_recognizers(model) -> WarmRecognizers:
    return WarmRecognizers(model)


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
        self.warm = warm_recognizers(model)
        self.recognizer = None
        self._open = False  # whether `recognizer` is a warm open-vocabulary one, handed on after the utterance
        self._final: dict | None = None

    def start(self, expect: str, phrases: Sequence[str]) -> None:
        import vosk

        self._release()
        self._open = not constrained(expect)
        if self._open:
            recognizer = self.warm.take()
        else:  # a closed grammar's graph is small: built in ~1 ms
            words = {"digits": self.words.digit_words, "yes_no": self.words.yes_no_words}.get(expect, ())
            vocabulary = [*dict.fromkeys([*words, *(p.lower() for p in phrases)]), "[unk]"]
            recognizer = vosk.KaldiRecognizer(self.model, RATE, json.dumps(vocabulary))
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
        self._release()
        return to_utterance(result or {})

    def _release(self) -> None:
        if self.recognizer is not None and self._open:
            self.warm.give_back(self.recognizer)
        self.recognizer = None


def to_utterance(result: dict) -> Utterance:
    """Vosk's JSON (plain or with `alternatives`) → Utterance with n-best texts and a confidence. An alternative's
    "confidence" is its path's log-likelihood in the lattice (e.g. 258.3 against 257.0): normalised over the n-best
    list, exp(log-likelihood) is each hypothesis' posterior, and the best one's is the utterance's confidence."""
    if "alternatives" in result:
        options = [a for a in result["alternatives"] if a.get("text", "").strip()]
        if not options:
            return Utterance()
        likelihoods = [float(a.get("confidence", 0.0)) for a in options]
        best = max(likelihoods)
        odds = [math.exp(likelihood - best) for likelihood in likelihoods]
        total = sum(odds)
        posteriors = tuple(odd / total for odd in odds)
        return Utterance(text=options[0]["text"], confidence=posteriors[0],
                         alternatives=tuple(a["text"] for a in options[1:]), posteriors=posteriors)
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
