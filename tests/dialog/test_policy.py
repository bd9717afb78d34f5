"""Every dialog branch as pure functions over scripted Interpretations: (state, interpretation, now) →
(state, actions). No classifier runs here, so these cases do not depend on the model's ranking."""
import json
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr import dialog
from ivr.dialog import DialogState
from ivr.grammar import load_grammar, vocabulary
from ivr.grammar.schema import EndSilence, NoInput, Thresholds, Timing
from ivr.types import Hangup, Interpretation, Listen, RunSelfService, Say, SelfServiceResult, Transfer, Utterance
from tests.support import GRAMMARS, OPEN_HOURS

SUNDAY_NIGHT = datetime(2026, 11, 29, 23, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
GRAMMAR = load_grammar(GRAMMARS / "en-US" / "hotline.yaml")
BALANCE = SelfServiceResult("The balance on the account ending 5 6 7 8 is 84 dollars and 20 cents.")


def heard(intent, score=0.9, *, runner_up=("billing_question", 0.04), text="(speech)", **fields) -> Interpretation:
    """The NLU recognised an intent with this score (runner-up second)."""
    ranking = ((intent, score), runner_up) if intent else (runner_up,)
    return Interpretation(Utterance(text), intent=intent, score=score if intent else runner_up[1], ranking=ranking,
                          out_of_scope=intent is None, **fields)


def said(text, **fields) -> Interpretation:
    """Speech read only for slot values (yes/no, digits, choice, agent request)."""
    return Interpretation(Utterance(text), **fields)


def keys(digits, **fields) -> Interpretation:
    return Interpretation(Utterance(digits=digits), digits=digits.rstrip("#"), **fields)


SILENCE = Interpretation(Utterance())
YES, NO = said("yes", yes_no=True), said("no", yes_no=False)
AGENT = said("an operator please", wants_agent=True)


def run(*readings, grammar=GRAMMAR, now=OPEN_HOURS, results=(BALANCE,), state=None):
    """Start a call and feed it readings; a self-service step gets the next of `results`."""
    state = state or DialogState(call_sid="CA1", caller="+15550100001")
    state, actions = dialog.start(state, grammar, now)
    backend = list(results)
    for reading in readings:
        state, actions = dialog.decide(state, reading, grammar, now)
        if actions and isinstance(actions[-1], RunSelfService):
            state, more = dialog.resume(state, backend.pop(0), grammar, now)
            actions = actions[:-1] + more
    return state, actions


def spoken(actions) -> str:
    return " ".join(a.text for a in actions if isinstance(a, Say))


def transfer_of(actions) -> Transfer | None:
    return next((a for a in actions if isinstance(a, Transfer)), None)


def test_greeting_discloses_the_assistant_and_cannot_be_skipped():
    _, actions = run()
    greeting = actions[0]
    assert isinstance(greeting, Say) and "automated assistant" in greeting.text and not greeting.barge_in
    assert isinstance(actions[-1], Listen) and actions[-1].expect == "intent" and "agent" in actions[-1].hints


@pytest.mark.parametrize(
    ("reading", "queue", "skills", "step"),
    [
        (heard("internet_down"), "tech_support", ("internet",), "done"),
        (heard("pay_bill"), "billing", ("payments",), "done"),
        (heard("cancel_contract"), "retention", ("retention",), "done"),
        (keys("3", menu_intent="internet_down"), "tech_support", ("internet",), "done"),
        (AGENT, "general", (), "done"),
        (keys("0", wants_agent=True), "general", (), "done"),
    ],
)
def test_clear_requests_transfer_to_their_queue(reading, queue, skills, step):
    state, actions = run(reading)
    transfer = transfer_of(actions)
    assert (transfer.queue, transfer.skills, state.step) == (queue, skills, step)


@pytest.mark.parametrize(
    "steps",
    [
        [],  # the first question
        [heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40))],  # disambiguation
        [heard("check_balance")],  # digit slot
        [SILENCE],  # after a reprompt
        [heard("pay_bill", 0.4, runner_up=("billing_question", 0.1))],  # confirmation
    ],
)
@pytest.mark.parametrize("escape", [keys("0", wants_agent=True), AGENT])
def test_zero_or_agent_reaches_a_person_at_every_step(steps, escape):
    state, actions = run(*steps, escape)
    assert transfer_of(actions) is not None and state.agent_requested
    assert state.transfer_reason == "agent_requested"


def test_agent_request_keeps_the_topic_when_it_is_clear():
    reading = replace(heard("internet_down", 0.5, runner_up=("speak_to_agent", 0.4)), wants_agent=True)
    state, actions = run(reading)
    assert transfer_of(actions).queue == "tech_support"
    assert state.agent_requested and state.intent == "internet_down"


def test_agent_request_with_an_unclear_topic_goes_to_the_general_queue():
    reading = replace(heard("internet_down", 0.2, runner_up=("speak_to_agent", 0.5)), wants_agent=True)
    state, actions = run(reading)
    assert transfer_of(actions).queue == "general" and state.intent is None


def test_close_top_two_asks_which_one():
    state, actions = run(heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40)))
    assert state.step == "disambiguate" and state.choices == ["pay_bill", "payment_arrangement"]
    assert "about paying a bill, or about a payment arrangement" in spoken(actions)
    assert isinstance(actions[-1], Listen) and actions[-1].expect == "choice"
    assert dialog.expecting(state).choices == ("pay_bill", "payment_arrangement")


@pytest.mark.parametrize(("answer", "intent"), [(said("the plan", choice="payment_arrangement"), "payment_arrangement"),
                                                 (keys("1", choice="pay_bill"), "pay_bill")])
def test_disambiguation_answer_routes(answer, intent):
    state, actions = run(heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40)), answer)
    assert state.intent == intent and transfer_of(actions).queue == "billing"


def test_disambiguation_unclear_answer_asks_again():
    state, actions = run(heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40)), said("hmm"))
    assert state.step == "disambiguate" and state.retries == 1 and "paying a bill" in spoken(actions)


GREY = heard("internet_down", 0.45, runner_up=("slow_internet", 0.2))


def test_grey_zone_confidence_confirms_then_yes_routes():
    state, actions = run(GREY)
    assert state.step == "confirm" and "Is that right?" in spoken(actions)
    assert dialog.expecting(state).kind == "yes_no" and not dialog.expecting(state).rank_intents
    state, actions = run(GREY, YES)
    assert transfer_of(actions).queue == "tech_support" and state.intent == "internet_down"


def test_confirm_no_offers_the_keypad_menu():
    state, actions = run(GREY, NO)
    assert state.step == "intent" and state.intent is None
    assert "press 1" in spoken(actions).lower()


def test_confirm_unclear_answer_asks_again():
    state, actions = run(GREY, said("pardon"))
    assert state.step == "confirm" and "Is that right?" in spoken(actions)


def test_confirm_always_policy_and_threshold_come_from_the_grammar():
    strict = GRAMMAR.model_copy(update={"thresholds": Thresholds(out_of_scope=0.05, confirm=0.999)})
    state, _ = run(heard("internet_down", 0.95), grammar=strict)
    assert state.step == "confirm"


def test_timing_and_interruptible_prompts_come_from_the_grammar():
    grammar = GRAMMAR.model_copy(update={
        "timing": Timing(no_input_s=NoInput(intent=9), end_silence_ms=EndSilence(intent=1500)),
        "uninterruptible": ["greeting", "no_match"]})
    _, actions = run(grammar=grammar)
    assert (actions[-1].timeout_s, actions[-1].end_silence_ms) == (9, 1500)
    _, actions = run(heard(None), grammar=grammar)
    assert [a.barge_in for a in actions if isinstance(a, Say)] == [False]
    _, actions = run(SILENCE, grammar=grammar)
    assert [a.barge_in for a in actions if isinstance(a, Say)] == [True]


def test_no_input_reprompts_with_new_wording_then_ends_a_silent_line_politely():
    _, first = run(SILENCE)
    _, second = run(SILENCE, SILENCE)
    state, third = run(SILENCE, SILENCE, SILENCE, state=DialogState(call_sid="CA1", caller="+266696687"))  # withheld
    assert spoken(first) != spoken(second) and spoken(second).lower().count("press 0") == 1
    assert transfer_of(third) is None and isinstance(third[-1], Hangup) and "call us again" in spoken(third)
    assert state.outcome == "no_input"


def test_a_silent_line_with_a_caller_id_is_offered_a_call_back_by_key_first():
    state, offer = run(SILENCE, SILENCE, SILENCE)
    assert state.step == "callback" and "If you can hear me, press 1" in spoken(offer) and transfer_of(offer) is None
    state, kept = run(SILENCE, SILENCE, SILENCE, keys("1"))
    assert state.callback_number == "+15550100001" and isinstance(kept[-1], Hangup)
    state, ended = run(SILENCE, SILENCE, SILENCE, SILENCE)
    assert transfer_of(ended) is None and isinstance(ended[-1], Hangup) and "call us again" in spoken(ended)


def test_a_caller_who_spoke_and_then_went_quiet_reaches_a_person():
    state, actions = run(heard(None), SILENCE, SILENCE)
    assert transfer_of(actions).queue == "general" and state.transfer_reason == "no_input"


def test_no_match_reprompts_offers_menu_then_escalates():
    _, first = run(heard(None))
    _, second = run(heard(None), heard(None))
    state, third = run(heard(None), heard(None), heard(None))
    assert "different way" in spoken(first)
    assert "For paying a bill, press 1" in spoken(second)
    assert transfer_of(third) is not None and state.transfer_reason == "no_match" and state.total_retries == 3


def test_a_request_the_hotline_does_not_handle_hears_what_it_does_handle():
    unsupported = replace(heard(None), unsupported=True)
    _, first = run(unsupported)
    assert "I can help with bills and payments" in spoken(first) and "different way" not in spoken(first)
    state, third = run(unsupported, unsupported, unsupported)
    assert transfer_of(third) is not None and state.transfer_reason == "out_of_scope"


def test_unknown_menu_key_is_a_no_match():
    state, actions = run(keys("9"))
    assert state.retries == 1 and transfer_of(actions) is None


def test_self_service_collects_the_slot_then_runs_the_backend():
    state, actions = run(heard("check_balance"))
    assert state.step == "slot" and "8-digit account number" in spoken(actions)
    assert actions[-1] == Listen("digits", hints=vocabulary("en-US").digit_words, max_digits=8, timeout_s=8,
                                 end_silence_ms=1200)
    state, actions = dialog.decide(state, keys("12345678"), GRAMMAR, OPEN_HOURS)
    assert actions == [RunSelfService("account_balance", (("account_number", "12345678"),))]
    state, actions = run(heard("check_balance"), keys("12345678"))
    assert "84 dollars and 20 cents" in spoken(actions) and state.step == "anything_else"


@pytest.mark.parametrize("wrong", [keys("1234"), said("um", digits="")])
def test_slot_of_the_wrong_length_asks_again(wrong):
    state, actions = run(heard("check_balance"), wrong)
    assert state.step == "slot" and "didn't sound right" in spoken(actions)


def test_a_second_miss_at_a_question_escalates_to_the_keypad():
    _, first = run(heard("check_balance"), said("um"))
    _, second = run(heard("check_balance"), said("um"), said("uh"))
    assert "keypad" not in spoken(first) and "keypad" in spoken(second)
    _, confirm = run(heard("cancel_contract", 0.5), SILENCE, SILENCE)
    assert "didn't hear anything" in spoken(confirm) and "keypad" in spoken(confirm)


def test_slot_failures_escalate_to_the_intents_queue():
    state, actions = run(heard("check_balance"), said("um"), said("uh"), said("er"))
    assert transfer_of(actions).queue == "billing" and state.transfer_reason == "slot_not_understood"


def test_failed_self_service_says_why_and_falls_back_to_the_queue():
    failed = SelfServiceResult("I couldn't find an account with that number.", ok=False)
    state, actions = run(heard("check_balance"), keys("99999999"), results=[failed])
    assert "couldn't find" in spoken(actions)
    assert transfer_of(actions).queue == "billing" and state.transfer_reason == "self_service_failed"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(NO, "goodbye"), (SILENCE, "goodbye"), (YES, "what else"), (heard("pay_bill", text="pay my bill"), "billing")],
)
def test_anything_else(answer, outcome):
    state, actions = run(heard("check_balance"), keys("12345678"), answer)
    if outcome == "goodbye":
        assert isinstance(actions[-1], Hangup) and "Goodbye" in spoken(actions) and state.outcome == "self_service"
    elif outcome == "what else":
        assert state.step == "intent" and "What else" in spoken(actions)
    else:
        assert transfer_of(actions).queue == "billing" and state.intent == "pay_bill"


def test_closed_queue_offers_a_callback_to_the_calling_number():
    state, actions = run(heard("pay_bill"), now=SUNDAY_NIGHT)
    assert state.step == "callback" and "closed right now" in spoken(actions) and transfer_of(actions) is None
    state, actions = run(heard("pay_bill"), keys("1"), now=SUNDAY_NIGHT)
    assert state.callback_number == "+15550100001" and state.outcome == "callback"
    assert isinstance(actions[-1], Hangup)


@pytest.mark.parametrize(
    ("answer", "number"),
    [(said("five five five one two three four five six seven", digits="5551234567"), "5551234567"),
     (keys("0301234567#"), "0301234567"), (said("yes please", yes_no=True), "+15550100001")],
)
def test_closed_queue_callback_number(answer, number):
    state, _ = run(heard("pay_bill"), answer, now=SUNDAY_NIGHT)
    assert state.callback_number == number and not state.agent_requested


def test_closed_queue_callback_no_says_goodbye():
    state, actions = run(heard("pay_bill"), NO, now=SUNDAY_NIGHT)
    assert state.outcome == "goodbye" and isinstance(actions[-1], Hangup)


def test_always_open_queue_ignores_the_clock():
    _, actions = run(heard("internet_down"), now=SUNDAY_NIGHT)
    assert transfer_of(actions).queue == "tech_support"


def test_a_late_answer_after_the_decision_repeats_it():
    state, _ = run(heard("internet_down"))
    _, actions = dialog.decide(state, said("hello?"), GRAMMAR, OPEN_HOURS)
    assert actions == [Transfer("tech_support", ("internet",))]


def test_a_fault_at_night_still_ends_in_a_queue():
    closed = GRAMMAR.model_copy(update={"default_queue": "billing"})  # billing is closed on Sunday
    state, _ = run(grammar=closed, now=SUNDAY_NIGHT)
    _, actions = dialog.escalate(state, closed, SUNDAY_NIGHT, reason="asr_failed")
    assert transfer_of(actions).queue == "billing"


def test_escalate_after_a_fault_apologises_and_transfers():
    state, _ = run()
    state, actions = dialog.escalate(state, GRAMMAR, OPEN_HOURS, reason="asr_failed")
    assert "went wrong" in spoken(actions) and transfer_of(actions).queue == "general"
    assert state.transfer_reason == "asr_failed"


def test_transcript_records_both_sides_with_timestamps():
    state, _ = run(heard("internet_down", text="my internet keeps dropping out"))
    assert [t.speaker for t in state.turns] == ["ivr", "caller", "ivr"]
    assert state.turns[1].text == "my internet keeps dropping out" and state.turns[1].at == OPEN_HOURS


def test_decide_does_not_change_the_state_it_was_given():
    state, _ = run()
    before = json.dumps(state.to_dict())
    dialog.decide(state, heard("internet_down"), GRAMMAR, OPEN_HOURS)
    assert json.dumps(state.to_dict()) == before


def test_state_round_trips_through_json():
    state, _ = run(heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40)))
    assert DialogState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_state_as_plain_data_is_a_snapshot_like_asdict():
    """A webhook's writes are sent at its end: the state saved must not change with the state after it."""
    from dataclasses import asdict

    state, _ = run(heard("pay_bill", 0.45, runner_up=("payment_arrangement", 0.40)))
    state.slots["account_number"] = "12345678"
    state.further.append("moving")
    saved = state.to_dict()
    assert saved == asdict(state)
    state.turns[0].text, state.slots["account_number"] = "changed", "changed"
    state.ranking.clear()
    state.further.clear()
    assert saved["turns"][0]["text"] != "changed" and saved["slots"]["account_number"] == "12345678"
    assert saved["ranking"] and saved["further"] == ["moving"]
