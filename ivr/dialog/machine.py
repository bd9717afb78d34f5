"""The dialog policy: (state, utterance) → (new state, actions). Pure: no I/O, no transport, clock passed in."""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass

from ivr.dialog.selfservice import ActionRegistry, ActionRequest
from ivr.dialog.state import DialogState
from ivr.nlu import Understanding
from ivr.nlu.grammar import AGENT_INTENT
from ivr.nlu.slots import parse_digits, parse_yes_no
from ivr.routing.hours import is_open
from ivr.types import Action, Hangup, Interpretation, Listen, ListenKind, Say, Transfer, Turn, Utterance

log = logging.getLogger(__name__)
YES_NO_HINTS = ("yes", "no", "ja", "nein")


@dataclass(frozen=True)
class DialogEnv:
    """What the policy may consult: the locale's understanding, self-service actions and the time."""

    understanding: Understanding
    actions: ActionRegistry
    now: float


class _Turn:
    """One step of the policy over a private copy of the state, collecting actions."""

    def __init__(self, state: DialogState, env: DialogEnv):
        self.state = copy.deepcopy(state)
        self.env = env
        self.grammar = env.understanding.grammar
        self.prompts = self.grammar.prompts
        self.actions: list[Action] = []
        self.reading: Interpretation | None = None

    # -- output helpers ------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        protected = [getattr(self.prompts, name) for name in self.grammar.uninterruptible]
        barge_in = not any(text == p or (isinstance(p, list) and text in p) for p in protected)
        self.actions.append(Say(text, barge_in=barge_in))
        self.state.turns.append(Turn("ivr", text, self.env.now))

    def listen(self) -> None:
        step = self.state.step
        if step == "intent":
            self.expect("intent", hints=self.env.understanding.hints())
        elif step in ("confirm", "anything_else"):
            self.expect("yes_no", hints=YES_NO_HINTS)
        elif step == "disambiguate":
            self.expect("choice", hints=tuple(self.grammar.intents[c].label for c in self.state.choices))
        elif step == "slot":
            slot = self.grammar.slots[self.state.pending_slot or ""]
            self.expect("digits", max_digits=slot.length or slot.max_length or 20)
        elif step == "callback":
            self.expect("digits", max_digits=15)

    def expect(self, kind: ListenKind, *, hints: tuple[str, ...] = (), max_digits: int = 1) -> None:
        timing = self.grammar.timing
        self.actions.append(Listen(kind, hints=hints, max_digits=max_digits,
                                   timeout_s=getattr(timing.no_input_s, kind),
                                   end_silence_ms=getattr(timing.end_silence_ms, kind)))

    def goto(self, step: str) -> None:
        self.state.step = step
        self.state.retries = 0

    # -- the policy ----------------------------------------------------------------------------------
    def start(self) -> list[Action]:
        self.say(self.prompts.greeting)  # carries the AI disclosure: uninterruptible by default
        self.listen()
        return self.actions

    def handle(self, utterance: Utterance) -> list[Action]:
        self.state.turn_count += 1
        self.record(utterance)
        if self.wants_agent(utterance):
            self.state.agent_requested = True
            self.transfer_to_intent_queue(reason="agent_requested")
        elif utterance.is_empty:
            self.retry(self.prompts.no_input, reason="no_input")
        else:
            getattr(self, f"on_{self.state.step}")(utterance)
        return self.actions

    def record(self, utterance: Utterance) -> None:
        text = utterance.text or (f"[keyed {utterance.digits}]" if utterance.digits else "[no input]")
        self.state.turns.append(Turn("caller", text, self.env.now))

    def wants_agent(self, utterance: Utterance) -> bool:
        if utterance.digits == "0":  # a lone 0; longer key strings (account or phone numbers) may start with 0
            return True
        if self.state.step == "intent" and utterance.text:
            reading = self.interpret(utterance)
            if reading.intent == AGENT_INTENT or self.mentions_agent(utterance.text):
                # "someone about my internet": keep the real topic so the agent queue fits
                agent_share = dict(reading.ranking).get(AGENT_INTENT, 0.0)
                topic, score = next((n, s) for n, s in reading.ranking if n != AGENT_INTENT)
                score /= max(1e-9, 1.0 - agent_share)  # the topic's share of what is not "agent"
                if score >= self.grammar.thresholds.confirm:
                    self.remember(topic, score, reading.ranking)
                return True
            return False
        return bool(utterance.text) and self.mentions_agent(utterance.text)

    def mentions_agent(self, text: str) -> bool:
        lowered = text.lower()
        return any(re.search(rf"\b{re.escape(word.lower())}\b", lowered) for word in self.grammar.agent_words)

    def interpret(self, utterance: Utterance) -> Interpretation:
        """Classify once per turn (the agent check and the intent step share it)."""
        if self.reading is None:
            self.reading = self.env.understanding.interpret(utterance)
        return self.reading

    def remember(self, intent: str, score: float, ranking) -> None:
        self.state.intent, self.state.score = intent, round(score, 4)
        self.state.ranking = [(name, round(s, 4)) for name, s in ranking[:4]]

    def on_intent(self, utterance: Utterance) -> None:
        if utterance.digits:
            chosen = next((n for n, i in self.grammar.intents.items() if i.dtmf == utterance.digits[:1]), None)
            if chosen is None:
                return self.retry(self.prompts.no_match, reason="no_match")
            self.remember(chosen, 1.0, [(chosen, 1.0)])
            return self.accept(chosen)
        reading = self.interpret(utterance)
        self.state.ranking = [(name, round(s, 4)) for name, s in reading.ranking[:4]]
        if reading.out_of_scope or reading.intent is None:
            return self.retry(self.prompts.no_match, reason="no_match")
        self.remember(reading.intent, reading.score, reading.ranking)
        (first, p1), (second, p2) = reading.ranking[0], reading.ranking[1]
        policy = self.grammar.intents[first].confirm
        if p1 - p2 < self.grammar.thresholds.disambiguate_margin and policy != "never":
            self.state.choices = [first, second]
            self.goto("disambiguate")
            return self.ask_disambiguation()
        if policy == "always" or (policy == "auto" and p1 < self.grammar.thresholds.confirm):
            self.goto("confirm")
            return self.ask_confirmation()
        self.accept(first)

    def ask_confirmation(self) -> None:
        self.say(self.prompts.confirm.format(label=self.grammar.intents[self.state.intent or ""].label))
        self.listen()

    def ask_disambiguation(self) -> None:
        first, second = (self.grammar.intents[c].label for c in self.state.choices)
        self.say(self.prompts.disambiguate.format(first=first, second=second))
        self.listen()

    def on_confirm(self, utterance: Utterance) -> None:
        answer = parse_yes_no(utterance.text, utterance.digits)
        if answer is None:
            return self.retry([self.prompts.slot_retry], reason="no_match")
        if answer:
            return self.accept(self.state.intent or "")
        self.state.intent = None
        self.goto("intent")
        self.say(self.menu())
        self.listen()

    def on_disambiguate(self, utterance: Utterance) -> None:
        choices = self.state.choices
        if utterance.digits:
            index = int(utterance.digits[0]) - 1 if utterance.digits[0] in "12" else -1
            chosen = choices[index] if index >= 0 else None
        else:
            scores = dict(self.interpret(utterance).ranking)
            a, b = (scores.get(c, 0.0) for c in choices)
            chosen = choices[0] if a > 1.5 * b else choices[1] if b > 1.5 * a else None
        if chosen is None:
            return self.retry([self.prompts.slot_retry], reason="no_match")
        self.remember(chosen, max(self.state.score, 0.9), [(chosen, 1.0)])
        self.accept(chosen)

    def accept(self, intent: str) -> None:
        self.state.intent = intent
        missing = [s for s in self.grammar.intents[intent].slots if s not in self.state.slots]
        if missing:
            self.state.pending_slot = missing[0]
            self.goto("slot")
            self.say(self.grammar.slots[missing[0]].prompt)
            return self.listen()
        self.fulfil(intent)

    def on_slot(self, utterance: Utterance) -> None:
        name = self.state.pending_slot or ""
        slot = self.grammar.slots[name]
        value = utterance.digits.rstrip("#") if utterance.digits else parse_digits(utterance.text)
        low = slot.length or slot.min_length or 1
        high = slot.length or slot.max_length or 20
        if slot.type == "yes_no":
            answer = parse_yes_no(utterance.text, utterance.digits)
            value = "" if answer is None else ("yes" if answer else "no")
        elif not (low <= len(value) <= high):
            value = ""
        if not value:
            return self.retry([f"{self.prompts.slot_retry} {slot.prompt}"], reason="slot_not_understood")
        self.state.slots[name] = value
        self.state.pending_slot = None
        self.accept(self.state.intent or "")

    def fulfil(self, intent_name: str) -> None:
        route = self.grammar.intents[intent_name].route
        if not route.action:
            return self.transfer(route.queue or self.grammar.default_queue, route.skills, reason="intent")
        request = ActionRequest(dict(self.state.slots), self.state.caller, self.state.locale)
        result = self.env.actions.run(route.action, request)
        if not result.ok:
            log.warning("self-service %s failed for %s: %s", route.action, self.state.call_sid, result.data)
            if result.text:
                self.say(result.text)
            return self.transfer(route.queue or self.grammar.default_queue, route.skills, reason="self_service_failed")
        self.state.outcome = "self_service"
        self.say(result.text)
        self.goto("anything_else")
        self.say(self.prompts.anything_else)
        self.listen()

    def on_anything_else(self, utterance: Utterance) -> None:
        answer = parse_yes_no(utterance.text, utterance.digits)
        if answer is False:
            return self.goodbye()
        self.state.intent, self.state.slots = None, {}
        self.goto("intent")
        if answer is None:  # they went straight on to the next request
            return self.on_intent(utterance)
        self.say(self.prompts.another)
        self.listen()

    def on_callback(self, utterance: Utterance) -> None:
        answer = None if utterance.digits else parse_yes_no(utterance.text)
        if answer is False:
            return self.goodbye()
        if utterance.digits == "1" or answer is True:
            number = self.state.caller
        else:
            number = utterance.digits.rstrip("#") or parse_digits(utterance.text)
        if not 6 <= len(number.lstrip("+")) <= 15:
            return self.retry([self.prompts.slot_retry], reason="callback_number")
        self.state.callback_number = number
        self.state.outcome = "callback"
        self.goto("done")
        self.say(self.prompts.callback_confirm)
        self.actions.append(Hangup())

    def goodbye(self) -> None:
        self.state.outcome = self.state.outcome or "goodbye"
        self.goto("done")
        self.say(self.prompts.goodbye)
        self.actions.append(Hangup())

    def retry(self, variants: list[str], *, reason: str) -> None:
        """Reprompt with changing wording; past the grammar's retry limit, escalate to a human."""
        self.state.retries += 1
        self.state.total_retries += 1
        if self.state.step == "anything_else" and reason == "no_input":
            return self.goodbye()
        if self.state.retries > self.grammar.max_retries:
            if self.state.step == "callback":
                return self.transfer(self.grammar.default_queue, [], reason="callback_failed", respect_hours=False)
            return self.transfer_to_intent_queue(reason=reason)
        text = variants[min(self.state.retries - 1, len(variants) - 1)]
        if self.state.step == "intent" and self.state.retries == len(variants):
            text = f"{text} {self.menu()}"  # last try: offer the keypad menu
        self.say(text)
        if self.state.step == "confirm":
            self.ask_confirmation()
        elif self.state.step == "disambiguate":
            self.ask_disambiguation()
        else:
            self.listen()

    def menu(self) -> str:
        options = " ".join(
            self.prompts.menu_option.format(label=i.label, key=i.dtmf) for i in self.grammar.intents.values() if i.dtmf
        )
        return self.prompts.menu.format(options=options)

    def transfer_to_intent_queue(self, *, reason: str) -> None:
        intent = self.grammar.intents.get(self.state.intent or "")
        if intent and intent.route.queue:
            return self.transfer(intent.route.queue, intent.route.skills, reason=reason)
        self.transfer(self.grammar.default_queue, [], reason=reason)

    def transfer(
        self, queue_name: str, skills: list[str], *, reason: str, respect_hours: bool = True, announce: bool = True
    ) -> None:
        """Queue the caller; a closed queue offers a call back instead, unless this is the last resort."""
        queue = self.grammar.queues[queue_name]
        if respect_hours and not is_open(queue.hours, queue.timezone, self.env.now):
            self.state.queue = queue_name
            self.goto("callback")
            self.say(self.prompts.closed.format(queue=queue.label, hours=queue.hours))
            return self.listen()
        self.state.queue, self.state.skills, self.state.transfer_reason = queue_name, list(skills), reason
        self.state.outcome = "transfer"
        self.goto("done")
        template = self.prompts.agent if reason == "agent_requested" else self.prompts.transfer
        if announce:
            self.say(template.format(queue=queue.label))
        self.actions.append(Transfer(queue_name, tuple(skills), reason))


def start_call(state: DialogState, env: DialogEnv) -> tuple[DialogState, list[Action]]:
    """Greet the caller (with the AI disclosure) and listen for the request."""
    turn = _Turn(state, env)
    actions = turn.start()
    return turn.state, actions


def next_actions(state: DialogState, utterance: Utterance, env: DialogEnv) -> tuple[DialogState, list[Action]]:
    """Consume one caller utterance and decide what happens next."""
    if state.step == "done":  # a late or repeated answer: the decision stands
        ended = Transfer(state.queue, tuple(state.skills)) if state.outcome == "transfer" and state.queue else Hangup()
        return state, [ended]
    turn = _Turn(state, env)
    return turn.state, turn.handle(utterance)


def escalate(state: DialogState, env: DialogEnv, *, reason: str) -> tuple[DialogState, list[Action]]:
    """Send the caller to a human after a fault elsewhere (store, recogniser, TTS)."""
    turn = _Turn(state, env)
    turn.say(turn.prompts.error)
    turn.transfer(turn.grammar.default_queue, [], reason=reason, respect_hours=False, announce=False)
    return turn.state, turn.actions
