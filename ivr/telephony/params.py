"""Twilio's form parameters, read defensively: a signed request can still carry values Twilio never sends (a
replay with edited values is unsigned, but a bug or a proxy can mangle them). Bad numbers fall back to a default,
keys keep only keypad characters, text is capped and stripped of control characters before NLU, storage, logs
and TwiML."""
from __future__ import annotations

import re

from flask import request

MAX_SPEECH_CHARS = 500  # a caller turn is a sentence or two; longer results are cut, not processed
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(name: str, *, limit: int = MAX_SPEECH_CHARS) -> str:
    return _CONTROL.sub("", request.form.get(name, "")[:limit]).strip()


def integer(name: str, default: int = 0) -> int:
    try:
        return max(0, int(request.form.get(name, "")[:12]))
    except ValueError:
        return default


def confidence(name: str = "Confidence") -> float:
    try:
        return min(1.0, max(0.0, float(request.form.get(name, "")[:12])))
    except ValueError:
        return 0.0


def keys(name: str = "Digits") -> str:
    """Only what a keypad can send: 0-9, * and #."""
    return re.sub(r"[^0-9*#]", "", request.form.get(name, "")[:64])
