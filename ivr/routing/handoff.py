"""What the agent is told before the bridge: mood, the one-sentence summary, and the caller's wait estimate.
Works on plain call facts, so it serves any layer above without knowing the dialog."""
from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence

from ivr.grammar import Grammar

_FRUSTRATION = re.compile(
    r"\b(ridiculous|angry|furious|frustrat\w*|useless|terrible|stupid|again|third time|unacceptable|damn|"
    r"ärger\w*|unverschämt|schon wieder|frech|katastrophe|sauer)\b",
    re.IGNORECASE,
)


def estimate_mood(caller_said: Iterable[str]) -> str:
    """A coarse mood flag for the agent from what the caller said (not from how often the bot failed: a silent
    or hard-to-hear line is not an angry one)."""
    return "frustrated" if _FRUSTRATION.search(" ".join(caller_said)) else "neutral"


_POSSESSIVE = re.compile(r"^(your|ihr|ihre|ihren|ihrem|ihrer)\s+", re.IGNORECASE)  # labels address the caller
SUMMARY = {  # the agents' language is the hotline's
    "en": {"topic": "Caller is calling about {topic}", "unknown": "an unrecognised request",
           "confidence": " (confidence {percent} percent)", "account": "account ending {digits}",
           "agent": "asked for an agent", "retries": "{n} retries", "retry": "1 retry",
           "frustrated": "sounds frustrated", "also": "also {topics}", "and": " and "},
    "de": {"topic": "Anliegen: {topic}", "unknown": "nicht erkannt", "confidence": " (Sicherheit {percent} Prozent)",
           "account": "Kundennummer endet auf {digits}", "agent": "wollte einen Mitarbeiter",
           "retries": "{n} Wiederholungen", "retry": "1 Wiederholung", "frustrated": "klingt verärgert",
           "also": "außerdem {topics}", "and": " und "},
}


def summarize(grammar: Grammar, *, intent: str | None, score: float, slots: dict[str, str], agent_requested: bool,
              retries: int, mood: str, further: Iterable[str] = ()) -> str:
    """One sentence for the whisper and the screen pop, in the hotline's language."""
    words = SUMMARY.get(grammar.locale[:2], SUMMARY["en"])
    known = intent in grammar.intents
    topic = _POSSESSIVE.sub("", grammar.intents[intent or ""].label) if known else words["unknown"]
    parts = [words["topic"].format(topic=topic)]
    if known and score:
        parts[0] += words["confidence"].format(percent=round(score * 100))
    others = [_POSSESSIVE.sub("", grammar.intents[name].label) for name in further if name in grammar.intents]
    if others:
        parts.append(words["also"].format(topics=words["and"].join(others)))
    if slots.get("account_number"):
        parts.append(words["account"].format(digits=" ".join(slots["account_number"][-4:])))
    if agent_requested:
        parts.append(words["agent"])
    if retries:
        parts.append(words["retry"] if retries == 1 else words["retries"].format(n=retries))
    if mood == "frustrated":
        parts.append(words["frustrated"])
    return ", ".join(parts) + "."


def wait_minutes(position: int, avg_queue_time_s: int, recent_waits_s: Sequence[int] = (), *,
                 handle_time_s: int = 240) -> int:
    """Estimated wait: the median wait of the queue's callers who recently reached an agent (what callers really
    waited), else Twilio's average queue time, else position × a typical handle time."""
    if recent_waits_s:
        seconds = float(statistics.median(recent_waits_s))
    else:
        seconds = avg_queue_time_s if avg_queue_time_s > 0 else position * handle_time_s
    return max(1, round(seconds / 60))
