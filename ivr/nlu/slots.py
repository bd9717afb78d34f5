"""Slot parsers for what callers say or key: digit strings and yes/no, in English and German."""
from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "null": 0, "eins": 1, "ein": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4,
    "fünf": 5, "funf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9,
}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "zehn": 10, "elf": 11, "zwölf": 12,
}
_TENS = {"twenty": 2, "thirty": 3, "forty": 4, "fifty": 5, "sixty": 6, "seventy": 7, "eighty": 8, "ninety": 9}
_REPEAT = {"double": 2, "triple": 3, "doppel": 2, "doppelt": 2, "dreifach": 3}


def parse_digits(text: str) -> str:
    """Turn "four five six seven", "double seven", "oh", "twenty three" or "4567" into a digit string."""
    out: list[str] = []
    repeat = 1
    words = re.findall(r"[0-9]+|[a-zäöüß']+", text.lower())
    for i, word in enumerate(words):
        if word.isdigit():
            out.append(word * repeat if len(word) == 1 else word)
            repeat = 1
        elif word in _REPEAT:
            repeat = _REPEAT[word]
        elif word in _UNITS:
            out.append(str(_UNITS[word]) * repeat)
            repeat = 1
        elif word in _TEENS:
            out.append(str(_TEENS[word]))
        elif word in _TENS:
            follows = words[i + 1] if i + 1 < len(words) else ""
            unit_follows = follows in _UNITS and _UNITS[follows] > 0 and follows not in ("oh", "o")
            out.append(str(_TENS[word]) if unit_follows else f"{_TENS[word]}0")
        elif word == "hundred" and out:
            out.append("00")
        # any other word ("my", "number", "uh") is filler
    return "".join(out)


_YES = (
    "yes", "yeah", "yep", "yup", "ya", "sure", "correct", "right", "that's right", "that is right", "absolutely",
    "of course", "okay", "ok", "uh huh", "affirmative", "definitely", "exactly", "please do", "i do", "it is",
    "ja", "jawohl", "genau", "richtig", "stimmt", "klar", "gerne", "korrekt", "sicher", "passt", "jep",
)
_NO = (
    "no", "nope", "nah", "not really", "negative", "wrong", "that's wrong", "incorrect", "no thanks", "not at all",
    "not right", "that's not", "that is not", "isn't", "nein", "nee", "nö", "falsch", "nicht richtig",
    "stimmt nicht", "auf keinen fall",
)


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", text) is not None


def parse_yes_no(text: str, digits: str = "") -> bool | None:
    """Return True for yes, False for no, None when unclear. Keys: 1 = yes, 2 = no. Negation wins."""
    if digits:
        return {"1": True, "2": False}.get(digits[:1])
    lowered = text.lower().strip()
    if any(_has_phrase(lowered, phrase) for phrase in _NO):
        return False
    if any(_has_phrase(lowered, phrase) for phrase in _YES):
        return True
    return None
