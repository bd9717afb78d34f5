"""PII redaction for logs and analytics: long digit runs (card, account, phone numbers) keep only the last 4."""
from __future__ import annotations

import re

_DIGIT_RUN = re.compile(r"\+?\d[\d\s-]{4,}\d")


def redact(text: str) -> str:
    """Mask digit runs of 6+ digits, keeping the last four ("+49 170 1234567" → "***4567")."""

    def mask(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group())
        return match.group() if len(digits) < 6 else f"***{digits[-4:]}"

    return _DIGIT_RUN.sub(mask, text)
