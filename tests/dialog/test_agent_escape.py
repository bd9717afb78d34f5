"""Property: whatever happened before, at whatever hour, a caller who asks for a person ends at a human queue or
with a confirmed call back, never a goodbye (walks the dialog's states with scripted readings)."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import dialog
from ivr.dialog import DialogState
from ivr.types import Hangup, Interpretation, RunSelfService, SelfServiceResult, Transfer, Utterance
from tests.dialog.test_policy import AGENT, GRAMMAR, NO, SILENCE, YES, heard, keys, said

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=ZoneInfo("America/New_York"))
ANYTHING = st.sampled_from([
    SILENCE, YES, NO, said("hmm"), keys("9"), keys("1", yes_no=True, choice="pay_bill"),
    keys("12345678"), said("five five five one two three four five six seven", digits="5551234567"),
    heard("pay_bill"), heard("cancel_contract"), heard("check_balance"), heard("internet_down", 0.45),
    heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40)), heard(None),
])
GENERAL_CLOSED_AT_NIGHT = GRAMMAR.model_copy(update={"queues": {
    **GRAMMAR.queues, "general": GRAMMAR.queues["general"].model_copy(update={
        "hours": "Mon-Fri 08:00-20:00", "timezone": "America/New_York"})}})
ASK_FOR_PERSON = st.sampled_from([AGENT, keys("0", wants_agent=True),
                                  Interpretation(Utterance("no, a person right now"), yes_no=False, wants_agent=True)])


def step(state, reading, grammar, now):
    state, actions = dialog.decide(state, reading, grammar, now)
    if actions and isinstance(actions[-1], RunSelfService):
        state, more = dialog.resume(state, SelfServiceResult("Your balance is 5 dollars."), grammar, now)
        actions = actions[:-1] + more
    return state, actions


@settings(max_examples=300, deadline=None)
@given(before=st.lists(ANYTHING, max_size=4), ask=ASK_FOR_PERSON, then=st.lists(ASK_FOR_PERSON, max_size=2),
       hour=st.integers(0, 24 * 7 - 1), grammar=st.sampled_from([GRAMMAR, GENERAL_CLOSED_AT_NIGHT]))
def test_asking_for_a_person_never_ends_in_a_goodbye(before, ask, then, hour, grammar):
    now = (MONDAY + timedelta(hours=hour)).timestamp()
    state, actions = dialog.start(DialogState(call_sid="CA1", caller="+15550100001"), grammar, now)
    for reading in before:
        if state.step == "done":
            return  # the call already ended (a goodbye the caller chose, or a transfer)
        state, actions = step(state, reading, grammar, now)
    if state.step == "done":
        return
    for reading in [ask, *then]:
        state, actions = step(state, reading, grammar, now)
        assert not any(isinstance(a, Hangup) for a in actions), [a for a in actions]
        if any(isinstance(a, Transfer) for a in actions):
            return
        assert state.step == "callback"  # nobody is open: the call back is offered, and asked again
