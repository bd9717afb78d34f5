"""The dialog's step handlers, one per step, in a typed table (mypy reports a step without a handler).
Each reads the NLU's Interpretation and decides; none classifies, parses or calls a backend."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from ivr.dialog.turn import DialogTurn
from ivr.grammar import AGENT_INTENT
from ivr.types import Hangup, Interpretation, RunSelfService, SelfServiceResult, Transfer

Handler = Callable[[DialogTurn, Interpretation], None]


def on_intent(turn: DialogTurn, reading: Interpretation) -> None:
    grammar, thresholds = turn.grammar, turn.grammar.thresholds
    if reading.utterance.digits:
        chosen = reading.menu_intent
        if chosen is None:
            return turn.retry(reason="no_match")
        turn.remember(chosen, 1.0, [(chosen, 1.0)])
        return accept(turn, chosen)
    turn.state.ranking = [(name, round(s, 4)) for name, s in reading.ranking[:4]]
    if reading.out_of_scope or reading.intent is None:
        return turn.retry(reason="out_of_scope" if reading.unsupported else "no_match")
    turn.remember(reading.intent, reading.score, reading.ranking)
    turn.state.further = list(reading.further)
    (first, p1), (second, p2) = reading.ranking[0], reading.ranking[1]
    policy = grammar.intents[first].confirm
    if p1 - p2 < thresholds.disambiguate_margin and policy != "never":
        turn.state.choices = [first, second]
        turn.goto("disambiguate")
        return turn.ask_disambiguation()
    if policy == "always" or (policy == "auto" and p1 < thresholds.confirm):
        turn.goto("confirm")
        return turn.ask_confirmation()
    accept(turn, first)


def on_confirm(turn: DialogTurn, reading: Interpretation) -> None:
    if reading.yes_no is None:
        return turn.retry(reason="no_match")
    if reading.yes_no:
        return accept(turn, turn.state.intent or "")
    turn.state.intent = None
    turn.goto("intent")
    turn.say(turn.grammar.menu())
    turn.listen()


def on_disambiguate(turn: DialogTurn, reading: Interpretation) -> None:
    if reading.choice is None:
        return turn.retry(reason="no_match")
    turn.remember(reading.choice, max(turn.state.score, 0.9), [(reading.choice, 1.0)])
    accept(turn, reading.choice)


def on_slot(turn: DialogTurn, reading: Interpretation) -> None:
    name = turn.state.pending_slot or ""
    slot = turn.grammar.slots[name]
    low = slot.length or slot.min_length or 1
    high = slot.length or slot.max_length or 20
    if slot.type == "yes_no":
        value = "" if reading.yes_no is None else ("yes" if reading.yes_no else "no")
    else:
        value = reading.digits if low <= len(reading.digits) <= high else ""
    if not value:
        return turn.retry(reason="slot_not_understood")
    turn.state.slots[name] = value
    turn.state.pending_slot = None
    accept(turn, turn.state.intent or "")


def on_anything_else(turn: DialogTurn, reading: Interpretation) -> None:
    """ "No" ends the call; "yes" asks what else; a request ("yes, the wifi keeps cutting out") is taken at once."""
    new_request = reading.intent is not None and not reading.out_of_scope
    if reading.yes_no is False and not new_request:
        return turn.goodbye()
    turn.state.intent, turn.state.slots = None, {}
    turn.goto("intent")
    if new_request or reading.yes_no is None:
        return on_intent(turn, reading)
    turn.say(turn.prompts.another)
    turn.listen()


def on_callback(turn: DialogTurn, reading: Interpretation) -> None:
    """A number said or keyed wins ("yes, call me on 555 …"); 1 or "yes" means the calling number."""
    keyed = reading.utterance.digits
    answer = None if keyed else reading.yes_no
    if len(reading.digits) >= 6:
        number = reading.digits
    elif answer is False:
        return turn.goodbye()
    else:
        number = turn.state.caller if keyed == "1" or answer is True else reading.digits
    if not 6 <= len(number.lstrip("+")) <= 15:
        return turn.retry(reason="callback_number")
    turn.state.callback_number = number
    turn.state.outcome = "callback"
    turn.goto("done")
    turn.say(turn.prompts.callback_confirm)
    turn.actions.append(Hangup())


def on_done(turn: DialogTurn, reading: Interpretation) -> None:
    """A late or repeated answer after the decision: the decision stands."""
    state = turn.state
    ended = Transfer(state.queue, tuple(state.skills)) if state.outcome == "transfer" and state.queue else Hangup()
    turn.actions.append(ended)


class StepHandlers(TypedDict):
    intent: Handler
    confirm: Handler
    disambiguate: Handler
    slot: Handler
    anything_else: Handler
    callback: Handler
    done: Handler


HANDLERS: StepHandlers = {
    "intent": on_intent, "confirm": on_confirm, "disambiguate": on_disambiguate, "slot": on_slot,
    "anything_else": on_anything_else, "callback": on_callback, "done": on_done,
}


def accept(turn: DialogTurn, intent: str, *, announced: bool = False) -> None:
    """The caller's need is known: collect missing slots, then route or run the self-service action."""
    turn.state.intent = intent
    missing = [s for s in turn.grammar.intents[intent].slots if s not in turn.state.slots]
    if missing:
        turn.state.pending_slot = missing[0]
        turn.goto("slot")
        ask = turn.grammar.slots[missing[0]].prompt
        if not announced:  # say what was understood, then ask
            ask = f"{turn.prompts.understood.format(label=turn.grammar.intents[intent].label)} {ask}"
        turn.say(ask)
        return turn.listen()
    route = turn.grammar.intents[intent].route
    if not route.action:
        return turn.transfer(route.queue or turn.grammar.default_queue, route.skills, reason="intent")
    turn.actions.append(RunSelfService(route.action, tuple(sorted(turn.state.slots.items()))))


def after_self_service(turn: DialogTurn, result: SelfServiceResult) -> None:
    """Say what the backend answered and ask for anything else; a failure ends at the intent's queue."""
    route = turn.grammar.intents[turn.state.intent or ""].route
    if not result.ok:
        if result.text:
            turn.say(result.text)
        return turn.transfer(route.queue or turn.grammar.default_queue, route.skills, reason="self_service_failed")
    turn.state.outcome = "self_service"
    turn.say(result.text)
    if turn.state.further:  # the next need the caller named in the same sentence
        following = turn.state.further.pop(0)
        turn.say(turn.prompts.also_mentioned.format(label=turn.grammar.intents[following].label))
        return accept(turn, following, announced=True)
    turn.goto("anything_else")
    turn.say(turn.prompts.anything_else)
    turn.listen()


def agent_requested(turn: DialogTurn, reading: Interpretation) -> None:
    """ "agent" or 0 at any step: a person, keeping a clear topic ("someone about my internet") for the queue."""
    turn.state.agent_requested = True
    if turn.state.step == "intent" and reading.ranking:
        agent_share = dict(reading.ranking).get(AGENT_INTENT, 0.0)
        topic, score = next(((n, s) for n, s in reading.ranking if n != AGENT_INTENT), (None, 0.0))
        score /= max(1e-9, 1.0 - agent_share)  # the topic's share of what is not "agent"
        if topic is not None and score >= turn.grammar.thresholds.confirm:
            turn.remember(topic, score, reading.ranking)
    turn.transfer_to_intent_queue(reason="agent_requested")
