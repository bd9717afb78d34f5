"""Slot parsers for what callers say or key: digit strings and yes/no, with the locale's vocabulary."""
from __future__ import annotations

import re

from text_to_num import alpha2digit

from ivr.grammar import Vocabulary, vocabulary

_ENGLISH = vocabulary("en-US")


def parse_digits(text: str, words: Vocabulary = _ENGLISH) -> str:
    """Turn "four five six seven", "double seven", "oh", "twenty three", "vierunddreißig" or "4567" into a digit
    string. Number words ("twelve thirty four", "einundzwanzig") are read by text2num first."""
    out: list[str] = []
    repeat = 1
    tokens = re.findall(r"[0-9]+|[a-zäöüß']+", alpha2digit(text.lower(), words.language))

    def is_digit_word(index: int) -> bool:
        word = tokens[index] if 0 <= index < len(tokens) else ""
        return word.isdigit() or word in words.units or word in words.teens or word in words.tens

    for i, word in enumerate(tokens):
        if word in words.digit_homophones and is_digit_word(i - 1) and is_digit_word(i + 1):
            out.append(str(words.digit_homophones[word]) * repeat)  # "three for five": a misheard "four"
            repeat = 1
        elif word.isdigit():
            out.append(word * repeat if len(word) == 1 else word)
            repeat = 1
        elif word in words.repeat:
            repeat = words.repeat[word]
        elif word in words.units:
            out.append(str(words.units[word]) * repeat)
            repeat = 1
        elif word in words.teens:
            out.append(str(words.teens[word]))
        elif word in words.tens:
            follows = tokens[i + 1] if i + 1 < len(tokens) else ""
            unit_follows = words.units.get(follows, 0) > 0 and follows not in ("oh", "o")
            out.append(str(words.tens[word]) if unit_follows else f"{words.tens[word]}0")
        elif word in words.hundred and out:
            out.append("00")
        # any other word ("my", "number", "uh") is filler
    return "".join(out)


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", text) is not None


def parse_yes_no(text: str, digits: str = "", words: Vocabulary = _ENGLISH) -> bool | None:
    """Return True for yes, False for no, None when unclear. Keys: 1 = yes, 2 = no. Negation wins."""
    if digits:
        return {"1": True, "2": False}.get(digits[:1])
    lowered = text.lower().strip()
    if any(_has_phrase(lowered, phrase) for phrase in words.no):
        return False
    if any(_has_phrase(lowered, phrase) for phrase in words.yes):
        return True
    return None
