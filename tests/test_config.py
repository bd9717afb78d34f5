"""Settings from the environment: typed, strict booleans, every IVR_* read in one place."""
import pytest

from ivr.config import Settings, parse_bool


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("On", True), ("false", False),
                                            ("0", False), ("no", False), ("", False)])
def test_booleans_are_strict(raw, value):
    assert parse_bool(raw) is value


def test_an_unreadable_boolean_is_refused():
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


def test_settings_from_the_environment():
    settings = Settings.from_env({"TWILIO_AUTH_TOKEN": "t", "REDIS_URL": "redis://r", "IVR_MAX_STREAMS": "3",
                                  "IVR_NLU_ENCODER": "false", "IVR_SELFSERVICE": "demo, crm", "IVR_LOCALE": "de-DE"})
    assert (settings.twilio_auth_token, settings.redis_url, settings.max_streams) == ("t", "redis://r", 3)
    assert settings.nlu_encoder is False and settings.locale == "de-DE"
    assert settings.selfservice_backends == ["demo", "crm"]


def test_the_ivr_name_wins_over_the_conventional_one():
    settings = Settings.from_env({"TWILIO_AUTH_TOKEN": "plain", "IVR_TWILIO_AUTH_TOKEN": "ivr"})
    assert settings.twilio_auth_token == "ivr"


def test_defaults_register_no_backend_and_read_no_environment():
    settings = Settings.from_env({})
    assert settings == Settings() and settings.selfservice_backends == []
