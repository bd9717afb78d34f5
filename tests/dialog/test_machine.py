"""Every dialog branch, driven as pure functions: (state, utterance) → (state, actions)."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.dialog import ActionRegistry, DialogEnv, DialogState, escalate, next_actions, start_call
from ivr.dialog.demo_backend import DemoBilling, register_demo_actions
from ivr.nlu import Understanding
from ivr.nlu.grammar import EndSilence, NoInput, Thresholds, Timing
from ivr.types import Hangup, Listen, Say, SelfServiceResult, Transfer, Utterance
from tests.conftest import OPEN_HOURS

SUNDAY_NIGHT = datetime(2026, 11, 29, 23, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()


@pytest.fixture
def registry():
    actions = ActionRegistry()
    register_demo_actions(actions, DemoBilling.from_file())
    return actions


@pytest.fixture
def env(understanding, registry):
    return DialogEnv(understanding, registry, OPEN_HOURS)


def run(env, *turns, state=None):
    """Start a call and feed it turns (str = speech, ("keys", "12") = DTMF, None = silence)."""
    state = state or DialogState(call_sid="CA1", caller="+15550100001")
    state, actions = start_call(state, env)
    for turn in turns:
        if turn is None:
            utterance = Utterance()
        elif isinstance(turn, tuple):
            utterance = Utterance(digits=turn[1])
        else:
            utterance = Utterance(turn)
        state, actions = next_actions(state, utterance, env)
    return state, actions


def said(actions) -> str:
    return " ".join(a.text for a in actions if isinstance(a, Say))


def transfer_of(actions) -> Transfer | None:
    return next((a for a in actions if isinstance(a, Transfer)), None)


def test_greeting_discloses_the_assistant_and_cannot_be_skipped(env):
    _, actions = run(env)
    greeting = actions[0]
    assert isinstance(greeting, Say) and "automated assistant" in greeting.text and not greeting.barge_in
    assert isinstance(actions[-1], Listen) and actions[-1].expect == "intent" and actions[-1].hints


def test_clear_request_transfers_to_its_queue_with_skills(env):
    state, actions = run(env, "my internet keeps dropping out")
    assert transfer_of(actions) == Transfer("tech_support", ("internet",), "intent")
    assert state.intent == "internet_down" and state.outcome == "transfer"
    assert "technical support" in said(actions)


@pytest.mark.parametrize("word", ["agent", "operator", "human", "representative"])
def test_agent_words_escape_at_the_first_question(env, word):
    state, actions = run(env, f"{word} please")
    assert transfer_of(actions).queue == "general"
    assert state.agent_requested and state.transfer_reason == "agent_requested"


@pytest.mark.parametrize(
    "steps",
    [
        [],  # the first question
        ["payment"],  # disambiguation
        ["what's my balance"],  # digit slot
        [None],  # after a reprompt
    ],
)
@pytest.mark.parametrize("escape", [("keys", "0"), "I want an operator"])
def test_zero_or_agent_reaches_a_person_at_every_step(env, steps, escape):
    state, actions = run(env, *steps, escape)
    assert transfer_of(actions) is not None
    assert state.agent_requested


def test_agent_request_keeps_the_topic_when_it_is_clear(env):
    state, actions = run(env, "my internet keeps dropping out and I want to talk to a human")
    assert transfer_of(actions).queue == "tech_support"
    assert state.agent_requested and state.intent == "internet_down"


def test_close_top_two_asks_which_one(env):
    state, actions = run(env, "payment")
    assert state.step == "disambiguate" and len(state.choices) == 2
    first, second = (env.understanding.grammar.intents[c].label for c in state.choices)
    assert f"about {first}, or about {second}" in said(actions)
    assert isinstance(actions[-1], Listen) and actions[-1].expect == "choice"


@pytest.mark.parametrize("answer", [("keys", "1"), ("keys", "2")])
def test_disambiguation_by_keypad(env, answer):
    state, _ = run(env, "payment")
    choice = state.choices[int(answer[1]) - 1]
    state, actions = run(env, "payment", answer)
    assert state.intent == choice


def test_disambiguation_by_speech(env):
    state, _ = run(env, "payment")
    assert state.choices == ["pay_bill", "payment_arrangement"]
    state, actions = run(env, "payment", "I need more time, can I pay in parts")
    assert state.intent == "payment_arrangement"


@pytest.fixture
def cautious_env(understanding, registry):
    """The shipped model with a confirm threshold so high that every recognised request is confirmed."""
    grammar = understanding.grammar
    strict = grammar.model_copy(update={"thresholds": Thresholds(out_of_scope=0.05, confirm=0.999)})
    return DialogEnv(Understanding(strict, understanding.classifier), registry, OPEN_HOURS)


def test_grey_zone_confidence_confirms_then_yes_routes(cautious_env, understanding):
    env, text = cautious_env, "um my connection thing"
    reading = understanding.interpret(Utterance(text))
    state, actions = run(env, text)
    assert state.step == "confirm" and "Is that right?" in said(actions)
    state, actions = run(env, text, "yes")
    assert transfer_of(actions) is not None and state.intent == reading.intent


def test_confirm_no_offers_the_keypad_menu(cautious_env):
    state, actions = run(cautious_env, "um my connection thing", "no")
    assert state.step == "intent" and state.intent is None
    assert "press 1" in said(actions).lower()


def test_confirm_unclear_answer_asks_again(cautious_env):
    state, actions = run(cautious_env, "um my connection thing", "pardon")
    assert state.step == "confirm" and "Is that right?" in said(actions)


def test_confirm_by_keypad(cautious_env):
    state, actions = run(cautious_env, "um my connection thing", ("keys", "1"))
    assert transfer_of(actions) is not None


def test_timing_and_interruptible_prompts_come_from_the_grammar(understanding, registry):
    grammar = understanding.grammar.model_copy(update={
        "timing": Timing(no_input_s=NoInput(intent=9), end_silence_ms=EndSilence(intent=1500)),
        "uninterruptible": ["greeting", "no_match"]})
    env = DialogEnv(Understanding(grammar, understanding.classifier), registry, OPEN_HOURS)
    _, actions = run(env)
    assert (actions[-1].timeout_s, actions[-1].end_silence_ms) == (9, 1500)
    _, actions = run(env, "what's the weather like")
    assert [a.barge_in for a in actions if isinstance(a, Say)] == [False]
    _, actions = run(env, None)
    assert [a.barge_in for a in actions if isinstance(a, Say)] == [True]


def test_dtmf_menu_selects_an_intent(env):
    state, actions = run(env, ("keys", "3"))
    assert state.intent == "internet_down" and transfer_of(actions).queue == "tech_support"


def test_no_input_reprompts_with_new_wording_then_escalates(env):
    state, first = run(env, None)
    _, second = run(env, None, None)
    state3, third = run(env, None, None, None)
    assert said(first) != said(second)
    assert "press 0" in said(second).lower()
    assert transfer_of(third).queue == "general" and state3.transfer_reason == "no_input"


def test_no_match_reprompts_offers_menu_then_escalates(env):
    _, first = run(env, "what's the weather like")
    _, second = run(env, "what's the weather like", "play some music")
    state, third = run(env, "what's the weather like", "play some music", "tell me a joke")
    assert "different way" in said(first)
    assert "For paying a bill, press 1" in said(second)
    assert transfer_of(third) is not None and state.transfer_reason == "no_match"
    assert state.total_retries == 3


def test_unknown_menu_key_is_a_no_match(env):
    state, actions = run(env, ("keys", "9"))
    assert state.retries == 1 and transfer_of(actions) is None


def test_self_service_balance_collects_the_account_number(env):
    state, actions = run(env, "what's my balance")
    assert state.step == "slot" and "8-digit account number" in said(actions)
    assert actions[-1] == Listen("digits", max_digits=8, timeout_s=8, end_silence_ms=1200)
    state, actions = run(env, "what's my balance", "one two three four five six seven eight")
    assert "84 dollars and 20 cents, due on December 3" in said(actions) and state.step == "anything_else"
    assert state.slots == {"account_number": "12345678"}


def test_slot_by_keypad_and_retry_on_wrong_length(env):
    state, actions = run(env, "what's my balance", ("keys", "1234"))
    assert state.step == "slot" and "didn't sound right" in said(actions)
    state, actions = run(env, "what's my balance", ("keys", "1234"), ("keys", "12345678#"))
    assert "84 dollars and 20 cents, due on December 3" in said(actions)


def test_slot_failures_escalate_to_the_intents_queue(env):
    state, actions = run(env, "what's my balance", "um", "uh", "er")
    assert transfer_of(actions).queue == "billing" and state.transfer_reason == "slot_not_understood"


def test_anything_else_no_says_goodbye(env):
    state, actions = run(env, "what's my balance", ("keys", "12345678"), "no thanks")
    assert isinstance(actions[-1], Hangup) and "Goodbye" in said(actions)
    assert state.outcome == "self_service"


def test_anything_else_can_go_straight_to_the_next_request(env):
    state, actions = run(env, "what's my balance", ("keys", "12345678"), "I also want to pay my bill")
    assert transfer_of(actions).queue == "billing" and state.intent == "pay_bill"


def test_anything_else_yes_asks_what_else(env):
    state, actions = run(env, "what's my balance", ("keys", "12345678"), "yes")
    assert state.step == "intent" and "What else" in said(actions)


def test_invoice_copy_is_sent_by_the_demo_backend(understanding):
    billing = DemoBilling.from_file()
    actions_registry = ActionRegistry()
    register_demo_actions(actions_registry, billing)
    env = DialogEnv(understanding, actions_registry, OPEN_HOURS)
    _, actions = run(env, "I need a copy of my invoice", ("keys", "87654321"))
    assert billing.outbox == [{"to": "kim@example.de", "invoice": "2026-11-15"}]
    assert "k***@example.de" in said(actions)


def test_unknown_account_falls_back_to_the_queue(env):
    state, actions = run(env, "what's my balance", ("keys", "99999999"))
    assert "couldn't find" in said(actions)
    assert transfer_of(actions).queue == "billing" and state.transfer_reason == "self_service_failed"


def test_crashing_action_ends_at_a_human(understanding):
    registry = ActionRegistry()

    def broken(request):
        raise TimeoutError("billing backend down")

    registry.register("account_balance", broken)
    registry.register("send_invoice_copy", lambda r: SelfServiceResult("ok"))
    env = DialogEnv(understanding, registry, OPEN_HOURS)
    state, actions = run(env, "what's my balance", ("keys", "12345678"))
    assert transfer_of(actions).queue == "billing"


def test_closed_queue_offers_a_callback_to_the_calling_number(understanding, registry):
    env = DialogEnv(understanding, registry, SUNDAY_NIGHT)
    state, actions = run(env, "I want to pay my bill")
    assert state.step == "callback" and "closed right now" in said(actions)
    assert transfer_of(actions) is None
    state, actions = run(env, "I want to pay my bill", ("keys", "1"))
    assert state.callback_number == "+15550100001" and state.outcome == "callback"
    assert isinstance(actions[-1], Hangup)


def test_closed_queue_callback_to_another_number(understanding, registry):
    env = DialogEnv(understanding, registry, SUNDAY_NIGHT)
    state, _ = run(env, "I want to pay my bill", "five five five one two three four five six seven")
    assert state.callback_number == "5551234567"


def test_closed_queue_callback_number_may_start_with_zero(understanding, registry):
    env = DialogEnv(understanding, registry, SUNDAY_NIGHT)
    state, _ = run(env, "I want to pay my bill", ("keys", "0301234567#"))
    assert state.callback_number == "0301234567" and not state.agent_requested


def test_always_open_queue_ignores_the_clock(understanding, registry):
    env = DialogEnv(understanding, registry, SUNDAY_NIGHT)
    _, actions = run(env, "my internet is down")
    assert transfer_of(actions).queue == "tech_support"


def test_a_late_answer_after_the_decision_repeats_it(env):
    state, _ = run(env, "my internet keeps dropping out")
    _, actions = next_actions(state, Utterance("hello?"), env)
    assert actions == [Transfer("tech_support", ("internet",))]


def test_a_fault_at_night_still_ends_in_a_queue(understanding, registry):
    closed = understanding.grammar.model_copy(update={"default_queue": "billing"})  # billing is closed on Sunday
    env = DialogEnv(Understanding(closed, understanding.classifier), registry, SUNDAY_NIGHT)
    state, _ = run(env)
    _, actions = escalate(state, env, reason="asr_failed")
    assert transfer_of(actions).queue == "billing"


def test_escalate_after_a_fault_apologises_and_transfers(env):
    state, _ = run(env)
    state, actions = escalate(state, env, reason="asr_failed")
    assert "went wrong" in said(actions) and transfer_of(actions).queue == "general"
    assert state.transfer_reason == "asr_failed"


def test_transcript_records_both_sides_with_timestamps(env):
    state, _ = run(env, "my internet keeps dropping out")
    speakers = [t.speaker for t in state.turns]
    assert speakers == ["ivr", "caller", "ivr"]
    assert state.turns[1].text == "my internet keeps dropping out" and state.turns[1].at == OPEN_HOURS


def test_state_round_trips_through_json(env):
    import json

    state, _ = run(env, "payment")
    again = DialogState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


@pytest.mark.parametrize(
    ("amount", "currency", "language", "spoken"),
    [(84.2, "USD", "en", "84 dollars and 20 cents"), (12.0, "EUR", "en", "12 euros"),
     (84.2, "EUR", "de", "84 Euro 20"), (5.0, "EUR", "de", "5 Euro")],
)
def test_demo_amounts_are_spoken_naturally(amount, currency, language, spoken):
    from ivr.dialog.demo_backend import spoken_amount, spoken_date

    assert spoken_amount(amount, currency, language) == spoken
    assert spoken_date("2026-12-03", language) == ("3. Dezember" if language == "de" else "December 3")
