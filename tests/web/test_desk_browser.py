"""The agent desk in real headless Chromium (Playwright, Debian's chromium): sign in, go available, a simulated
call rings the desk and the screen pop shows what the caller said before the agent accepts, then wrap-up. The
browser phone is replaced by a stand-in device (the page's adapter looks for window.IVR_FAKE_DEVICE); the Twilio
side is driven with signed webhooks exactly as Twilio would send them."""
import pytest
import requests
from twilio.request_validator import RequestValidator
from werkzeug.security import generate_password_hash

from ivr.store.agents import Agent
from ivr.testing.stream_simulator import LiveServer
from ivr.testing.telephony import FakeTelephony
from tests.support import AUTH_TOKEN, make_app
from tests.test_desk import CALL, MONDAY_10AM
from tests.web.conftest import in_a_browser

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = in_a_browser
PASSWORD = "correct horse battery"
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")  # cheap for tests; scrypt in use
FAKE_DEVICE = """
window.IVR_FAKE_DEVICE = {
  handlers: {}, accepted: false,
  on(event, handler) { this.handlers[event] = handler; },
  ring() { this.handlers.incoming({ accept: () => { window.IVR_FAKE_DEVICE.accepted = true; } }); },
};
"""


class Twilio:
    """Signed webhooks to the live server, as Twilio sends them."""

    def __init__(self, base_url: str):
        self.base_url, self.validator = base_url, RequestValidator(AUTH_TOKEN)

    def post(self, path: str, params: dict) -> str:
        url = path if path.startswith("http") else self.base_url + path
        signature = self.validator.compute_signature(url, params)
        response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
        assert response.status_code in (200, 204), response.text
        return response.text


def desk_page(browser, url: str, agent: str):
    """A signed-in desk in its own browser context (its own session cookie), gone available."""
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.add_init_script(FAKE_DEVICE)
    page.goto(url + "/agent/login")
    page.fill("input[name=agent]", agent)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/agent/")
    page.click("#available")
    playwright.expect(page.locator("#state")).to_have_text("available")
    return page


def test_a_billing_call_pops_on_the_agents_desk_before_they_accept_then_a_warm_transfer_with_a_note(
        settings, redis_client, clock, browser, screenshots):
    clock.now = MONDAY_10AM
    phone = FakeTelephony()
    app = make_app(settings.replace(secret_key="k" * 32), redis_client, clock, IVR_TELEPHONY=phone)
    for agent_id, name in (("alice", "Alice Example"), ("bob", "Bob Example")):
        app.extensions["ivr.desk"].agents.save_agent(Agent(agent_id, name, skills=("billing",),
                                                           password_hash=PASSWORD_HASH))
    with LiveServer(app) as live:
        twilio = Twilio(live.url)
        page = desk_page(browser, live.url, "alice")

        twilio.post("/voice/incoming", CALL)
        twilio.post("/voice/gather?turn=0", {**CALL, "SpeechResult": "I was charged twice this month",
                                             "Confidence": "0.9"})
        twilio.post("/voice/wait?queue=billing&locale=en-US", {**CALL, "QueueSid": "QU1", "QueuePosition": "1"})
        [ring] = phone.rings
        page.evaluate("window.IVR_FAKE_DEVICE.ring()")  # Twilio delivers the leg to the browser phone

        pop = page.locator("#call")
        playwright.expect(pop).to_be_visible()
        playwright.expect(page.locator("#intent")).to_contain_text("a question about a charge on your bill")
        playwright.expect(page.locator("#transcript")).to_contain_text("I was charged twice this month")
        playwright.expect(page.locator("#summary")).to_contain_text("Caller is calling about")
        playwright.expect(page.locator("#state")).to_have_text("ringing")
        screenshots(page, "agent-desk-screen-pop.png")

        page.click("#accept")
        assert page.evaluate("window.IVR_FAKE_DEVICE.accepted")
        join = twilio.post(ring["url"], {"CallSid": ring["sid"], "CallStatus": "in-progress"})
        assert "charge" in join.lower()
        twilio.post(ring["url"].replace("/voice/agent-join", "/voice/agent-bridge"), {"CallSid": ring["sid"]})
        playwright.expect(page.locator("#call-status")).to_have_text("connected")
        playwright.expect(page.locator("#state")).to_have_text("busy")

        # A warm transfer to Bob, with a note: the caller holds, Bob's desk rings and pops with Alice's note.
        bob = desk_page(browser, live.url, "bob")
        page.select_option("select[name=target]", "agent:bob")
        page.fill("#transfer textarea[name=note]", "Double charge confirmed, refund promised")
        page.click("#transfer button[type=submit]")
        playwright.expect(page.locator("#transfer-status")).to_contain_text("ringing bob")
        second = phone.rung("bob")[-1]
        bob.evaluate("window.IVR_FAKE_DEVICE.ring()")
        playwright.expect(bob.locator("#notes")).to_contain_text("alice: Double charge confirmed, refund promised")
        playwright.expect(bob.locator("#summary")).to_contain_text("a question about a charge on your bill")
        screenshots(bob, "agent-desk-warm-transfer.png")
        bob.click("#accept")
        join = twilio.post(second["url"], {"CallSid": second["sid"]})
        twilio.post(second["url"].replace("/voice/agent-join", "/voice/agent-bridge"), {"CallSid": second["sid"]})
        playwright.expect(bob.locator("#call-status")).to_have_text("connected")
        playwright.expect(page.locator("#transfer-status")).to_contain_text("bob is on the line")
        page.click("#transfer-complete")
        playwright.expect(page.locator("#wrapup")).to_be_visible()
        assert "charge" in join.lower()
        twilio.post(ring["status_callback"], {"CallSid": ring["sid"], "CallStatus": "completed"})

        page.select_option("#wrapup select[name=disposition]", "escalated")
        page.fill("#wrapup textarea[name=note]", "Handed to Bob for the refund")
        page.click("#wrapup button[type=submit]")
        playwright.expect(page.locator("#call")).to_be_hidden()
        playwright.expect(page.locator("#state")).to_have_text("available")
        playwright.expect(bob.locator("#state")).to_have_text("busy")
    notes = [note["text"] for note in app.extensions["ivr.store"].notes(CALL["CallSid"])]
    assert notes == ["Double charge confirmed, refund promised", "Handed to Bob for the refund"]
