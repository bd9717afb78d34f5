"""Whole calls as data: every tests/conversations/*.yaml script, run through the Twilio simulator
(the same scripts `ivr call --script` runs)."""
from datetime import datetime
from pathlib import Path

import pytest

from ivr.testing.simulator import ConversationScript, FlaskTransport, TwilioSimulator, staff
from ivr.testing.telephony import FakeTelephony
from tests.support import API_TOKEN, AUTH_TOKEN, make_app

SCRIPTS = sorted((Path(__file__).parent / "conversations").glob("*.yaml"))


def test_there_are_enough_scripted_calls():
    assert len(SCRIPTS) >= 15


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_conversation(path, simulator, clock, settings, redis_client):
    script = ConversationScript.load(path)
    clock.now = datetime.fromisoformat(script.at).timestamp()
    if script.agents:  # the agent side is played too: the service rings them through a fake REST client
        phone = FakeTelephony()
        app = make_app(settings, redis_client, clock, IVR_TELEPHONY=phone)
        staff(app, list(script.agents))
        simulator = TwilioSimulator(FlaskTransport(app.test_client()), auth_token=AUTH_TOKEN, api_token=API_TOKEN,
                                    telephony=phone, agents=list(script.agents))
    record = script.run(simulator)
    assert script.failures(record) == [], "\n".join(record.heard)


def test_ivr_call_plays_the_agents_side_too(capsys, monkeypatch):
    from ivr.cli import main

    monkeypatch.setattr("builtins.input", lambda prompt="": "I was charged twice this month")
    script = Path(__file__).parent / "conversations" / "34_charged_twice_reaches_a_free_billing_agent.yaml"
    assert main(["call", "--script", str(script), "--agents", "bob:billing:no-answer,alice:billing"]) == 0
    out = capsys.readouterr().out
    assert "[client:bob does not answer]" in out and "[alice answers and hears] Incoming caller." in out
    assert "agent: alice]" in out


def test_a_script_says_why_it_cannot_check_the_context_or_the_words(settings, redis_client, clock):
    """`ivr call --script` against a service as the README starts it: no API token to read the context, prompts
    played as audio. The failures say so, instead of "intent: expected 'pay_bill', got None"."""
    app = make_app(settings.replace(gather_prompts="play", public_url="http://localhost"), redis_client, clock)
    app.extensions["ivr.speech"].prompts._pool.submit(lambda: None).result()  # the grammar's prompts are rendered
    script = ConversationScript.load(Path(__file__).parent / "conversations" / "02_pay_bill.yaml")
    record = script.run(TwilioSimulator(FlaskTransport(app.test_client()), auth_token=AUTH_TOKEN))  # no API token
    problems = script.failures(record)
    assert any("context not read" in p and "IVR_API_TOKEN" in p for p in problems), problems
    assert not any(p.startswith("context intent") for p in problems)
    assert all("IVR_GATHER_PROMPTS=say" in p for p in problems if p.startswith("never heard")), problems
