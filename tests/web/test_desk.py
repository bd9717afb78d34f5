"""The agent desk's endpoints: sign-in (CSRF, rate limit), access control, presence, the screen pop, the SSE feed,
wrap-up and the browser phone's access token."""
import json
import re

import jwt
import pytest
from werkzeug.security import generate_password_hash

from ivr.store.agents import Agent
from tests.support import make_app
from tests.test_desk import CALL, MONDAY_10AM, TwilioHelper, queue_caller

PASSWORD = "correct horse battery"
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")  # cheap for tests; scrypt in use


@pytest.fixture
def app(settings, redis_client, clock, phone):
    clock.now = MONDAY_10AM
    app = make_app(settings.replace(secret_key="s" * 32, twilio_account_sid="AC" + "1" * 32,
                           twilio_api_key="SK" + "2" * 32, twilio_api_secret="x" * 32,
                           twilio_twiml_app_sid="AP" + "3" * 32), redis_client, clock, IVR_TELEPHONY=phone)
    store = app.extensions["ivr.desk"].agents
    for agent_id, skills in (("alice", ("billing",)), ("bob", ("tech_support",))):
        store.save_agent(Agent(agent_id, agent_id.title(), skills=skills,
                               password_hash=PASSWORD_HASH))
    return app


def csrf_token(client, path="/agent/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))[1]


def sign_in(app, agent="alice"):
    client = app.test_client()
    form = {"agent": agent, "password": PASSWORD, "csrf_token": csrf_token(client)}
    response = client.post("/agent/login", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith("/agent/")
    return client, csrf_token(client, "/agent/")


def test_signed_out_pages_redirect_and_endpoints_answer_401(app):
    client = app.test_client()
    page = client.get("/agent/", headers={"Accept": "text/html"})
    assert page.status_code == 302 and "/agent/login" in page.headers["Location"]
    for path in ("/agent/queues", "/agent/calls/CA1", "/agent/token", "/agent/events"):
        assert client.get(path, headers={"Accept": "application/json"}).status_code == 401


def test_a_wrong_password_is_refused_and_sign_in_is_rate_limited(app):
    client = app.test_client()
    token = csrf_token(client)
    codes = [client.post("/agent/login", data={"agent": "alice", "password": "guess", "csrf_token": token}).status_code
             for _ in range(6)]
    assert codes == [401] * 5 + [429]


def test_only_the_sign_ins_pay_for_the_rate_limiter(settings, redis_client, clock, monkeypatch):
    """The limiter's app-wide check costs ~150 µs per request; every webhook would pay it for no limit at all."""
    from flask_limiter import Limiter

    from tests.support import TwilioHelper, make_app

    checks = []
    check = Limiter._check_request_limit
    monkeypatch.setattr(Limiter, "_check_request_limit", lambda self, *a, **k: (checks.append(1), check(self, *a, **k)))
    app = make_app(settings, redis_client, clock)
    TwilioHelper(app.test_client()).post("/voice/incoming", {"CallSid": "CAl", "From": "+15550100001"})
    assert checks == []
    client = app.test_client()
    client.post("/agent/login", data={"agent": "alice", "password": "guess", "csrf_token": csrf_token(client)})
    assert checks == [1]


def test_forms_without_the_csrf_token_are_refused(app):
    client, _ = sign_in(app)
    assert client.post("/agent/state", data={"state": "available"}).status_code == 400
    assert app.extensions["ivr.desk"].agents.presence("alice")["state"] == "offline"
    fresh = app.test_client()
    assert fresh.post("/agent/login", data={"agent": "alice", "password": PASSWORD}).status_code == 400


def test_going_available_rings_the_agent_for_a_waiting_caller_and_the_pop_is_theirs_only(app, phone):
    queue_caller(TwilioHelper(app.test_client()))
    client, token = sign_in(app)
    state = client.post("/agent/state", data={"state": "available"}, headers={"X-CSRFToken": token}).get_json()
    assert state["state"] == "ringing" and phone.rings[0]["to"] == "client:alice"
    pop = client.get(f"/agent/calls/{CALL['CallSid']}").get_json()
    context = pop["context"]
    assert context["intent"] == "billing_question" and "charged twice" in json.dumps(context["transcript"])
    assert context["summary"].startswith("Caller is calling about") and pop["queued_at"] == MONDAY_10AM
    other, _ = sign_in(app, "bob")
    assert other.get(f"/agent/calls/{CALL['CallSid']}").status_code == 403  # never offered to bob


def test_the_account_number_is_masked_but_the_last_three_digits(app):
    desk = app.extensions["ivr.desk"]
    store = app.extensions["ivr.store"]
    from ivr.types import CallContext

    store.save_context(CallContext("CA9", "+1555", "en-US", "check_balance", "balance", 0.9, (),
                                   {"account_number": "12345678"}, (), 0, False, "neutral", "billing", (), "intent",
                                   None, "s", 0.0))
    desk.agents.assign("alice", "CA9", ttl_s=60)
    assert desk.screen_pop("alice", "CA9")["context"]["slots"]["account_number"] == "•••••678"


def test_the_event_feed_pushes_the_ring_to_the_agents_desk(app):
    client, _ = sign_in(app)
    response = client.get("/agent/events")
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry:")
    app.extensions["ivr.desk"].agents.publish("alice", {"type": "ringing", "call": "CA1"})
    app.extensions["ivr.desk"].agents.publish("bob", {"type": "ringing", "call": "CA2"})
    assert json.loads(next(chunks).decode().removeprefix("data: ")) == {"type": "ringing", "call": "CA1"}
    response.close()


def test_wrap_up_records_the_outcome_the_note_and_a_misroute(app):
    queue_caller(TwilioHelper(app.test_client()))
    client, token = sign_in(app)
    client.post("/agent/state", data={"state": "available"}, headers={"X-CSRFToken": token})
    call, headers = CALL["CallSid"], {"X-CSRFToken": token}
    assert client.post(f"/agent/calls/{call}/wrap-up", data={"disposition": "nope"}, headers=headers).status_code == 400
    done = client.post(f"/agent/calls/{call}/wrap-up", headers=headers, data={
        "disposition": "resolved", "note": "Refund promised", "right_intent": "pay_bill"})
    assert done.status_code == 200
    event = next(e for e in app.extensions["ivr.store"].events(50) if e.type == "wrap_up")
    assert event.data["disposition"] == "resolved" and event.data["right_intent"] == "pay_bill"
    assert app.extensions["ivr.store"].notes(call)[0]["text"] == "Refund promised"
    other, other_token = sign_in(app, "bob")
    assert other.post(f"/agent/calls/{call}/wrap-up", data={"disposition": "resolved"},
                      headers={"X-CSRFToken": other_token}).status_code == 403


def test_the_browser_phone_token_carries_a_voice_grant_for_the_agents_identity(app, settings, redis_client, clock):
    client, _ = sign_in(app)
    token = client.get("/agent/token").get_json()["token"]
    claims = jwt.decode(token, "x" * 32, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["iss"] == "SK" + "2" * 32 and claims["sub"] == "AC" + "1" * 32
    assert claims["grants"]["identity"] == "alice"
    assert claims["grants"]["voice"] == {"incoming": {"allow": True},
                                         "outgoing": {"application_sid": "AP" + "3" * 32}}
    bare = make_app(settings.replace(secret_key="s" * 32), redis_client, clock)
    bare.extensions["ivr.desk"].agents.save_agent(Agent("alice", "A", password_hash=PASSWORD_HASH))
    unconfigured, _ = sign_in(bare)
    answer = unconfigured.get("/agent/token")
    assert answer.status_code == 503 and "TWILIO_API_KEY" in answer.get_json()["error"]
    assert "browser phone is not configured" in unconfigured.get("/agent/").get_data(as_text=True)
