"""Signed hostile webhooks (the fuzzer of `ivr bench fuzz`) never cause a server error or invalid TwiML."""
from ivr.testing.fuzz import fuzz
from tests.support import AUTH_TOKEN


def test_signed_hostile_webhooks_get_twiml_or_a_4xx_never_a_server_error(client, app):
    app.extensions["ivr.conversations"].begin("CA" + "f" * 32, caller="+15550100001", locale="en-US")

    def post(path, params, headers):
        response = client.post(path, data=params, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    report = fuzz(post, AUTH_TOKEN, requests=80)
    assert report.failures == [] and report.requests == 80, report.failures[:5]


def test_a_request_over_the_size_limit_is_refused_with_413_and_a_log_line(client, caplog):
    response = client.post("/voice/gather", data={"CallSid": "CA1", "SpeechResult": "x" * (1024 * 1024)})
    assert response.status_code == 413
    assert "413 /voice/gather" in caplog.text


def test_a_callsid_that_is_not_twilios_is_refused_and_never_logged_whole(twilio, caplog):
    hostile = "CA" + "ʕ•ᴥ•ʔ\n" * 400
    response = twilio.post("/voice/gather", {"CallSid": hostile, "SpeechResult": "hi"})
    assert response.status_code == 400
    assert "is not a Twilio CallSid" in caplog.text and max(len(line) for line in caplog.text.splitlines()) < 400
