"""nlu.understand: one caller turn read for the question asked (the shipped en-US grammar, trained once)."""
import pytest

from ivr.nlu import understand
from ivr.types import Expectation, Utterance

OPEN = Expectation("intent")
YES_NO = Expectation("yes_no", rank_intents=False)
DIGITS = Expectation("digits", rank_intents=False)
CHOICE = Expectation("choice", choices=("pay_bill", "payment_arrangement"))


@pytest.mark.parametrize(
    ("text", "intent"),
    [("my internet keeps dropping out", "internet_down"), ("I want to pay my bill", "pay_bill"),
     ("what's my balance", "check_balance"), ("I want to cancel my contract", "cancel_contract"),
     ("what's the weather like", None)],
)
def test_open_question_ranks_intents(understanding, text, intent):
    reading = understand(Utterance(text), OPEN, understanding)
    assert reading.intent == intent and reading.out_of_scope == (intent is None)
    assert reading.ranking and reading.ranking[0][1] >= reading.ranking[-1][1]


@pytest.mark.parametrize(
    ("utterance", "expecting", "field", "value"),
    [
        (Utterance("yes that's right"), YES_NO, "yes_no", True),
        (Utterance("no"), YES_NO, "yes_no", False),
        (Utterance(digits="2"), YES_NO, "yes_no", False),
        (Utterance("one two three four five six seven eight"), DIGITS, "digits", "12345678"),
        (Utterance(digits="12345678#"), DIGITS, "digits", "12345678"),
        (Utterance(digits="2"), CHOICE, "choice", "payment_arrangement"),
        (Utterance("I need more time, can I pay in parts"), CHOICE, "choice", "payment_arrangement"),
        (Utterance(digits="3"), OPEN, "menu_intent", "internet_down"),
        (Utterance(digits="0"), YES_NO, "wants_agent", True),
        (Utterance(digits="0301234567"), DIGITS, "wants_agent", False),
        (Utterance("I want an operator"), DIGITS, "wants_agent", True),
        (Utterance("let me talk to a human"), OPEN, "wants_agent", True),
    ],
)
def test_slot_values_for_the_question_asked(understanding, utterance, expecting, field, value):
    assert getattr(understand(utterance, expecting, understanding), field) == value


def test_closed_questions_do_not_run_the_classifier(understanding):
    reading = understand(Utterance("yes"), YES_NO, understanding)
    assert reading.ranking == () and reading.yes_no is True


def test_german_words_are_read_with_the_german_vocabulary(shipped_catalog):
    german = shipped_catalog.get("de-DE")
    reading = understand(Utterance("ja genau"), YES_NO, german)
    assert reading.yes_no is True
    assert understand(Utterance("vier fünf doppel sieben"), DIGITS, german).digits == "4577"


@pytest.mark.parametrize(
    ("locale", "text"),
    [("en-US", "I want to talk to a person"), ("en-US", "can I get someone on the line"),
     ("en-US", "a human being please"), ("en-US", "let me speak with your staff"),
     ("de-DE", "ich will mit einem Menschen reden"), ("de-DE", "kann ich mit jemandem sprechen"),
     ("de-DE", "bitte eine Mitarbeiterin"), ("de-DE", "verbinden Sie mich mit einem Kundenberater"),
     ("de-DE", "ich möchte eine Person sprechen")],
)
def test_asking_for_a_person_is_understood_in_any_words(shipped_catalog, locale, text):
    reading = understand(Utterance(text), YES_NO, shipped_catalog.get(locale))
    assert reading.wants_agent


@pytest.mark.parametrize("text", ["my personal details changed", "the internet keeps dropping"])
def test_other_words_are_no_request_for_a_person(understanding, text):
    assert not understand(Utterance(text), YES_NO, understanding).wants_agent


@pytest.mark.parametrize(
    ("locale", "choices", "text", "choice"),
    [("en-US", ("pay_bill", "internet_down"), "the internet one", "internet_down"),
     ("en-US", ("pay_bill", "internet_down"), "the second", "internet_down"),
     ("en-US", ("pay_bill", "internet_down"), "the first one please", "pay_bill"),
     ("de-DE", ("pay_bill", "internet_down"), "das zweite", "internet_down"),
     ("de-DE", ("pay_bill", "internet_down"), "die Internetstörung", "internet_down")],
)
def test_choices_named_in_other_words(shipped_catalog, locale, choices, text, choice):
    reading = understand(Utterance(text), Expectation("choice", choices=choices), shipped_catalog.get(locale))
    assert reading.choice == choice


@pytest.mark.parametrize(
    ("text", "intent"),
    [("yes, the wifi keeps cutting out", "internet_down"), ("yes please", None), ("no thanks", None)],
)
def test_a_request_after_yes_is_read_as_the_request(understanding, text, intent):
    reading = understand(Utterance(text), Expectation("yes_no", rank_intents=True), understanding)
    assert reading.intent == intent and reading.yes_no is not None


@pytest.mark.parametrize(
    ("text", "intent", "further"),
    [("what's my balance and also my internet keeps dropping", "check_balance", ("internet_down",)),
     ("my internet is down and I also want to pay my bill", "internet_down", ("pay_bill",)),
     ("I want to pay my bill and I want to do it now", "pay_bill", ()),
     ("my internet keeps dropping out", "internet_down", ())],
)
def test_several_needs_in_one_sentence_are_read_in_the_order_said(understanding, text, intent, further):
    reading = understand(Utterance(text), OPEN, understanding)
    assert (reading.intent, reading.further) == (intent, further)
