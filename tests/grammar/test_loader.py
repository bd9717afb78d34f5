from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import ROOT
from ivr.grammar import GrammarError, grammar_files, load_grammar, parse_grammar

SHIPPED = ROOT / "grammars" / "en-US" / "hotline.yaml"


def broken(old: str, new: str) -> str:
    text = SHIPPED.read_text()
    assert old in text
    return text.replace(old, new, 1)


def problems_of(text: str) -> list[str]:
    with pytest.raises(GrammarError) as info:
        parse_grammar(text, "hotline.yaml")
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_grammars_are_valid_and_realistic():
    files = grammar_files(ROOT / "grammars")
    assert {"en-US", "de-DE"} <= set(files)
    for path in files.values():
        grammar = load_grammar(path)
        assert len(grammar.intents) >= 12
        assert all(len(intent.phrases) >= 15 for intent in grammar.intents.values())


def test_yaml_syntax_error_names_file_and_line():
    text = broken("  tech_support: {label: technical support, hours: always}", "  tech_support: {label: [oops")
    [problem] = problems_of(text)
    assert problem.startswith("hotline.yaml:")
    assert "YAML syntax" in problem


def test_unknown_field_names_line_and_field():
    text = broken("    dtmf: \"3\"\n", "    dtfm: \"3\"\n")
    [problem] = problems_of(text)
    assert problem.startswith(f"hotline.yaml:{line_of(text, 'dtfm')}: intents.internet_down.dtfm:")


def test_missing_route_target_is_reported():
    text = broken("route: {queue: orders, skills: [logistics]}", "route: {skills: [logistics]}")
    [problem] = problems_of(text)
    assert f":{line_of(text, 'route: {skills: [logistics]}')}: intents.order_status.route" in problem
    assert "queue or an action" in problem


def test_unknown_queue_reference_is_reported_with_line():
    text = broken("route: {queue: sales, skills: [sales]}", "route: {queue: salez, skills: [sales]}")
    [problem] = problems_of(text)
    where = f"hotline.yaml:{line_of(text, 'salez')}"
    assert problem == f"{where}: intents.upgrade_contract.route.queue: unknown queue 'salez'"


def test_bad_hours_and_timezone_are_reported():
    text = broken('hours: "Mon-Sat 08:00-20:00", timezone: America/New_York, holidays: US-NY}',
                  'hours: "Mon-Sat 8-20", timezone: Mars/Base, holidays: US-XX}')
    problems = problems_of(text)
    assert any("queues.orders.hours" in p and "Mon-Fri 08:00-20:00" in p for p in problems)
    assert any("queues.orders.timezone" in p and "unknown time zone" in p for p in problems)
    assert any("queues.orders.holidays" in p and "unknown holiday region 'US-XX'" in p for p in problems)


def test_special_closures_must_be_dates():
    text = broken("timezone: America/New_York, holidays: US-NY}",
                  "timezone: America/New_York, holidays: US-NY, closed_on: {Christmas: closed}}")
    assert any("queues.billing.closed_on" in p for p in problems_of(text))


def test_too_few_phrases_and_duplicate_dtmf():
    text = broken('    dtmf: "4"\n', '    dtmf: "3"\n')
    assert any("dtmf key 3" in p for p in problems_of(text))


def test_grammar_check_command(tmp_path: Path, capsys, monkeypatch):
    from ivr.speech import tts

    monkeypatch.setenv("IVR_SELFSERVICE", "demo")  # the backend the shipped self-service intents name
    monkeypatch.setenv("IVR_NLU_ENCODER", "false")  # the check trains the classifier: n-grams are enough here
    monkeypatch.setattr(tts, "installed_renderer", tts.Unavailable)  # the dry run has its own test below
    assert main(["grammar", "check", str(SHIPPED)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(broken("max_retries: 2", "max_retries: many"))
    assert main(["grammar", "check", str(bad)]) == 1
    assert f"{bad}:{line_of(bad.read_text(), 'max_retries')}: max_retries:" in capsys.readouterr().err


def test_grammar_prepare_trains_every_grammar_into_the_cache_for_an_image(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("IVR_SELFSERVICE", "demo")
    monkeypatch.setenv("IVR_NLU_ENCODER", "false")
    monkeypatch.setenv("IVR_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["grammar", "prepare"]) == 0
    assert "prepared de-DE, en-US" in capsys.readouterr().out
    assert {p.name.split("-")[1] + "-" + p.name.split("-")[2] for p in (tmp_path / "cache").glob("classifier-*.pkl")
            } == {"de-DE", "en-US"}
    monkeypatch.delenv("IVR_SELFSERVICE")  # the shipped grammars name backends that are now missing
    assert main(["grammar", "prepare"]) == 1 and "account_balance" in capsys.readouterr().err


def test_grammar_check_refuses_an_action_the_service_does_not_have(capsys, monkeypatch):
    monkeypatch.delenv("IVR_SELFSERVICE", raising=False)
    assert main(["grammar", "check", str(SHIPPED)]) == 1
    line = line_of(SHIPPED.read_text(), "action: account_balance")
    assert f"{SHIPPED}:{line}: intents.check_balance.route.action: unknown self-service action 'account_balance'" \
        in capsys.readouterr().err


def test_a_mistyped_placeholder_is_refused_with_what_the_prompt_knows():
    text = broken("you're calling about {label}.", "you're calling about {lable}.")
    [problem] = problems_of(text)
    line = line_of(text, "{lable}")
    assert problem.startswith(f"hotline.yaml:{line}: prompts.confirm: unknown placeholder {{lable}}")
    assert "{label}" in problem


def test_a_placeholder_in_a_prompt_that_gets_none_is_refused():
    text = broken('callback_offer: "To get a call back,', 'callback_offer: "To get a call back {hours},')
    assert "prompts.callback_offer: unknown placeholder {hours}" in problems_of(text)[0]


def test_an_intent_defined_twice_is_refused_not_silently_replaced():
    text = broken("  slow_internet:\n", "  pay_bill:\n")
    [problem] = problems_of(text)
    first, second = (i for i, line in enumerate(text.splitlines(), 1) if line == "  pay_bill:")
    assert problem == f"hotline.yaml:{second}: intents.pay_bill: defined twice (first on line {first})"


def test_the_same_phrase_in_two_intents_is_refused_naming_both():
    text = broken("      - my router has a red light\n", "      - make a payment\n")
    problems = problems_of(text)
    assert any("'make a payment' is also a phrase of intent 'pay_bill'" in p and "intents.internet_down.phrases" in p
               for p in problems)


def test_grammar_check_renders_every_prompt_as_a_dry_run(tmp_path: Path, capsys, monkeypatch):
    """A prompt the speech engine cannot render is found by the check, named with its file and line."""
    from ivr.speech import tts

    monkeypatch.setenv("IVR_SELFSERVICE", "demo")
    monkeypatch.setenv("IVR_NLU_ENCODER", "false")
    rendered: list[str] = []

    def render(self, text, *, voice, rate):
        if "Xylophone" in text:
            raise RuntimeError("espeak-ng produced no audio")
        rendered.append(text)
        return tts.ToneRenderer().render(text[:2], voice=voice, rate=rate)

    monkeypatch.setattr(tts.Pyttsx3Renderer, "render", render)
    monkeypatch.setattr(tts.shutil, "which", lambda name: "/usr/bin/" + name)
    assert main(["grammar", "check", str(SHIPPED)]) == 0
    assert "prompts rendered" in capsys.readouterr().out
    assert any("closed today for a public holiday" in text for text in rendered)  # dynamic prompts, with samples
    assert any("You are number 3 in line" in text for text in rendered)
    bad = tmp_path / "hotline.yaml"
    bad.write_text(broken("    Thanks for calling Northwind Telecom.", "    Thanks for calling Xylophone Telecom."))
    assert main(["grammar", "check", str(bad)]) == 1
    where = f"{bad}:{line_of(bad.read_text(), 'greeting:')}: prompts.greeting: cannot be rendered"
    assert where in capsys.readouterr().err


def test_the_out_of_scope_threshold_is_a_share_or_auto():
    assert any("thresholds.out_of_scope" in p for p in problems_of(broken("out_of_scope: 0.30", "out_of_scope: 2")))
    assert parse_grammar(broken("out_of_scope: 0.30", "out_of_scope: auto"), "x.yaml").thresholds.out_of_scope == "auto"
