"""PII redaction for logs and analytics."""
import pytest

from ivr.privacy import redact


@pytest.mark.parametrize(
    ("text", "redacted"),
    [("my card 4111 1111 1111 1234 was charged", "my card ***1234 was charged"),
     ("call me on +49 170 1234567", "call me on ***4567"),
     ("account 12345678", "account ***5678"),
     ("press 12345", "press 12345"),  # short numbers stay
     ("no numbers here", "no numbers here"),
     ("one two three four five six seven eight", "[digits]"),
     ("call me on five five five, two one two, three four five six please", "call me on [digits] please"),
     ("vier fünf sechs sieben acht neun null", "[digits]"),
     ("I have one or two questions", "I have one or two questions"),
     ("mail me at alex.example+1@mail.example.com", "mail me at [email]")],
)
def test_long_digit_runs_keep_only_the_last_four(text, redacted):
    assert redact(text) == redacted


def test_a_spoken_account_number_stays_in_its_slot_not_in_the_transcript():
    from ivr import dialog
    from ivr.dialog import DialogState
    from tests.dialog.test_policy import GRAMMAR, heard, said
    from tests.support import OPEN_HOURS

    state, _ = dialog.start(DialogState(call_sid="CA1"), GRAMMAR, OPEN_HOURS)
    state, _ = dialog.decide(state, heard("check_balance"), GRAMMAR, OPEN_HOURS)
    number = said("one two three four five six seven eight", digits="12345678")
    state, _ = dialog.decide(state, number, GRAMMAR, OPEN_HOURS)
    assert state.slots == {"account_number": "12345678"}
    assert state.turns[-1].text == "[digits]" and "one two" not in " ".join(t.text for t in state.turns)
