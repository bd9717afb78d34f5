"""Settings from the environment: typed, strict booleans, every IVR_* read in one place."""
import pytest

from ivr.config import Settings, SettingsError, parse_bool


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("On", True), ("false", False),
                                            ("0", False), ("no", False), ("", False)])
def test_booleans_are_strict(raw, value):
    assert parse_bool(raw) is value


def test_an_unreadable_boolean_is_refused():
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


@pytest.mark.parametrize(
    ("env", "message"),
    [({"IVR_SPEECH_MODE": "streem"}, "IVR_SPEECH_MODE='streem': use one of auto, gather, stream"),
     ({"IVR_GATHER_PROMPTS": "sya"}, "IVR_GATHER_PROMPTS='sya': use one of play, say"),
     ({"IVR_MAX_STREAMS": "-3"}, "IVR_MAX_STREAMS='-3': must be at least 0"),
     ({"IVR_CALL_TTL_S": "0"}, "IVR_CALL_TTL_S='0': must be at least 1"),
     ({"IVR_MAX_STREAMS": "lots"}, "IVR_MAX_STREAMS='lots': Input should be a valid integer"),
     ({"IVR_NLU_ENCODER": "maybe"}, "IVR_NLU_ENCODER='maybe': not a boolean"),
     ({"IVR_LOG_LEVEL": "loud"}, "IVR_LOG_LEVEL='loud': use one of DEBUG, INFO, WARNING, ERROR"),
     ({"IVR_LOCALE": "french"}, "IVR_LOCALE='french': use a locale like en-US or de-DE")],
)
def test_settings_that_would_be_ignored_are_refused_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(message)


def test_a_variable_that_names_no_setting_is_warned_about_with_a_guess(caplog):
    Settings.from_env({"IVR_SPEECH_MODEE": "gather", "IVR_TEST_REDIS_URL": "redis://x", "PATH": "/bin"})
    assert [r.getMessage() for r in caplog.records] == [
        "IVR_SPEECH_MODEE is not a setting and is ignored (did you mean IVR_SPEECH_MODE?)"]


def test_a_changed_copy_is_validated_too():
    settings = Settings(speech_mode="gather")
    assert settings.replace(public_url="https://ivr.example.com").speech_mode == "gather"
    with pytest.raises(SettingsError, match="IVR_SPEECH_MODE='streem'"):
        settings.replace(speech_mode="streem")


def test_a_hotline_without_a_grammar_is_said_at_once(capsys, caplog, settings, redis_client, clock):
    from ivr.cli import main
    from tests.support import make_app

    assert main(["call", "--locale", "fr-FR"]) == 2
    err = capsys.readouterr().err
    assert "no grammar for fr-FR under" in err and "(have: de-DE, en-US)" in err
    app = make_app(settings.replace(locale="fr-FR", nlu_encoder=False), redis_client, clock)
    assert "IVR_LOCALE=fr-FR has no grammar" in caplog.text
    assert app.extensions["ivr.catalog"].get("fr-FR").grammar.locale == "de-DE"  # a webhook naming ?locale=fr-FR
    assert "no grammar for locale 'fr-FR': serving de-DE instead" in caplog.text


def test_the_cli_reports_a_bad_setting_without_a_traceback(monkeypatch, capsys):
    from ivr.cli import main

    monkeypatch.setenv("IVR_SPEECH_MODE", "streem")
    assert main(["grammar", "check"]) == 2
    assert "IVR_SPEECH_MODE='streem'" in capsys.readouterr().err


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["call", "--script", "/nonexistent/script.yaml"], "cannot read the script /nonexistent/script.yaml"),
     (["call", "--url", "http://127.0.0.1:9"], "no service answers at http://127.0.0.1:9"),
     (["call", "--agents", "alice"], "agent 'alice': use id:skill")],
)
def test_the_cli_says_what_is_wrong_in_one_line(argv, message, capsys):
    from ivr.cli import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_grammar_test_needs_its_columns(tmp_path, capsys):
    from ivr.cli import main

    labelled = tmp_path / "l.csv"
    labelled.write_text("utterance,label\nhello,greeting\n")
    assert main(["grammar", "test", str(labelled)]) == 2
    assert "needs the columns text,intent (has utterance,label)" in capsys.readouterr().err


def test_ctrl_d_at_the_caller_prompt_ends_the_call_quietly(monkeypatch, capsys):
    import io

    from ivr.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # EOF at once
    monkeypatch.setenv("IVR_NLU_ENCODER", "false")
    assert main(["call"]) == 0
    assert "[caller hung up]" in capsys.readouterr().out


def test_ivr_config_prints_the_effective_settings_with_secrets_hidden(capsys, monkeypatch):
    from ivr.cli import main

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "supersecret-token")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
    monkeypatch.setenv("IVR_MAX_STREAMS", "3")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "twilio_auth_token = (set, hidden)" in out and "max_streams = 3" in out
    assert "supersecret" not in out and "hunter2" not in out and "127.0.0.1:6379" in out
    monkeypatch.setenv("IVR_MAX_STREAMS", "-3")
    assert main(["config"]) == 2 and "IVR_MAX_STREAMS" in capsys.readouterr().err
