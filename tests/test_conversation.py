"""Whole calls as data: every tests/conversations/*.yaml script, run through the Twilio simulator
(the same scripts `ivr call --script` runs)."""
from datetime import datetime
from pathlib import Path

import pytest

from ivr.testing.simulator import ConversationScript, FlaskTransport, TwilioSimulator, staff
from ivr.testing.telephony import FakeTelephony
from tests.conftest import API_TOKEN, AUTH_TOKEN, make_app

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
