"""An HTTP self-service backend (a local test server) answers a caller's balance: the request is signed and carries
the slots; a slow, broken or unsigned-looking backend ends at a person."""
import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ivr.selfservice import registry_for
from ivr.selfservice.http import signature
from ivr.types import SelfServiceRequest
from tests.support import TwilioHelper, make_app

SECRET = "s3cret-shared-with-the-crm"


@pytest.fixture
def crm():
    """A backend that checks the signature and answers from its own data."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            signed = self.headers.get("X-IVR-Signature") == signature(SECRET, body)
            request = json.loads(body)
            seen.append({**request, "signed": signed})
            if self.path == "/broken":
                self.send_response(500)
                self.end_headers()
                return
            answer = {"text": f"Your balance is 12 dollars, {request['locale']}.", "ok": signed}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_an_http_backend_answers_a_callers_balance_in_a_call(crm, settings, redis_client, clock):
    url, seen = crm
    actions = registry_for([f"account_balance={url}/balance"], secret=SECRET)
    app = make_app(settings, redis_client, clock, IVR_ACTIONS=actions)
    helper, call = TwilioHelper(app.test_client()), {"CallSid": "CAhttp", "From": "+15550100001"}
    helper.post("/voice/incoming", call)
    helper.post("/voice/gather?turn=0", {**call, "SpeechResult": "what's my balance"})
    root = ET.fromstring(helper.post("/voice/gather?turn=1", {**call, "Digits": "12345678"}).data)
    assert any("Your balance is 12 dollars, en-US." in (say.text or "") for say in root.iter("Say"))
    assert seen == [{"action": "account_balance", "slots": {"account_number": "12345678"}, "caller": "+15550100001",
                     "locale": "en-US", "signed": True}]


def test_a_failing_or_wrongly_configured_http_backend_is_a_failure_not_a_crash(crm):
    url, _ = crm
    broken = registry_for([f"account_balance={url}/broken"], secret=SECRET)
    result = broken.run("account_balance", SelfServiceRequest({"account_number": "1"}, "+1555", "en-US"))
    assert result.ok is False and "500" in result.data["error"]
    unreachable = registry_for(["account_balance=http://127.0.0.1:9/nothing"], secret=SECRET, timeout_s=1)
    assert unreachable.run("account_balance", SelfServiceRequest({}, "+1555", "en-US")).ok is False
    with pytest.raises(ValueError, match="action=https"):
        registry_for(["account_balance=ftp://example"])
    with pytest.raises(ValueError, match="entry point"):
        registry_for(["no-such-plugin"])


def register_weather(registry):
    """An installed package's plug-in, as its `ivr.selfservice` entry point names it."""
    registry.register("weather", lambda request: __import__("ivr.types").types.SelfServiceResult("Sunny."))


def test_an_installed_packages_entry_point_registers_its_actions(monkeypatch):
    from importlib.metadata import EntryPoint

    from ivr.selfservice import registry as module

    point = EntryPoint(name="acme", value="tests.selfservice.test_http_backend:register_weather",
                       group="ivr.selfservice")
    monkeypatch.setattr(module, "entry_points", lambda group: [point] if group == "ivr.selfservice" else [])
    registry = registry_for(["acme"])
    assert registry.run("weather", SelfServiceRequest({}, "+1555", "en-US")).text == "Sunny."
