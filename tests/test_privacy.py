"""PII redaction for logs and analytics."""
import pytest

from ivr.privacy import redact


@pytest.mark.parametrize(
    ("text", "redacted"),
    [("my card 4111 1111 1111 1234 was charged", "my card ***1234 was charged"),
     ("call me on +49 170 1234567", "call me on ***4567"),
     ("account 12345678", "account ***5678"),
     ("press 12345", "press 12345"),  # short numbers stay
     ("no numbers here", "no numbers here")],
)
def test_long_digit_runs_keep_only_the_last_four(text, redacted):
    assert redact(text) == redacted
