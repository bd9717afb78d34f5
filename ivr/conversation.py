"""Runs a call over the store: load state, understand, decide, run self-service, persist state/context/events.
Both speech transports (Gather webhooks and Media Streams) go through these verbs, so they behave the same; the
telephony views only translate them to and from TwiML."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr import dialog
from ivr.dialog import DialogState
from ivr.grammar import Grammar
from ivr.nlu import understand
from ivr.nlu.catalog import GrammarCatalog
from ivr.privacy import redact
from ivr.routing.handoff import estimate_mood, summarize, wait_minutes
from ivr.selfservice import ActionRegistry
from ivr.store import CallStore
from ivr.store.inbox import MissedUtterances
from ivr.types import (
    Action,
    CallbackRequest,
    CallContext,
    CallEvent,
    Hangup,
    Interpretation,
    RunSelfService,
    SelfServiceRequest,
    Transfer,
    Utterance,
)

log = logging.getLogger(__name__)
FALLBACK_WHISPER = "Incoming caller. {summary}"
RECENT_WAITS_S = 3600  # waits older than this say little about the queue now


class UnknownCall(LookupError):
    """No state for this CallSid: never seen, or expired."""


@dataclass(frozen=True)
class Reply:
    """What to do next on a call, and what the transport needs to render it."""

    actions: tuple[Action, ...]
    locale: str
    turn: int = 0


@dataclass(frozen=True)
class Hold:
    """What a queued caller hears: position and wait, and after a long wait the offer of a call back."""

    announcement: str
    callback_offer: str | None
    comfort: str  # between the music


@dataclass
class Conversations:
    """The call-level service: one instance per app, stateless between requests."""

    store: CallStore
    catalog: GrammarCatalog
    actions: ActionRegistry
    clock: Callable[[], float]
    inbox: MissedUtterances | None = None  # what callers said when the bot failed them, for the admins

    def grammar(self, locale: str | None) -> Grammar:
        return self.catalog.get(locale).grammar

    def begin(self, call_sid: str, *, caller: str, locale: str) -> Reply:
        """Start a call: greet and listen."""
        grammar, now = self.grammar(locale), self.clock()
        state = DialogState(call_sid=call_sid, caller=caller, locale=grammar.locale, started_at=now)
        state, actions = dialog.start(state, grammar, now)
        self.persist(state, actions, grammar)
        self.store.call_started(call_sid, now)
        self.note(CallEvent(call_sid, "start", now, {"locale": grammar.locale}))
        return Reply(tuple(actions), state.locale, state.turn_count)

    def respond(self, call_sid: str, utterance: Utterance) -> Reply:
        """Feed one caller turn to the NLU and the dialog, run any self-service step, persist the outcome."""
        state = self.load(call_sid)
        understanding, now = self.catalog.get(state.locale), self.clock()
        reading = understand(utterance, dialog.expecting(state), understanding)
        before = state
        state, actions = dialog.decide(state, reading, understanding.grammar, now)
        state, actions = self.run_self_service(state, actions, understanding.grammar)
        self.persist(state, actions, understanding.grammar)
        self.collect_miss(before, state, reading, now)
        self.note(CallEvent(call_sid, "turn", now, {
            "step": state.step, "intent": state.intent, "score": state.score, "text": redact(utterance.text),
            "digits": bool(utterance.digits), "retries": state.retries, "asked": before.step,
            "miss": miss_of(before, state, reading), "outcome": state.outcome}))
        return Reply(tuple(actions), state.locale, state.turn_count)

    def collect_miss(self, before: DialogState, after: DialogState, reading: Interpretation, now: float) -> None:
        """Where the bot failed a caller, keep what they said for the admins' inbox (redacted; best effort): a
        request not understood or not handled, one that ended in an escalation to a person after the retries, or a
        guess the caller denied ("no" to "you're calling about …?")."""
        if self.inbox is None:
            return
        said = redact(reading.utterance.text)
        try:
            if before.step == "intent" and said and after.total_retries > before.total_retries:
                reason = ("escalated" if after.outcome == "transfer" else
                          "out_of_scope" if reading.unsupported else "not_understood")
                self.inbox.add(before.locale, said, reason=reason, now=now)
            elif before.step == "confirm" and reading.yes_no is False:
                request = next((t.text for t in reversed(before.turns) if t.speaker == "caller"), "")
                self.inbox.add(before.locale, request, reason="denied", now=now)
        except Exception:
            log.warning("call %s: missed utterance not kept (store unavailable)", before.call_sid)

    def run_self_service(self, state: DialogState, actions: list[Action],
                         grammar: Grammar) -> tuple[DialogState, list[Action]]:
        """Carry out a RunSelfService action and let the dialog continue with its result."""
        while actions and isinstance(step := actions[-1], RunSelfService):
            actions.pop()
            result = self.actions.run(step.name, SelfServiceRequest(dict(step.slots), state.caller, state.locale))
            if result.ok:
                state.verified = sorted({*state.verified, *(name for name, _ in step.slots)})
            else:
                log.warning("self-service %s failed for %s: %s", step.name, state.call_sid, result.data)
            state, more = dialog.resume(state, result, grammar, self.clock())
            actions += more
        return state, actions

    def after_stream(self, call_sid: str, *, locale: str) -> Reply:
        """The stream closed: carry out what the dialog decided (transfer or goodbye), or send the caller to a human."""
        state = self.load(call_sid)
        if state.outcome == "transfer" and state.queue:
            return Reply((Transfer(state.queue, tuple(state.skills), state.transfer_reason or "intent"),), state.locale)
        if state.step == "done":
            return Reply((Hangup(),), state.locale)
        log.error("call %s: stream ended without a decision, transferring", call_sid)
        return self.fail(call_sid, locale=locale, reason="stream_ended")

    def fail(self, call_sid: str, *, locale: str, reason: str) -> Reply:
        """A fault mid-call: apologise and transfer. Saves what it can, but never raises for the store."""
        grammar = self.grammar(locale)
        try:
            state = self.load(call_sid)
        except Exception:
            state = DialogState(call_sid=call_sid, locale=grammar.locale)
        state, actions = dialog.escalate(state, grammar, self.clock(), reason=reason)
        try:
            self.persist(state, actions, grammar)
        except Exception:
            log.exception("call %s: could not persist the fault transfer", call_sid)
        return Reply(tuple(actions), state.locale)

    def hold(self, *, locale: str, queue: str, position: int, avg_queue_time_s: int, waited_s: int) -> Hold:
        """The hold announcement (Twilio repeats the waitUrl), with the wait estimated from the queue's recent
        waits; past the queue's wait limit, the offer of a call back."""
        grammar = self.grammar(locale)
        try:
            recent = self.store.recent_waits(queue, since=self.clock() - RECENT_WAITS_S)
        except Exception:  # the store is down: the caller still holds, with Twilio's estimate
            log.warning("queue %s: recent waits unavailable, estimating from Twilio's figures", queue)
            recent = []
        minutes = wait_minutes(position, avg_queue_time_s, recent)
        limit = grammar.queues[queue].max_wait_before_callback if queue in grammar.queues else None
        offer = grammar.prompts.hold_callback if limit is not None and waited_s >= limit else None
        announcement = grammar.prompts.wait.format(position=position, minutes=minutes)
        return Hold(announcement, offer, grammar.prompts.hold_comfort)

    def left_queue(self, call_sid: str, *, queue: str, result: str, waited_s: int) -> None:
        """A caller left a queue: an event for analytics, and for a bridged caller a measured wait."""
        now = self.clock()
        self.note(CallEvent(call_sid, "queue_exit", now, {"result": result, "queue": queue, "waited": waited_s}))
        if result == "bridged" and queue:
            self.store.record_wait(queue, waited_s, now)

    def request_callback(self, call_sid: str, *, number: str, queue: str, locale: str) -> str:
        """A caller on hold chose a call back: store the request; returns the goodbye to say."""
        now = self.clock()
        self.store.add_callback(CallbackRequest(call_sid, number, queue, None, "long_wait", now,
                                                locale=self.grammar(locale).locale))
        self.note(CallEvent(call_sid, "callback", now, {"queue": queue}))
        return self.grammar(locale).prompts.callback_queued

    def whisper_text(self, call_sid: str, *, locale: str) -> tuple[str, str]:
        """What the agent hears before the bridge, in the caller's hotline language: (text, locale)."""
        try:
            context = self.store.load_context(call_sid)
            locale = context.locale if context else locale
            template = self.grammar(locale).prompts.whisper
        except Exception:
            log.exception("whisper for %s: context unavailable", call_sid)
            context, template = None, FALLBACK_WHISPER
        summary = context.summary if context else "No details were collected for this caller."
        return template.format(summary=summary), locale

    def context(self, call_sid: str) -> CallContext | None:
        return self.store.load_context(call_sid)

    def history(self, caller: str, *, before: str = "") -> list[dict]:
        """The calling number's earlier calls (for the agent's screen pop), without the call `before` itself."""
        seen: set[str] = {before}
        earlier = []
        for entry in self.store.history(caller):  # newest first; a call is listed once
            if entry.get("call") not in seen:
                seen.add(entry.get("call", ""))
                earlier.append(entry)
        return earlier

    def note(self, event: CallEvent) -> None:
        """Analytics are best effort: a store fault must not change what the caller hears."""
        try:
            self.store.log_event(event)
        except Exception:
            log.exception("call %s: %s event not recorded", event.call, event.type)

    def load(self, call_sid: str) -> DialogState:
        data = self.store.load_state(call_sid)
        if data is None:
            raise UnknownCall(call_sid)
        return DialogState.from_dict(data)

    def persist(self, state: DialogState, actions: list[Action], grammar: Grammar) -> None:
        """Save state; before any transfer, save the context record the agent will see."""
        self.store.save_state(state.call_sid, state.to_dict())
        now = self.clock()
        if any(isinstance(a, Transfer) for a in actions):
            self.store.save_context(context_of(state, grammar))
            self.store.log_event(CallEvent(state.call_sid, "transfer", now, {
                "queue": state.queue, "intent": state.intent, "reason": state.transfer_reason}))
        if state.step == "done" and state.caller:
            self.store.add_to_history(state.caller, {"call": state.call_sid, "at": state.started_at,
                                                     "intent": state.intent, "outcome": state.outcome})
        if state.outcome == "callback" and state.callback_number:
            self.store.save_context(context_of(state, grammar))
            self.store.add_callback(CallbackRequest(state.call_sid, state.callback_number, state.queue, state.intent,
                                                    "closed", now, locale=state.locale))


def miss_of(before: DialogState, after: DialogState, reading: Interpretation) -> str | None:
    """Why a turn was asked again, for the no-input and no-match rates per dialog step."""
    if after.total_retries <= before.total_retries:
        return None
    if not reading.utterance.text.strip() and not reading.utterance.digits:
        return "no_input"
    return "out_of_scope" if reading.unsupported else "no_match"


def context_of(state: DialogState, grammar: Grammar) -> CallContext:
    """Everything the caller already told us, as the agent will see it."""
    mood = estimate_mood(t.text for t in state.turns if t.speaker == "caller")
    intent = grammar.intents.get(state.intent or "")
    return CallContext(
        call_sid=state.call_sid, caller=state.caller, locale=state.locale, intent=state.intent,
        intent_label=intent.label if intent else None, confidence=state.score,
        alternatives=tuple({"intent": name, "score": score} for name, score in state.ranking[1:4]),
        slots=dict(state.slots), transcript=tuple(vars(t).copy() for t in state.turns),
        retries=state.total_retries, agent_requested=state.agent_requested, mood=mood, queue=state.queue,
        skills=tuple(state.skills), reason=state.transfer_reason, callback_number=state.callback_number,
        summary=summarize(grammar, intent=state.intent, score=state.score, slots=state.slots,
                          agent_requested=state.agent_requested, retries=state.total_retries, mood=mood,
                          further=state.further),
        started_at=state.started_at, further=tuple(state.further), verified_slots=tuple(state.verified),
    )
