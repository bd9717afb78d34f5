"""The agent side through the real webhooks: a queued caller rings the longest-idle fitting agent through the REST
seam (an in-memory fake), the agent hears the whisper and is bridged into the caller's conference; no answer rings
the next agent while the caller keeps the queue; a caller who hangs up frees the agent being rung."""
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from ivr.store.agents import Agent
from tests.support import TwilioHelper, make_app

MONDAY_10AM = datetime.fromisoformat("2026-11-30T10:00:00-05:00").timestamp()
CALL = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "0" * 32, "From": "+15550100001", "To": "+15550009999",
        "CallStatus": "in-progress", "Direction": "inbound"}


@pytest.fixture
def desk_app(settings, redis_client, clock, phone):
    clock.now = MONDAY_10AM
    return make_app(settings, redis_client, clock, IVR_TELEPHONY=phone)


@pytest.fixture
def twilio(desk_app):
    return TwilioHelper(desk_app.test_client())


def staff(app, clock, *agents: Agent) -> None:
    desk = app.extensions["ivr.desk"]
    for agent in agents:
        desk.agents.save_agent(agent)
        desk.set_available(agent.id)
        clock.now += 1  # the first one has been idle longest


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    return ET.fromstring(response.get_data(as_text=True))


def queue_caller(twilio, text="I was charged twice this month") -> str:
    twilio.post("/voice/incoming", CALL)
    root = twiml(twilio.post("/voice/gather?turn=0", {**CALL, "SpeechResult": text, "Confidence": "0.9"}))
    queue = root.find("./Enqueue").text
    twilio.post(f"/voice/wait?queue={queue}&locale=en-US", {**CALL, "QueueSid": "QU1", "QueuePosition": "1"})
    return queue


def events(app, call=CALL["CallSid"]) -> list[str]:
    return [e.type for e in reversed(app.extensions["ivr.store"].events(200)) if e.call == call]


ALICE = Agent("alice", "Alice", skills=("billing",), languages=("en",))
BOB = Agent("bob", "Bob", skills=("billing", "tech_support"), languages=("en", "de"))
CAROL = Agent("carol", "Carol", skills=("tech_support",), languages=("en",))


def test_a_queued_caller_rings_the_longest_idle_fitting_agent_who_hears_the_whisper_and_is_bridged(
        desk_app, twilio, clock, phone):
    staff(desk_app, clock, CAROL, ALICE, BOB)  # carol idles longest but has no billing skill
    assert queue_caller(twilio) == "billing"
    [ring] = phone.rings
    assert ring["to"] == "client:alice" and ring["timeout_s"] == 20
    twilio.post("/voice/wait?queue=billing&locale=en-US", {**CALL, "QueueSid": "QU1"})  # Twilio repeats the waitUrl
    assert len(phone.rings) == 1
    join = twiml(twilio.post(ring["url"], {"CallSid": ring["sid"], "CallStatus": "in-progress"}))
    assert "charge" in join.find("./Say").text.lower()  # the whisper: what the caller already said
    assert not phone.redirects  # the caller stays queued until the whisper is over
    bridge = twiml(twilio.post(join.find("./Redirect").text, {"CallSid": ring["sid"]}))
    room = bridge.find("./Dial/Conference")
    assert room.text == CALL["CallSid"] and room.get("endConferenceOnExit") == "false"
    [moved] = phone.redirects
    assert (moved["queue_sid"], moved["call_sid"]) == ("QU1", CALL["CallSid"])
    caller_side = twiml(twilio.post(moved["url"], CALL)).find("./Dial/Conference")
    assert caller_side.text == CALL["CallSid"] and caller_side.get("endConferenceOnExit") == "true"
    desk = desk_app.extensions["ivr.desk"]
    assert desk.agents.presence("alice")["state"] == "busy"
    twilio.post(ring["status_callback"], {"CallSid": ring["sid"], "CallStatus": "completed"})
    assert desk.agents.presence("alice")["state"] == "wrap_up"
    assert events(desk_app)[-5:] == ["queued", "agent_ringing", "queue_exit", "connected", "agent_left"]
    [left] = phone.moved  # the agent hung up first: the caller is not left in a silent conference
    goodbye = twiml(twilio.post(left["url"], CALL))
    assert "Goodbye" in goodbye.find("./Say").text and goodbye.find("./Hangup") is not None


def test_when_the_caller_hangs_up_first_nothing_is_redirected(desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE)
    queue_caller(twilio)
    ring = connect(twilio, phone, "alice")
    twilio.post("/voice/status", {**CALL, "CallStatus": "completed"})
    twilio.post(ring["status_callback"], {"CallSid": ring["sid"], "CallStatus": "completed"})
    assert phone.moved == [] and desk_app.extensions["ivr.desk"].agents.presence("alice")["state"] == "wrap_up"


def test_no_answer_marks_the_agent_missed_and_rings_the_next_while_the_caller_keeps_the_queue(
        desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE, BOB)
    queue_caller(twilio)
    first = phone.rings[0]
    twilio.post(first["status_callback"], {"CallSid": first["sid"], "CallStatus": "no-answer"})
    desk = desk_app.extensions["ivr.desk"]
    assert desk.agents.presence("alice")["state"] == "missed"  # not ready until they say so
    assert [r["to"] for r in phone.rings] == ["client:alice", "client:bob"]
    assert not phone.redirects and desk.agents.waiting(CALL["CallSid"]) is not None  # still in the queue
    late = twiml(twilio.post(first["url"], {"CallSid": first["sid"]}))  # alice's leg answered after all: too late
    assert "no longer waiting" in late.find("./Say").text and late.find("./Hangup") is not None
    assert events(desk_app).count("missed") == 1


def test_an_agents_voicemail_is_no_answer(desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE, BOB)
    queue_caller(twilio)
    first = phone.rings[0]
    hung = twiml(twilio.post(first["url"], {"CallSid": first["sid"], "AnsweredBy": "machine_start"}))
    assert hung.find("./Hangup") is not None and hung.find("./Say") is None  # the voicemail hears nothing
    twilio.post(first["status_callback"], {"CallSid": first["sid"], "CallStatus": "completed"})
    assert [r["to"] for r in phone.rings] == ["client:alice", "client:bob"]
    assert desk_app.extensions["ivr.desk"].agents.presence("alice")["state"] == "missed"


def test_a_caller_who_hangs_up_while_the_agent_rings_frees_the_agent(desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE)
    queue_caller(twilio)
    twilio.post("/voice/status", {**CALL, "CallStatus": "completed", "CallDuration": "40"})
    desk = desk_app.extensions["ivr.desk"]
    assert phone.hung_up == [phone.rings[0]["sid"]]  # the ringing stops
    assert desk.agents.presence("alice")["state"] == "available" and desk.agents.idle_agents() == ["alice"]
    answered = twiml(twilio.post(phone.rings[0]["url"], {"CallSid": phone.rings[0]["sid"]}))
    assert "no longer waiting" in answered.find("./Say").text and answered.find("./Hangup") is not None
    assert "abandoned" in events(desk_app)


def test_an_agent_who_becomes_available_gets_the_caller_waiting_longest_who_fits(desk_app, twilio, clock, phone):
    queue_caller(twilio)  # nobody is available yet
    assert phone.rings == []
    staff(desk_app, clock, CAROL)  # no billing skill
    assert phone.rings == []
    staff(desk_app, clock, BOB)
    assert [r["to"] for r in phone.rings] == ["client:bob"]


def test_a_german_caller_is_not_given_to_an_agent_without_german(desk_app, twilio, clock, phone):
    staff(desk_app, clock, Agent("ann", "Ann", skills=("tech_support",), languages=("en",)))
    twilio.post("/voice/incoming?locale=de-DE", CALL)
    root = twiml(twilio.post("/voice/gather?turn=0&locale=de-DE", {**CALL, "SpeechResult": "mein Internet geht nicht"}))
    twilio.post(f"/voice/wait?queue={root.find('./Enqueue').text}&locale=de-DE", {**CALL, "QueueSid": "QU2"})
    assert phone.rings == []
    staff(desk_app, clock, BOB)
    assert [r["to"] for r in phone.rings] == ["client:bob"]
    assert "locale=de-DE" in phone.rings[0]["url"]  # the whisper is in the caller's language


def test_a_failed_ring_frees_the_pairing_and_the_sweep_tries_again(desk_app, twilio, clock, phone, monkeypatch):
    staff(desk_app, clock, ALICE)
    monkeypatch.setattr(phone, "ring", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("Twilio said 503")))
    queue_caller(twilio)
    desk = desk_app.extensions["ivr.desk"]
    assert desk.agents.presence("alice")["state"] == "available" and desk.agents.reserved_agent(CALL["CallSid"]) is None
    monkeypatch.undo()
    assert desk.sweep() == 1 and phone.rings[0]["to"] == "client:alice"


def test_the_agent_leg_webhooks_are_signed(desk_app):
    client = desk_app.test_client()
    for path in ("/voice/agent-join?call=CA1&agent=a", "/voice/agent-bridge?call=CA1&agent=a",
                 "/voice/caller-join?call=CA1", "/voice/agent-status?call=CA1&agent=a", "/voice/agent-left",
                 "/voice/requeue?queue=billing", "/voice/customer-join?call=CA1", "/voice/callback-status?call=CA1"):
        assert client.post(path, data={"CallSid": "CAx"}).status_code == 403


SUNDAY_NIGHT = datetime.fromisoformat("2026-11-29T23:00:00-05:00").timestamp()


def ask_for_a_callback(twilio, clock) -> None:
    """Billing is closed on Sunday night: the caller leaves the calling number for a call back."""
    clock.now = SUNDAY_NIGHT
    twilio.post("/voice/incoming", CALL)
    twilio.post("/voice/gather?turn=0", {**CALL, "SpeechResult": "I want to pay my bill"})
    root = twiml(twilio.post("/voice/gather?turn=1", {**CALL, "Digits": "1"}))
    assert root.find("./Hangup") is not None
    twilio.post("/voice/status", {**CALL, "CallStatus": "completed"})


def test_a_stored_callback_is_dialled_when_a_fitting_agent_becomes_free(desk_app, twilio, clock, phone):
    ask_for_a_callback(twilio, clock)
    clock.now = MONDAY_10AM
    staff(desk_app, clock, ALICE)
    [ring] = phone.rings
    assert ring["to"] == "client:alice" and "callback=1" in ring["url"]  # the agent's leg is rung first
    join = twiml(twilio.post(ring["url"], {"CallSid": ring["sid"]}))
    assert "paying a bill" in join.find("./Say").text  # the agent hears the context before the customer is dialled
    bridge = twiml(twilio.post(join.find("./Redirect").text, {"CallSid": ring["sid"]}))
    assert bridge.find("./Dial/Conference").text == CALL["CallSid"]
    customer = phone.rings[1]
    assert customer["to"] == CALL["From"]
    answered = twiml(twilio.post(customer["url"], {"CallSid": "CAcustomer"}))
    assert "returning your call" in answered.find("./Say").text
    assert answered.find("./Dial/Conference").text == CALL["CallSid"]
    twilio.post(customer["status_callback"], {"CallSid": "CAcustomer", "CallStatus": "completed"})
    assert desk_app.extensions["ivr.store"].callbacks() == []
    assert "callback_succeeded" in events(desk_app)


def test_an_unanswered_callback_is_dialled_again_later_then_given_up(desk_app, twilio, clock, phone):
    ask_for_a_callback(twilio, clock)
    clock.now = MONDAY_10AM
    desk = desk_app.extensions["ivr.desk"]
    staff(desk_app, clock, ALICE)
    for attempt in (1, 2, 3):
        ring = phone.rings[-1]
        assert ring["to"] == "client:alice"
        join = twiml(twilio.post(ring["url"], {"CallSid": ring["sid"]}))
        twilio.post(join.find("./Redirect").text, {"CallSid": ring["sid"]})
        customer = phone.rings[-1]
        twilio.post(customer["status_callback"], {"CallSid": f"CAc{attempt}", "CallStatus": "no-answer"})
        assert phone.hung_up[-1] == ring["sid"]  # the agent is not left alone in the conference
        twilio.post(ring["status_callback"], {"CallSid": ring["sid"], "CallStatus": "completed"})
        assert desk.agents.presence("alice")["state"] == "wrap_up"
        rings = len(phone.rings)
        desk.wrap_up("alice", CALL["CallSid"], disposition="no_answer_needed", note="", right_intent=None)
        if attempt < 3:
            assert len(phone.rings) == rings  # not again at once: after callback_retry_s
            clock.now += 901
            desk.set_available("alice")
    assert desk_app.extensions["ivr.store"].callbacks() == []
    assert events(desk_app).count("callback_dialled") == 3 and "callback_failed" in events(desk_app)


def test_past_its_overflow_time_a_caller_may_be_taken_by_the_fallback_queues_agents(
        desk_app, twilio, clock, phone, monkeypatch):
    catalog = desk_app.extensions["ivr.catalog"]
    understanding = catalog.get("en-US")
    grammar = understanding.grammar
    billing = grammar.queues["billing"].model_copy(update={"overflow": "general", "overflow_after_s": 120})
    changed = grammar.model_copy(update={"queues": {**grammar.queues, "billing": billing}})
    monkeypatch.setitem(catalog._live, "en-US", understanding.with_grammar(changed))  # the same trained classifier
    staff(desk_app, clock, Agent("gina", "Gina", skills=("general",)))
    queue_caller(twilio)
    desk = desk_app.extensions["ivr.desk"]
    assert phone.rings == [] and desk.sweep() == 0
    clock.now += 121
    assert desk.sweep() == 1 and phone.rings[0]["to"] == "client:gina"
    assert "overflow" in events(desk_app)


def connect(twilio, phone, agent_id: str) -> dict:
    """The agent's leg rings, is answered, hears the whisper and joins the caller's conference."""
    ring = phone.rung(agent_id)[-1]
    join = twiml(twilio.post(ring["url"], {"CallSid": ring["sid"]}))
    twiml(twilio.post(join.find("./Redirect").text, {"CallSid": ring["sid"]}))
    return ring


def test_a_warm_transfer_holds_the_caller_rings_the_colleague_with_the_note_then_hands_over(
        desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE)
    queue_caller(twilio)
    first = connect(twilio, phone, "alice")
    staff(desk_app, clock, BOB)
    desk, call = desk_app.extensions["ivr.desk"], CALL["CallSid"]
    assert desk.transfer_to_agent("alice", call, to_agent="bob", locale="en-US", note="Refund promised, check it")
    assert phone.holds[-1] == {"conference": call, "call_sid": call, "on": True}
    second = phone.rung("bob")[-1]
    assert "transfer=1" in second["url"]
    join = twiml(twilio.post(second["url"], {"CallSid": second["sid"]}))
    assert "charge" in join.find("./Say").text.lower()
    room = twiml(twilio.post(join.find("./Redirect").text, {"CallSid": second["sid"]}))
    assert room.find("./Dial/Conference").text == call
    assert desk.screen_pop("bob", call)["notes"][0]["text"] == "Refund promised, check it"
    assert desk.complete_transfer("alice", call) == "bob"
    assert phone.holds[-1]["on"] is False and phone.hung_up[-1] == first["sid"]  # alice leaves, the caller stays
    twilio.post(first["status_callback"], {"CallSid": first["sid"], "CallStatus": "completed"})
    assert desk.agents.presence("alice")["state"] == "wrap_up" and desk.agents.presence("bob")["state"] == "busy"
    twilio.post(second["status_callback"], {"CallSid": second["sid"], "CallStatus": "completed"})
    assert desk.agents.presence("bob")["state"] == "wrap_up"
    assert "transferred" in events(desk_app)


def test_a_warm_transfer_nobody_answers_or_that_is_cancelled_leaves_the_caller_with_the_first_agent(
        desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE)
    queue_caller(twilio)
    connect(twilio, phone, "alice")
    staff(desk_app, clock, BOB)
    desk, call = desk_app.extensions["ivr.desk"], CALL["CallSid"]
    desk.transfer_to_agent("alice", call, to_agent="bob", locale="en-US", note="")
    ring = phone.rung("bob")[-1]
    twilio.post(ring["status_callback"], {"CallSid": ring["sid"], "CallStatus": "no-answer"})
    assert phone.holds[-1]["on"] is False and desk.agents.presence("alice")["state"] == "busy"
    assert desk.agents.presence("bob")["state"] == "missed"
    desk.set_available("bob")
    desk.transfer_to_agent("alice", call, to_agent="bob", locale="en-US", note="")
    connect(twilio, phone, "bob")
    desk.cancel_transfer("alice", call)
    assert phone.hung_up[-1] == phone.rung("bob")[-1]["sid"] and desk.agents.presence("bob")["state"] == "available"
    assert desk.agents.reserved_call("alice") == call
    assert not desk.transfer_to_agent("alice", call, to_agent="carol", locale="en-US", note="")  # not on duty


def test_a_cold_transfer_sends_the_caller_back_to_a_queue_where_the_next_agent_gets_the_note(
        desk_app, twilio, clock, phone):
    staff(desk_app, clock, ALICE)
    queue_caller(twilio)
    first = connect(twilio, phone, "alice")
    desk, call = desk_app.extensions["ivr.desk"], CALL["CallSid"]
    desk.transfer_to_queue("alice", call, queue="tech_support", locale="en-US", note="Router is blinking red")
    [moved] = phone.moved
    assert moved["call_sid"] == call and phone.hung_up[-1] == first["sid"]
    assert desk.agents.presence("alice")["state"] == "wrap_up"
    requeued = twiml(twilio.post(moved["url"], CALL))
    assert requeued.find("./Enqueue").text == "tech_support"
    staff(desk_app, clock, CAROL)
    twilio.post("/voice/wait?queue=tech_support&locale=en-US", {**CALL, "QueueSid": "QU9"})
    assert phone.rung("carol")
    assert desk.screen_pop("carol", call)["notes"][0]["text"] == "Router is blinking red"
    with pytest.raises(PermissionError):
        desk.transfer_to_queue("alice", call, queue="billing", locale="en-US", note="")


def test_the_screen_pop_says_whether_the_account_number_was_verified(desk_app, twilio, clock, phone):
    twilio.post("/voice/incoming", CALL)
    twilio.post("/voice/gather?turn=0", {**CALL, "SpeechResult": "what's my balance"})
    twilio.post("/voice/gather?turn=1", {**CALL, "Digits": "12345678"})  # the demo backend finds the account
    root = twiml(twilio.post("/voice/gather?turn=2", {**CALL, "SpeechResult": "yes, let me talk to a person"}))
    assert root.find("./Enqueue") is not None
    context = desk_app.extensions["ivr.conversations"].context(CALL["CallSid"])
    assert context.slots["account_number"] == "12345678" and list(context.verified_slots) == ["account_number"]


def test_redis_failing_as_the_caller_is_moved_still_puts_the_agent_in_the_conference(settings, clock, phone):
    import fakeredis

    server = fakeredis.FakeServer()
    clock.now = MONDAY_10AM
    app = make_app(settings, fakeredis.FakeRedis(server=server, decode_responses=True), clock, IVR_TELEPHONY=phone)
    helper = TwilioHelper(app.test_client())
    staff(app, clock, ALICE)
    queue_caller(helper)
    ring = phone.rings[0]
    join = twiml(helper.post(ring["url"], {"CallSid": ring["sid"]}))
    moving = phone.redirect_queued

    def redirect_then_redis_fails(*args, **kwargs):
        moving(*args, **kwargs)
        server.connected = False  # the store goes away the moment the caller leaves the queue

    phone.redirect_queued = redirect_then_redis_fails
    bridge = twiml(helper.post(join.find("./Redirect").text, {"CallSid": ring["sid"]}))
    assert bridge.find("./Dial/Conference").text == CALL["CallSid"]  # the caller is not left alone in it
