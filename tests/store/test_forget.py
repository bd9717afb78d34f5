"""`ivr privacy forget +1…`: everything stored about one calling number goes, nobody else's; an audit entry without
the number says what was deleted."""
import json
import xml.etree.ElementTree as ET

from ivr import cli
from tests.test_desk import MONDAY_10AM


def call(helper, sid: str, number: str) -> None:
    params = {"CallSid": sid, "From": number}
    helper.post("/voice/incoming", params)
    root = ET.fromstring(helper.post("/voice/gather?turn=0", {**params, "SpeechResult": "I was charged twice"}).data)
    helper.post(root.find("./Enqueue").get("waitUrl"), {**params, "QueueSid": "QU1"})


def test_forgetting_a_caller_deletes_their_calls_and_keeps_everyone_elses(app, twilio, redis_client, clock, capsys,
                                                                          monkeypatch):
    clock.now = MONDAY_10AM
    call(twilio, "CAforget1", "+15550100001")
    call(twilio, "CAforget2", "+15550100001")
    call(twilio, "CAkeep", "+15550100002")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: the test's client is used
    assert cli.cmd_privacy_forget(type("Args", (), {"number": "+15550100001"})(), client=redis_client) == 0
    report = capsys.readouterr().out
    assert "deleted for +15550100001: 2 calls" in report and "events" in report
    store = app.extensions["ivr.store"]
    assert store.load_context("CAforget1") is None and store.load_state("CAforget2") is None
    assert store.load_context("CAkeep") is not None
    assert {e.call for e in store.events(500)} == {"CAkeep"}
    assert [w.call for w in app.extensions["ivr.desk"].agents.all_waiting()] == ["CAkeep"]
    assert "+15550100001" not in json.dumps([redis_client.get(k) for k in redis_client.scan_iter("ivr:*")
                                             if redis_client.type(k) == "string"])
    [audit] = [json.loads(raw) for raw in redis_client.lrange("ivr:audit", 0, -1)]
    assert audit["what"] == "forgot a caller" and "+15550100001" not in json.dumps(audit)
    assert "2 calls" in audit["detail"] and audit["who"].startswith("cli:")


def test_a_number_that_is_not_one_is_refused(capsys, redis_client):
    assert cli.main(["privacy", "forget", "robert'); DROP"]) == 2
    assert "not a phone number" in capsys.readouterr().err
