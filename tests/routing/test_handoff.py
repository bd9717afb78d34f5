"""What the agent is told: mood, summary in the hotline's language, and the wait estimate."""
import pytest

from ivr.grammar import load_grammar
from ivr.routing.handoff import estimate_mood, summarize, wait_minutes
from tests.support import GRAMMARS

EN = load_grammar(GRAMMARS / "en-US" / "hotline.yaml")
DE = load_grammar(GRAMMARS / "de-DE" / "hotline.yaml")


@pytest.mark.parametrize(
    ("said", "mood"),
    [(["my internet is down"], "neutral"), (["this is ridiculous"], "frustrated"),
     (["das ist schon wieder kaputt"], "frustrated"), (["[no input]", "[no input]", "[no input]"], "neutral")],
)
def test_mood_comes_from_what_the_caller_says_not_from_retries(said, mood):
    assert estimate_mood(said) == mood


def test_summary_names_topic_confidence_account_and_history():
    text = summarize(EN, intent="check_balance", score=0.874, slots={"account_number": "12345678"},
                     agent_requested=True, retries=2, mood="frustrated")
    assert text == ("Caller is calling about account balance (confidence 87 percent), account ending 5 6 7 8, "
                    "asked for an agent, 2 retries, sounds frustrated.")


def test_summary_in_german_and_for_an_unrecognised_request():
    assert summarize(DE, intent=None, score=0.0, slots={}, agent_requested=False, retries=1,
                     mood="neutral") == "Anliegen: nicht erkannt, 1 Wiederholung."


@pytest.mark.parametrize(("position", "avg", "minutes"), [(1, 0, 4), (3, 0, 12), (3, 420, 7), (1, 10, 1)])
def test_wait_minutes(position, avg, minutes):
    assert wait_minutes(position, avg) == minutes
