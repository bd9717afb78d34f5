"""Gather-mode webhooks through the real Flask app, signed as Twilio signs them; TwiML checked by parsing."""
import json
import logging
import threading
import xml.etree.ElementTree as ET

import fakeredis
import pytest
from twilio.request_validator import RequestValidator

from tests.support import AUTH_TOKEN, TwilioHelper, make_app

CALL = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": "+15550100001", "To": "+15550009999",
        "CallStatus": "ringing", "Direction": "inbound"}


def twiml(response) -> ET.Element:
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return ET.fromstring(response.get_data(as_text=True))


def test_incoming_greets_and_gathers_speech_and_keys(twilio):
    root = twiml(twilio.post("/voice/incoming", CALL))
    assert "automated assistant" in root.find("./Say").text
    gather = root.find("./Gather")
    assert gather.get("input") == "speech dtmf" and gather.get("action") == "/voice/gather?turn=0"
    assert gather.get("language") == "en-US" and gather.get("actionOnEmptyResult") == "true"
    assert gather.get("speechModel") == "phone_call" and gather.get("speechTimeout") == "1"  # never "auto" with a model
    assert gather.get("numDigits") == "1"
    assert "pay my bill" in gather.get("hints") and "agent" in gather.get("hints")


def test_locale_from_the_webhook_url_selects_the_german_grammar(twilio):
    root = twiml(twilio.post("/voice/incoming?locale=de-DE", CALL))
    assert "automatischer Assistent" in root.find("./Say").text
    assert root.find("./Gather").get("language") == "de-DE"
    root = twiml(twilio.post("/voice/gather?locale=de-DE", {**CALL, "SpeechResult": "mein Internet geht nicht"}))
    assert root.find("./Enqueue").text == "tech_support"
    assert root.find("./Say").get("language") == "de-DE"


def test_speech_result_routes_to_the_queue_with_hold_and_exit_urls(twilio):
    twilio.post("/voice/incoming", CALL)
    root = twiml(twilio.post("/voice/gather", {**CALL, "SpeechResult": "my internet keeps dropping out",
                                                "Confidence": "0.91"}))
    enqueue = root.find("./Enqueue")
    assert enqueue.text == "tech_support"
    assert enqueue.get("waitUrl").startswith("/voice/wait?queue=tech_support")
    assert enqueue.get("action").startswith("/voice/queue-exit")


def test_gather_with_digits_goes_to_slot_prompt(twilio):
    twilio.post("/voice/incoming", CALL)
    root = twiml(twilio.post("/voice/gather", {**CALL, "Digits": "2"}))
    gather = root.find("./Gather")
    assert gather.get("numDigits") == "8" and "account number" in gather.find("./Say").text
    assert gather.get("speechModel") == "numbers_and_commands" and gather.get("speechTimeout") == "2"
    assert "seven" in gather.get("hints")


def test_yes_no_questions_use_twilios_default_model_with_auto_timeout(twilio):
    twilio.post("/voice/incoming", CALL)
    twilio.post("/voice/gather", {**CALL, "Digits": "2"})
    root = twiml(twilio.post("/voice/gather", {**CALL, "Digits": "12345678"}))
    gather = root.find("./Gather")
    assert "anything else" in " ".join(say.text for say in gather.findall("./Say"))
    assert gather.get("speechModel") is None and gather.get("speechTimeout") == "auto"


def test_prompts_before_a_question_are_inside_gather_for_barge_in(twilio):
    twilio.post("/voice/incoming", CALL)
    root = twiml(twilio.post("/voice/gather", {**CALL, "SpeechResult": "what's the weather like"}))
    assert root.find("./Say") is None
    assert "I can help with bills" in root.find("./Gather/Say").text  # off-topic: what the hotline does handle


@pytest.mark.parametrize(
    "signature",
    [None, "", "bm90IGEgc2lnbmF0dXJl"],
    ids=["missing", "empty", "wrong"],
)
@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/gather", "/voice/status", "/voice/whisper", "/voice/wait"])
def test_unsigned_or_wrongly_signed_webhooks_get_403(client, path, signature, caplog):
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    with caplog.at_level(logging.WARNING):
        response = client.post(path, data=CALL, headers=headers)
    assert response.status_code == 403
    assert "X-Twilio-Signature" in caplog.text


def test_signed_webhook_without_call_sid_is_a_bad_request(twilio, caplog):
    with caplog.at_level(logging.WARNING):
        assert twilio.post("/voice/gather", {"SpeechResult": "hello"}).status_code == 400
    assert "without a CallSid" in caplog.text


def test_signature_for_another_token_or_tampered_params_is_rejected(client):
    other = TwilioHelper(client)
    other.validator.token = b"another-token"
    assert other.post("/voice/incoming", CALL).status_code == 403
    good = TwilioHelper(client)
    signature = good.validator.compute_signature("http://localhost/voice/incoming", CALL)
    tampered = {**CALL, "From": "+15550000000"}
    assert good.post("/voice/incoming", tampered, signature=signature).status_code == 403


def test_a_good_signature_costs_one_hmac_and_a_port_variant_still_validates(client, monkeypatch):
    """Twilio may sign the URL with or without its port: `validate` tries both (two HMACs per request); a request
    signed for the URL as we see it is accepted after the first."""
    from twilio.request_validator import RequestValidator

    helper = TwilioHelper(client)
    computed = []
    compute = RequestValidator.compute_signature
    monkeypatch.setattr(RequestValidator, "compute_signature",
                        lambda self, uri, *rest: (computed.append(uri), compute(self, uri, *rest))[1])
    assert helper.post("/voice/incoming", CALL).status_code == 200
    assert len(computed) == 2  # the helper's own signature, and the service's one check
    with_port = helper.validator.compute_signature("http://localhost:80/voice/incoming", CALL)
    assert helper.post("/voice/incoming", {**CALL, "CallSid": "CA" + "1" * 32}, signature=with_port).status_code == 200
    bad = helper.post("/voice/incoming", {**CALL, "CallSid": "CA" + "2" * 32}, signature=with_port[::-1])
    assert bad.status_code == 403


def test_public_url_behind_a_proxy_is_used_for_signatures(settings, redis_client, clock):

    app = make_app(settings.replace(public_url="https://ivr.example.com"), redis_client, clock)
    proxied = TwilioHelper(app.test_client(), base_url="https://ivr.example.com")
    assert proxied.post("/voice/incoming", CALL).status_code == 200
    assert TwilioHelper(app.test_client()).post("/voice/incoming", CALL).status_code == 403


def test_no_auth_token_configured_rejects_everything(settings, redis_client, clock, caplog):

    app = make_app(settings.replace(twilio_auth_token=""), redis_client, clock)
    with caplog.at_level(logging.ERROR):
        assert TwilioHelper(app.test_client()).post("/voice/incoming", CALL).status_code == 403
    assert "no Twilio auth token" in caplog.text


def test_twilio_retry_of_the_same_request_gets_the_same_answer_without_a_second_turn(twilio, app):
    twilio.post("/voice/incoming", CALL)
    store = app.extensions["ivr.store"]
    params = {**CALL, "SpeechResult": "what's the weather like"}
    first = twilio.post("/voice/gather", params).get_data(as_text=True)
    turns_after_first = store.load_state(CALL["CallSid"])["turn_count"]
    second = twilio.post("/voice/gather", params).get_data(as_text=True)
    assert first == second
    assert store.load_state(CALL["CallSid"])["turn_count"] == turns_after_first == 1


def test_identical_answers_on_later_turns_are_new_turns_not_retries(twilio, app):
    root = twiml(twilio.post("/voice/incoming", CALL))
    for turn in range(4):
        action = root.find("./Gather").get("action")
        assert action == f"/voice/gather?turn={turn}"
        root = twiml(twilio.post(action, CALL))  # silence, four times (the last after the offer of a call back)
    assert root.find("./Hangup") is not None and "call us again" in root.find("./Say").text


def test_unknown_or_expired_call_sid_is_transferred_to_the_default_queue(twilio, caplog):
    with caplog.at_level(logging.WARNING):
        root = twiml(twilio.post("/voice/gather", {**CALL, "CallSid": "CAunknown", "SpeechResult": "hello"}))
    assert root.find("./Enqueue").text == "general"
    assert "unknown or expired" in caplog.text


def test_store_failure_mid_call_sends_the_caller_to_a_human(settings, clock, caplog):
    server = fakeredis.FakeServer()
    app = make_app(settings, fakeredis.FakeRedis(server=server, decode_responses=True), clock)
    helper = TwilioHelper(app.test_client())
    helper.post("/voice/incoming", CALL)
    server.connected = False  # Redis goes away
    with caplog.at_level(logging.WARNING):
        root = twiml(helper.post("/voice/gather", {**CALL, "SpeechResult": "pay my bill"}))
    assert root.find("./Enqueue").text == "general"
    assert "went wrong" in root.find("./Say").text
    # the breaker names the cause once; the webhook says what it did in one line (at 100 calls in flight when
    # Redis hangs, a traceback each cost the workers ~2 ms of CPU apiece)
    assert "Redis unreachable" in caplog.text and "in /voice/gather, answering" in caplog.text
    assert "Traceback" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # the circuit is open now: every webhook answers, one line each
        root = twiml(helper.post("/voice/gather", {**CALL, "SpeechResult": "hello?", "Digits": "1"}))
    assert root.find("./Enqueue").text == "general"
    assert "circuit open" in caplog.text and "Traceback" not in caplog.text


def test_wait_url_announces_position_and_estimated_wait(twilio):
    root = twiml(twilio.post("/voice/wait?queue=billing&locale=en-US",
                             {**CALL, "QueuePosition": "3", "CurrentQueueSize": "5", "AvgQueueTime": "420"}))
    assert "number 3 in line" in root.find("./Say").text and "7 minutes" in root.find("./Say").text
    music = [play.text for play in root.findall("./Play") if "hold-music" in play.text]
    assert music and root.find("./Pause") is None  # music on hold, not silence
    assert any("patience" in say.text for say in root.findall("./Say")[1:])  # a comfort message between the music
    clip = twilio.client.get(music[0])
    assert clip.status_code == 200 and clip.mimetype == "audio/wav" and len(clip.data) > 8000 * 10


def test_wait_estimate_comes_from_the_queues_measured_recent_waits(twilio):
    for waited in ("100", "140", "180"):  # three callers reached an agent after about 2 minutes
        twilio.post("/voice/queue-exit?queue=billing&locale=en-US",
                    {**CALL, "QueueResult": "bridged", "QueueTime": waited, "QueueSid": "QU1"})
    twilio.post("/voice/queue-exit?queue=billing&locale=en-US",  # someone who hung up says nothing of the wait
                {**CALL, "QueueResult": "hangup", "QueueTime": "1500", "QueueSid": "QU1"})
    root = twiml(twilio.post("/voice/wait?queue=billing&locale=en-US",
                             {**CALL, "QueuePosition": "1", "AvgQueueTime": "1800"}))
    assert "about 2 minutes" in root.find("./Say").text


def test_long_wait_offers_a_callback_and_key_1_leaves_the_queue(twilio, app):
    hold = {**CALL, "QueuePosition": "4", "AvgQueueTime": "600"}
    short = twiml(twilio.post("/voice/wait?queue=billing&locale=en-US", {**hold, "QueueTime": "60"}))
    assert short.find("./Gather") is None
    long = twiml(twilio.post("/voice/wait?queue=billing&locale=en-US", {**hold, "QueueTime": "300"}))
    offer = long.find("./Gather")
    assert "press 1" in offer.find("./Say").text and offer.get("numDigits") == "1"
    stay = twiml(twilio.post(offer.get("action"), {**CALL, "Digits": "2"}))
    assert stay.find("./Redirect").text.startswith("/voice/wait?queue=billing")
    leave = twiml(twilio.post(offer.get("action"), {**CALL, "Digits": "1"}))
    assert leave.find("./Leave") is not None and "call you back" in leave.find("./Say").text
    [callback] = app.extensions["ivr.store"].callbacks()
    assert (callback.number, callback.queue, callback.reason) == (CALL["From"], "billing", "long_wait")


def test_whisper_speaks_the_summary_to_the_agent(twilio):
    twilio.post("/voice/incoming", CALL)
    twilio.post("/voice/gather", {**CALL, "SpeechResult": "my internet keeps dropping out"})
    agent_leg = {**CALL, "CallSid": "CA" + "2" * 32, "Direction": "outbound-api"}
    root = twiml(twilio.post(f"/voice/whisper?call={CALL['CallSid']}", agent_leg))
    assert "internet not working" in root.find("./Say").text


def test_queue_exit_error_requeues_to_default(twilio):
    twilio.post("/voice/incoming", CALL)
    root = twiml(twilio.post("/voice/queue-exit?queue=billing", {**CALL, "QueueResult": "error"}))
    assert root.find("./Enqueue").text == "general"
    assert twiml(twilio.post("/voice/queue-exit?queue=billing", {**CALL, "QueueResult": "bridged"})).find("*") is None


def test_status_callback_is_recorded(twilio, app):
    response = twilio.post("/voice/status", {**CALL, "CallStatus": "completed", "CallDuration": "42"})
    assert response.status_code == 204
    event = app.extensions["ivr.store"].events(1)[0]
    assert event.type == "status" and event.data["status"] == "completed"


def test_events_redact_long_numbers(twilio, app):
    twilio.post("/voice/incoming", CALL)
    twilio.post("/voice/gather", {**CALL, "SpeechResult": "my card 4111 1111 1111 1234 was charged twice"})
    texts = [e.data.get("text", "") for e in app.extensions["ivr.store"].events()]
    assert any("***1234" in t for t in texts) and not any("4111" in t for t in texts)


def test_context_is_stored_before_the_transfer_twiml_is_returned(twilio, app):
    twilio.post("/voice/incoming", CALL)
    twilio.post("/voice/gather", {**CALL, "SpeechResult": "my internet keeps dropping out"})
    raw = app.extensions["ivr.store"].redis.get(f"ivr:call:{CALL['CallSid']}:context")
    assert json.loads(raw)["queue"] == "tech_support"
    assert app.extensions["ivr.store"].redis.ttl(f"ivr:call:{CALL['CallSid']}:context") > 0


def test_broken_grammar_is_refused_and_the_previous_one_keeps_serving(tmp_path, settings, redis_client, clock,
                                                                      caplog, grammar_dir):
    import os
    import shutil

    shutil.copytree(grammar_dir / "en-US", tmp_path / "grammars" / "en-US")  # one locale: one classifier to train
    app = make_app(settings.replace(grammar_dir=str(tmp_path / "grammars")), redis_client, clock)
    catalog = app.extensions["ivr.catalog"]
    path = tmp_path / "grammars" / "en-US" / "hotline.yaml"
    path.write_text(path.read_text().replace("max_retries: 2", "max_retries: lots"))
    os.utime(path, (1, 1))  # a different mtime, however fast the test runs
    with caplog.at_level(logging.ERROR):
        errors = catalog.refresh()
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("max_retries"))
    [problem] = errors["en-US"]
    assert problem.startswith(f"{path}:{line}: max_retries: Input should be a valid integer")
    assert "keeping the previous version" in caplog.text
    root = twiml(TwilioHelper(app.test_client()).post("/voice/incoming", CALL))
    assert "Northwind" in root.find("./Say").text
    path.write_text(path.read_text().replace("max_retries: lots", "max_retries: 1").replace(
        "Thanks for calling Northwind", "Thank you for calling Northwind"))
    os.utime(path, (2, 2))
    installed, prerender = threading.Event(), catalog.on_install
    catalog.on_install = lambda grammar: (prerender(grammar), installed.set())
    catalog.watch(interval_s=0.01)  # the watcher picks the fixed file up in the background
    assert installed.wait(timeout=30)
    catalog.stop()
    assert catalog.get("en-US").grammar.max_retries == 1 and "en-US" not in catalog.errors


def test_copies_of_one_request_on_two_workers_at_once_advance_the_dialog_once(settings, redis_client, clock):
    workers = [make_app(settings, redis_client, clock) for _ in range(2)]
    TwilioHelper(workers[0].test_client()).post("/voice/incoming", CALL)
    params = {**CALL, "SpeechResult": "what's the weather like"}
    start, bodies = threading.Barrier(4), []

    def post(app):
        helper = TwilioHelper(app.test_client())
        start.wait()
        bodies.append(helper.post("/voice/gather?turn=0", params).get_data(as_text=True))

    threads = [threading.Thread(target=post, args=(workers[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = workers[0].extensions["ivr.store"]
    assert len(set(bodies)) == 1 and store.load_state(CALL["CallSid"])["turn_count"] == 1
    assert [e.type for e in store.events()].count("turn") == 1


def test_a_copy_with_a_parameter_repeated_is_the_same_request(twilio, app, client):
    from werkzeug.datastructures import MultiDict

    twilio.post("/voice/incoming", CALL)
    params = {**CALL, "SpeechResult": "what's the weather like"}
    first = twilio.post("/voice/gather?turn=0", params).get_data(as_text=True)
    # Twilio's signature counts each distinct value once, so a repeated parameter keeps the signature valid.
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/voice/gather?turn=0", params)
    data = MultiDict([*params.items(), ("SpeechResult", "what's the weather like")])
    again = client.post("/voice/gather?turn=0", data=data, headers={"X-Twilio-Signature": signature})
    assert again.status_code == 200 and again.get_data(as_text=True) == first
    assert app.extensions["ivr.store"].load_state(CALL["CallSid"])["turn_count"] == 1


@pytest.mark.parametrize("value", ["abc", "", "1e99", "-5", "9" * 40])
def test_hold_survives_numbers_twilio_never_sends(twilio, value):
    response = twilio.post("/voice/wait?queue=billing&locale=en-US",
                           {**CALL, "QueuePosition": value, "AvgQueueTime": value, "QueueTime": value})
    assert "in line" in twiml(response).find("./Say").text


def test_only_keypad_characters_count_as_keys_and_speech_is_capped(twilio, app):
    twilio.post("/voice/incoming", CALL)
    root = twiml(twilio.post("/voice/gather", {**CALL, "Digits": "call-me-maybe", "Confidence": "x" * 1000,
                                               "SpeechResult": "la " * 15_000}))  # 45 kB: under the 64 kB body limit
    assert root.find("./Gather") is not None  # a reprompt: the letters were no key and the noise no request
    caller_turn = app.extensions["ivr.store"].load_state(CALL["CallSid"])["turns"][1]["text"]
    assert caller_turn.startswith("la la") and len(caller_turn) <= 500


def test_control_characters_never_reach_the_twiml(settings, redis_client, clock):

    from ivr.speech.recognizer import ScriptedRecognizer

    app = make_app(settings.replace(speech_mode="stream"), redis_client, clock,
                   IVR_RECOGNIZER_FACTORY=lambda locale: ScriptedRecognizer([]))
    root = twiml(TwilioHelper(app.test_client()).post("/voice/incoming", {**CALL, "From": "+1555\x00\x07<x>"}))
    caller = next(p for p in root.findall("./Connect/Stream/Parameter") if p.get("name") == "caller")
    assert caller.get("value") == "+1555<x>"


def test_faults_are_answered_as_fits_where_the_call_is(settings, clock):
    server = fakeredis.FakeServer()
    app = make_app(settings, fakeredis.FakeRedis(server=server, decode_responses=True), clock)
    helper = TwilioHelper(app.test_client())
    helper.post("/voice/incoming", CALL)
    server.connected = False  # Redis goes away while the caller is queued
    bridged = twiml(helper.post("/voice/queue-exit?queue=billing", {**CALL, "QueueResult": "bridged"}))
    assert list(bridged) == []  # with an agent: nothing more to say, certainly no second <Enqueue>
    failed = twiml(helper.post("/voice/queue-exit?queue=billing", {**CALL, "QueueResult": "system-error"}))
    assert failed.find("./Enqueue").text == "general"
    holding = twiml(helper.post("/voice/wait-callback?queue=billing&locale=en-US", {**CALL, "Digits": "1"}))
    assert holding.find("./Redirect").text.startswith("/voice/wait?queue=billing") and holding.find("./Enqueue") is None


def test_a_retry_after_a_fault_gets_the_same_fault_answer_at_once(settings, redis_client, clock):
    from ivr.store.calls import PENDING

    app = make_app(settings, redis_client, clock)
    app.extensions["ivr.conversations"].catalog = None  # the dialog cannot run: every turn faults
    helper = TwilioHelper(app.test_client())
    params = {**CALL, "SpeechResult": "my internet is down"}
    first = helper.post("/voice/gather", params).get_data(as_text=True)
    replies = [redis_client.get(k) for k in redis_client.keys(f"ivr:call:{CALL['CallSid']}:reply:*")]
    assert replies == [first] and PENDING not in replies  # stored: a retry is answered at once, not after a wait
    assert helper.post("/voice/gather", params).get_data(as_text=True) == first
