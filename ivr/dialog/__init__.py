"""Dialog policy, pure and transport-neutral: (state, interpretation, now) → (state, actions). It reads the grammar
and the NLU's Interpretation; it never classifies, parses, calls a backend or touches the store."""
from __future__ import annotations

from ivr.dialog.state import DialogState, Step
from ivr.dialog.steps import HANDLERS, after_self_service, agent_requested
from ivr.dialog.turn import DialogTurn, expecting
from ivr.grammar import Grammar
from ivr.privacy import redact
from ivr.types import Action, Interpretation, SelfServiceResult, Turn

__all__ = ["DialogState", "Step", "decide", "escalate", "expecting", "resume", "start"]
Outcome = tuple[DialogState, list[Action]]


def start(state: DialogState, grammar: Grammar, now: float) -> Outcome:
    """Greet the caller (with the AI disclosure) and listen for the request."""
    turn = DialogTurn(state, grammar, now)
    turn.say(grammar.prompts.greeting)  # carries the AI disclosure: uninterruptible by default
    turn.listen()
    return turn.state, turn.actions


def decide(state: DialogState, reading: Interpretation, grammar: Grammar, now: float) -> Outcome:
    """Consume one caller turn, as the NLU read it, and decide what happens next."""
    turn = DialogTurn(state, grammar, now)
    if state.step == "done":  # a late or repeated answer: the decision stands, the state is not touched
        HANDLERS["done"](turn, reading)
        return state, turn.actions
    turn.state.turn_count += 1
    utterance = reading.utterance
    text = utterance.text or (f"[keyed {utterance.digits}]" if utterance.digits else "[no input]")
    turn.state.turns.append(Turn("caller", redact(text), now))  # numbers the service needs live in slots
    if reading.wants_agent:
        agent_requested(turn, reading)
    elif reading.no_input:
        turn.retry(reason="no_input")
    else:
        HANDLERS[turn.state.step](turn, reading)
    return turn.state, turn.actions


def resume(state: DialogState, result: SelfServiceResult, grammar: Grammar, now: float) -> Outcome:
    """Continue after a self-service backend ran (the RunSelfService action)."""
    turn = DialogTurn(state, grammar, now)
    after_self_service(turn, result)
    return turn.state, turn.actions


def escalate(state: DialogState, grammar: Grammar, now: float, *, reason: str) -> Outcome:
    """Send the caller to a human after a fault elsewhere (store, recogniser, TTS, backend)."""
    turn = DialogTurn(state, grammar, now)
    turn.say(grammar.prompts.error)
    turn.transfer(grammar.default_queue, [], reason=reason, respect_hours=False, announce=False)
    return turn.state, turn.actions
