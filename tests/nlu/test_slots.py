import pytest

from ivr.grammar import vocabulary
from ivr.nlu.slots import parse_digits, parse_yes_no

GERMAN = vocabulary("de-DE")


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        ("four five six seven", "4567"),
        ("one two three four five six seven eight", "12345678"),
        ("oh double seven three", "0773"),
        ("triple nine one", "9991"),
        ("twenty three forty five", "2345"),
        ("it's 1234 5678", "12345678"),
        ("my number is one two, uh, three", "123"),
        ("zero zero one", "001"),
        ("vier fünf doppel sieben null", "45770"),
        ("zwo drei", "23"),
        ("zwölf vierunddreißig sechsundfünfzig achtundsiebzig", "12345678"),
        ("null drei null, einundzwanzig dreiundvierzig", "0302143"),
        ("twelve thirty four fifty six", "123456"),
        ("nineteen hundred", "1900"),
        ("hello", ""),
    ],
)
def test_parse_digits(spoken, digits):
    words = GERMAN if spoken.startswith(("vier", "zwo", "zwölf", "null")) else vocabulary("en-US")
    assert parse_digits(spoken, words) == digits


@pytest.mark.parametrize(
    ("said", "keys", "answer"),
    [
        ("yes", "", True),
        ("yeah that's right", "", True),
        ("sure", "", True),
        ("correct", "", True),
        ("uh huh", "", True),
        ("no", "", False),
        ("nope", "", False),
        ("that's not right", "", False),
        ("no that's wrong", "", False),
        ("ja genau", "", True),
        ("stimmt nicht", "", False),
        ("nein", "", False),
        ("", "1", True),
        ("", "2", False),
        ("", "5", None),
        ("I don't know", "", None),
        ("what", "", None),
    ],
)
def test_parse_yes_no(said, keys, answer):
    german = said in ("ja genau", "stimmt nicht", "nein")
    assert parse_yes_no(said, keys, GERMAN if german else vocabulary("en-US")) is answer
