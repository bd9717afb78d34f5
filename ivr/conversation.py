"""Runs the dialog for a call over the store: load state, decide, persist state/context/events. Both speech
transports (Gather webhooks and Media Streams) go through here, so they behave the same."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr.dialog import ActionRegistry, DialogEnv, DialogState, escalate, next_actions, start_call
from ivr.nlu.catalog import GrammarCatalog
from ivr.privacy import redact
from ivr.routing.handoff import context_record
from ivr.store import CallStore
from ivr.types import Action, Transfer, Utterance

log = logging.getLogger(__name__)


class UnknownCall(LookupError):
    """No state for this CallSid: never seen, or expired."""


@dataclass
class Conversations:
    """The call-level service: one instance per app, stateless between requests."""

    store: CallStore
    catalog: GrammarCatalog
    actions: ActionRegistry
    clock: Callable[[], float]

    def env(self, locale: str) -> DialogEnv:
        return DialogEnv(self.catalog.get(locale), self.actions, self.clock())

    def begin(self, call_sid: str, *, caller: str, locale: str) -> tuple[DialogState, list[Action]]:
        """Start a call: greet and listen."""
        env = self.env(locale)
        locale = env.understanding.grammar.locale
        state = DialogState(call_sid=call_sid, caller=caller, locale=locale, started_at=env.now)
        state, actions = start_call(state, env)
        self.persist(state, actions, env)
        self.store.log_event({"at": env.now, "call": call_sid, "type": "start", "locale": locale})
        return state, actions

    def respond(self, call_sid: str, utterance: Utterance) -> tuple[DialogState, list[Action]]:
        """Feed one caller turn to the dialog and persist the outcome."""
        state = self.store.load_state(call_sid)
        if state is None:
            raise UnknownCall(call_sid)
        env = self.env(state.locale)
        state, actions = next_actions(state, utterance, env)
        self.persist(state, actions, env)
        self.store.log_event({
            "at": env.now, "call": call_sid, "type": "turn", "step": state.step, "intent": state.intent,
            "score": state.score, "text": redact(utterance.text), "digits": bool(utterance.digits),
            "retries": state.retries,
        })
        return state, actions

    def fail(self, call_sid: str, *, locale: str, reason: str) -> list[Action]:
        """A fault mid-call: apologise and transfer. Saves what it can, but never raises for the store."""
        env = self.env(locale)
        try:
            state = self.store.load_state(call_sid) or DialogState(call_sid=call_sid, locale=locale)
        except Exception:
            state = DialogState(call_sid=call_sid, locale=locale)
        state, actions = escalate(state, env, reason=reason)
        try:
            self.persist(state, actions, env)
        except Exception:
            log.exception("call %s: could not persist the fault transfer", call_sid)
        return actions

    def persist(self, state: DialogState, actions: list[Action], env: DialogEnv) -> None:
        """Save state; before any transfer, save the context record the agent will see."""
        self.store.save_state(state)
        grammar = env.understanding.grammar
        if any(isinstance(a, Transfer) for a in actions):
            self.store.save_context(state.call_sid, context_record(state, grammar))
            self.store.log_event({"at": env.now, "call": state.call_sid, "type": "transfer", "queue": state.queue,
                                  "intent": state.intent, "reason": state.transfer_reason})
        if state.outcome == "callback" and state.callback_number:
            self.store.save_context(state.call_sid, context_record(state, grammar))
            self.store.add_callback({"call": state.call_sid, "number": state.callback_number, "queue": state.queue,
                                     "intent": state.intent, "at": env.now})
