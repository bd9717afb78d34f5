"""Log lines carry the call they are about; secrets are masked."""
import io
import json
import logging

from ivr import logs
from tests.telephony.test_webhooks import CALL


def test_a_webhook_log_line_names_its_call_and_locale_as_json(twilio):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.CallFields())
    handler.setFormatter(logs.JsonLines())
    logging.getLogger().addHandler(handler)
    try:
        twilio.post("/voice/gather?locale=de-DE", {**CALL, "CallSid": "CAunknown", "SpeechResult": "hallo"})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    warning = next(line for line in lines if "unknown or expired" in line["message"])
    assert (warning["call_sid"], warning["locale"], warning["level"]) == ("CAunknown", "de-DE", "WARNING")
    assert warning["logger"] == "ivr.telephony.webhooks" and warning["time"]


def test_text_lines_carry_the_call_too():
    record = logging.LogRecord("ivr.x", logging.INFO, __file__, 1, "hello", None, None)
    token = logs.call_sid.set("CA42")
    try:
        logs.CallFields().filter(record)
    finally:
        logs.call_sid.reset(token)
    assert "[CA42 " in logging.Formatter(logs.TEXT).format(record) and "] hello" in logging.Formatter(logs.TEXT).format(
        record)


def test_passwords_in_urls_are_masked():
    assert logs.mask_url("redis://:s3cret@redis.internal:6379/0") == "redis://:***@redis.internal:6379/0"
    assert logs.mask_url("redis://user:pw@h/1") == "redis://user:***@h/1"
    assert logs.mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_request_without_a_call_logs_a_dash_not_invalid(client):
    from ivr import logs

    client.get("/healthz")  # the request's context stays set on this thread afterwards
    assert (logs.call_sid.get(), logs.locale.get()) == ("-", "-")
    client.get("/healthz?locale=de-DE&call=not-a-callsid")
    assert (logs.call_sid.get(), logs.locale.get()) == ("invalid", "de-DE")
