"""The missed-utterance inbox: real calls that failed put what the caller said there, redacted and grouped."""
import xml.etree.ElementTree as ET

from ivr import cli
from ivr.store.inbox import MissedUtterances
from tests.test_desk import MONDAY_10AM


def turns(helper, sid: str, *said: str) -> ET.Element:
    call = {"CallSid": sid, "From": "+15550100001"}
    helper.post("/voice/incoming", call)
    root = None
    for index, text in enumerate(said):
        root = ET.fromstring(helper.post(f"/voice/gather?turn={index}", {**call, "SpeechResult": text}).data)
    return root


def test_failed_requests_are_grouped_redacted_and_counted(app, twilio, redis_client, clock, capsys, monkeypatch):
    clock.now = MONDAY_10AM
    turns(twilio, "CAin1", "what's the weather like in Berlin")
    turns(twilio, "CAin2", "What's the weather like in Berlin?")
    turns(twilio, "CAin3", "blorp 4111 1111 1111 1111 zzz")
    inbox = app.extensions["ivr.conversations"].inbox
    entries = {e["text"]: e for e in inbox.entries("en-US", now=clock.now)}
    weather = entries["what's the weather like in berlin"]
    assert weather["count"] == 2 and set(weather["reasons"]) <= {"out_of_scope", "not_understood"}
    assert not any("4111" in text for text in entries)  # card-like digits never reach the inbox
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: the test's client is used
    assert cli.cmd_inbox(type("Args", (), {"locale": "en-US", "top": 5})(), client=redis_client) == 0
    assert "   2  what's the weather like in berlin" in capsys.readouterr().out


def test_a_denied_guess_and_an_agents_misroute_report_land_in_the_inbox(app, twilio, clock):
    clock.now = MONDAY_10AM
    helper = twilio
    inbox = app.extensions["ivr.conversations"].inbox
    app.extensions["ivr.conversations"].begin("CAden", caller="+1555", locale="en-US")
    state = app.extensions["ivr.store"].load_state("CAden")
    state.update(step="confirm", intent="cancel_contract")
    state["turns"].append({"speaker": "caller", "text": "I want out of this", "at": clock.now})
    app.extensions["ivr.store"].save_state("CAden", state)
    helper.post("/voice/gather?turn=1", {"CallSid": "CAden", "SpeechResult": "no"})
    desk = app.extensions["ivr.desk"]
    turns(helper, "CAmis", "I was charged twice this month")
    desk.report_misroute("CAmis", "pay_bill")
    entries = {e["text"]: e for e in inbox.entries("en-US", now=clock.now)}
    assert entries["i want out of this"]["reasons"] == {"denied": 1}
    assert entries["i was charged twice this month"]["intents"] == {"pay_bill": 1}
    assert inbox.entries("en-US", now=clock.now + 31 * 24 * 3600) == []  # expired after IVR_INBOX_TTL_S


def test_an_entry_can_be_dismissed(redis_client):
    inbox = MissedUtterances(redis_client, ttl_s=60)
    inbox.add("de-DE", "wie wird das Wetter", reason="out_of_scope", now=1.0)
    [entry] = inbox.entries("de-DE", now=2.0)
    assert inbox.dismiss("de-DE", entry["id"]) and inbox.entries("de-DE", now=2.0) == []
