"""The context record an agent receives, so the caller never repeats the story; and the whisper summary."""
from __future__ import annotations

import re
from dataclasses import asdict

from ivr.dialog.state import DialogState
from ivr.nlu.grammar import Grammar

_FRUSTRATION = re.compile(
    r"\b(ridiculous|angry|furious|frustrat\w*|useless|terrible|stupid|again|third time|unacceptable|damn|"
    r"ärger\w*|unverschämt|schon wieder|frech|katastrophe|sauer)\b",
    re.IGNORECASE,
)


def estimate_mood(state: DialogState) -> str:
    """A coarse mood flag for the agent: frustrated (words or repeated failures) or neutral."""
    said = " ".join(t.text for t in state.turns if t.speaker == "caller")
    if _FRUSTRATION.search(said) or state.total_retries >= 3:
        return "frustrated"
    return "neutral"


SUMMARY = {  # the agents' language is the hotline's
    "en": {"topic": "Caller is calling about {topic}", "unknown": "an unrecognised request",
           "confidence": " (confidence {percent} percent)", "account": "account ending {digits}",
           "agent": "asked for an agent", "retries": "{n} retries", "retry": "1 retry",
           "frustrated": "sounds frustrated"},
    "de": {"topic": "Anliegen: {topic}", "unknown": "nicht erkannt", "confidence": " (Sicherheit {percent} Prozent)",
           "account": "Kundennummer endet auf {digits}", "agent": "wollte einen Mitarbeiter",
           "retries": "{n} Wiederholungen", "retry": "1 Wiederholung", "frustrated": "klingt verärgert"},
}


def summarize(state: DialogState, grammar: Grammar) -> str:
    """One sentence for the whisper and the screen pop, in the hotline's language."""
    words = SUMMARY.get(state.locale[:2], SUMMARY["en"])
    intent = grammar.intents.get(state.intent or "")
    topic = (state.intent or "").replace("_", " ") if intent else words["unknown"]
    parts = [words["topic"].format(topic=topic)]
    if intent and state.score:
        parts[0] += words["confidence"].format(percent=round(state.score * 100))
    if state.slots.get("account_number"):
        parts.append(words["account"].format(digits=" ".join(state.slots["account_number"][-4:])))
    if state.agent_requested:
        parts.append(words["agent"])
    if state.total_retries:
        parts.append(words["retry"] if state.total_retries == 1 else words["retries"].format(n=state.total_retries))
    if estimate_mood(state) == "frustrated":
        parts.append(words["frustrated"])
    return ", ".join(parts) + "."


def context_record(state: DialogState, grammar: Grammar) -> dict:
    """Everything the caller already told us, as stored before the transfer and shown on the agent's screen."""
    return {
        "call_sid": state.call_sid,
        "caller": state.caller,
        "locale": state.locale,
        "intent": state.intent,
        "intent_label": grammar.intents[state.intent].label if state.intent in grammar.intents else None,
        "confidence": state.score,
        "alternatives": [{"intent": name, "score": score} for name, score in state.ranking[1:4]],
        "slots": dict(state.slots),
        "transcript": [asdict(t) for t in state.turns],
        "retries": state.total_retries,
        "agent_requested": state.agent_requested,
        "mood": estimate_mood(state),
        "queue": state.queue,
        "skills": list(state.skills),
        "reason": state.transfer_reason,
        "callback_number": state.callback_number,
        "summary": summarize(state, grammar),
        "started_at": state.started_at,
    }


def wait_minutes(position: int, avg_queue_time_s: int, *, handle_time_s: int = 240) -> int:
    """Estimated wait: Twilio's average queue time when known, else position × a typical handle time."""
    seconds = avg_queue_time_s if avg_queue_time_s > 0 else position * handle_time_s
    return max(1, round(seconds / 60))
