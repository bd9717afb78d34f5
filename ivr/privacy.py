"""PII redaction for what is stored and logged: long digit runs (card, account, phone numbers) keep only the last
four, spoken digit strings ("one two three four five six") and e-mail addresses are masked. What the service needs
(the account number) is kept in its slot, not in transcripts or events."""
from __future__ import annotations

import re

from ivr.grammar.vocabulary import de, en

_DIGIT_RUN = re.compile(r"\+?\d[\d\s-]{4,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_SPOKEN = sorted({*en.UNITS, *en.TEENS, *en.TENS, *en.REPEAT, *de.UNITS, *de.TEENS, *de.REPEAT, "\\d+"} - {"o"},
                 key=len, reverse=True)
_SPOKEN_RUN = re.compile(rf"\b(?:(?:{'|'.join(_SPOKEN)})\b[\s,.-]*){{6,}}", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask digit runs of 6+ digits keeping the last four ("+49 170 1234567" → "***4567"), spoken runs of six or
    more number words ("[digits]"), and e-mail addresses ("[email]")."""

    def mask(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group())
        return match.group() if len(digits) < 6 else f"***{digits[-4:]}"

    text = _EMAIL.sub("[email]", text)
    text = _SPOKEN_RUN.sub(lambda m: "[digits]" + (" " if m.group().endswith(" ") else ""), text)
    return _DIGIT_RUN.sub(mask, text)
