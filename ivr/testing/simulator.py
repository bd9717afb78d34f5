"""A Twilio simulator: places a call against the service the way Twilio does (signed form posts, in Twilio's
order, with Twilio's parameters), follows the TwiML, and plays a caller from a script or the keyboard."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin

import requests
import yaml
from twilio.request_validator import RequestValidator


class Transport(Protocol):
    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]: ...
    def get_json(self, url: str, headers: dict[str, str]) -> tuple[int, dict]: ...


class FlaskTransport:
    """In-process: a Flask test client."""

    def __init__(self, client):
        self.client = client

    def post(self, url, params, headers):
        response = self.client.post(url, data=params, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    def get_json(self, url, headers):
        response = self.client.get(url, headers=headers)
        return response.status_code, response.get_json(silent=True) or {}


class HttpTransport:
    """Against a running service."""

    def post(self, url, params, headers):
        response = requests.post(url, data=params, headers=headers, timeout=15)  # Twilio's own limit
        return response.status_code, response.text

    def get_json(self, url, headers):
        response = requests.get(url, headers=headers, timeout=15)
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.status_code, (response.json() if is_json else {})


@dataclass(frozen=True)
class CallerTurn:
    """What the caller does when asked: speak, key digits, or stay silent (both empty)."""

    say: str = ""
    dtmf: str = ""
    confidence: float = 0.9


@dataclass
class CallRecord:
    call_sid: str
    heard: list[str] = field(default_factory=list)
    queue: str | None = None
    whisper: str | None = None
    ended: str = ""
    context: dict | None = None
    requests: list[tuple[str, int]] = field(default_factory=list)


Caller = Callable[[list[str]], CallerTurn]


def spoken(element: ET.Element) -> list[str]:
    """What a listener hears from a TwiML element and its children: <Say> text, or which audio <Play>s."""
    sounds = (e for e in element.iter() if e.tag in ("Say", "Play"))
    return [(e.text or "") if e.tag == "Say" else f"[audio {e.text}]" for e in sounds]


def scripted_caller(turns: list[CallerTurn]) -> Caller:
    """A caller that answers each question with the next scripted turn, then stays silent."""
    queue = list(turns)
    return lambda heard: queue.pop(0) if queue else CallerTurn()


def keyboard_caller(heard: list[str]) -> CallerTurn:
    """Reads the caller's answer from stdin: text is speech, `#123` keys digits, empty is silence."""
    line = input("caller> ").strip()
    return CallerTurn(dtmf=line[1:]) if line.startswith("#") else CallerTurn(say=line)


class TwilioSimulator:
    """Drives whole calls. `base_url` is the public URL requests are signed for (what Twilio would use)."""

    def __init__(self, transport: Transport, *, auth_token: str, base_url: str = "http://localhost",
                 api_token: str = "", echo: Callable[[str], None] | None = None, max_steps: int = 40):
        self.transport = transport
        self.validator = RequestValidator(auth_token)
        self.base_url = base_url.rstrip("/") + "/"
        self.api_token = api_token
        self.echo = echo or (lambda line: None)
        self.max_steps = max_steps

    def post(self, record: CallRecord, path: str, params: dict[str, str]) -> str:
        url = urljoin(self.base_url, path)
        signature = self.validator.compute_signature(url, params)
        status, body = self.transport.post(url, params, {"X-Twilio-Signature": signature})
        record.requests.append((path, status))
        if status >= 400:
            raise RuntimeError(f"{path} answered HTTP {status}: {body[:200]}")
        return body

    def place_call(self, caller: Caller, *, from_: str = "+15550100001", to: str = "+15550009999",
                   locale: str | None = None) -> CallRecord:
        """Ring the service, follow its TwiML to the end, then post the final status callback."""
        call_sid = "CA" + uuid.uuid4().hex
        record = CallRecord(call_sid)
        base = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": from_, "To": to, "Caller": from_,
                "Called": to, "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        query = f"?locale={locale}" if locale else ""
        body = self.post(record, f"/voice/incoming{query}", {**base, "CallStatus": "ringing"})
        for _ in range(self.max_steps):
            next_request = self.execute(record, body, caller, base)
            if next_request is None:
                break
            body = self.post(record, *next_request)
        else:
            record.ended = "too many steps"
        self.hang_up(record, base)
        return record

    def hang_up(self, record: CallRecord, base: dict) -> None:
        """The final status callback; then what the agent's screen would show (transferred or called back)."""
        self.post(record, "/voice/status", {**base, "CallStatus": "completed", "CallDuration": "60"})
        if self.api_token:  # a transfer or a call back stored a context record
            status, context = self.transport.get_json(
                urljoin(self.base_url, f"/api/calls/{record.call_sid}/context"),
                {"Authorization": f"Bearer {self.api_token}"},
            )
            record.context = context if status == 200 else None

    def hear(self, record: CallRecord, *texts: str) -> None:
        for text in texts:
            record.heard.append(text)
            self.echo(f"IVR:    {text}")

    def agent_hears(self, record: CallRecord, url: str, leg: dict) -> None:
        """The agent's leg fetches the whisper before the bridge."""
        record.whisper = " ".join(spoken(ET.fromstring(self.post(record, url, leg))))
        self.echo(f"[agent hears] {record.whisper}")

    def execute(self, record: CallRecord, body: str, caller: Caller, base: dict) -> tuple[str, dict] | None:
        """Run one TwiML document; return the next request Twilio would make, or None when the call ends."""
        for verb in ET.fromstring(body):
            if verb.tag in ("Say", "Play"):
                self.hear(record, *spoken(verb))
            elif verb.tag == "Gather":
                self.hear(record, *spoken(verb))
                turn = caller(record.heard)
                self.echo(f"caller: {turn.say or ('[keys ' + turn.dtmf + ']' if turn.dtmf else '[silence]')}")
                if turn.say or turn.dtmf or verb.get("actionOnEmptyResult") == "true":
                    params = dict(base)
                    if turn.dtmf:
                        params["Digits"] = turn.dtmf
                    elif turn.say:
                        params.update(SpeechResult=turn.say, Confidence=str(turn.confidence))
                    return verb.get("action", ""), params
            elif verb.tag == "Redirect":
                return verb.text or "", dict(base)
            elif verb.tag == "Dial":
                self.dial(record, verb, base)
                return None
            elif verb.tag == "Enqueue":
                self.enqueue(record, verb, base)
                return None
            elif verb.tag == "Hangup":
                record.ended = "hangup"
                return None
        record.ended = record.ended or "end of TwiML"
        return None

    def dial(self, record: CallRecord, verb: ET.Element, base: dict) -> None:
        """<Dial>: the called party answers; a noun's `url` (whisper) is fetched for their leg first."""
        for noun in verb:
            self.echo(f"[dialing {noun.tag} {(noun.text or '').strip()}]")
            if noun.get("url"):
                leg = {**base, "CallSid": "CA" + uuid.uuid4().hex, "Direction": "outbound-dial"}
                self.agent_hears(record, noun.get("url", ""), leg)
        record.ended = "dialed"

    def enqueue(self, record: CallRecord, verb: ET.Element, base: dict) -> None:
        """Wait in the queue (one hold announcement), then an agent answers and hears the whisper."""
        record.queue = (verb.text or "").strip()
        self.echo(f"[queued in {record.queue}]")
        wait = {**base, "QueueSid": "QU" + "0" * 32, "QueuePosition": "1", "CurrentQueueSize": "1",
                "QueueTime": "0", "AvgQueueTime": "0"}
        self.hear(record, *spoken(ET.fromstring(self.post(record, verb.get("waitUrl", "/voice/wait"), wait))))
        leg = {**base, "CallSid": "CA" + uuid.uuid4().hex, "Direction": "outbound-api", "To": "client:agent"}
        self.agent_hears(record, f"/voice/whisper?call={record.call_sid}", leg)
        self.post(record, verb.get("action", "/voice/queue-exit"), {**base, "QueueResult": "bridged",
                                                                     "QueueTime": "12"})
        record.ended = "bridged to agent"


@dataclass
class ConversationScript:
    """A whole call as data (tests/conversations/*.yaml): what the caller does, and what must happen."""

    name: str
    turns: list[CallerTurn]
    expect: dict
    locale: str | None = None
    caller_number: str = "+15550100001"
    at: str = "2026-11-25T10:00:00-05:00"  # when the call happens (a weekday morning: every shipped queue is open)

    @classmethod
    def load(cls, path: str | Path) -> ConversationScript:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        turns = [CallerTurn() if t in ("silence", None) else CallerTurn(**t) for t in data.get("caller", [])]
        return cls(data.get("name", Path(path).stem), turns, data.get("expect", {}), data.get("locale"),
                   str(data.get("from", "+15550100001")), data.get("at", cls.at))

    def run(self, simulator: TwilioSimulator) -> CallRecord:
        return simulator.place_call(scripted_caller(self.turns), from_=self.caller_number, locale=self.locale)

    def failures(self, record: CallRecord) -> list[str]:
        """What the call did differently from `expect` (empty when it passed)."""
        problems = []
        context = record.context or {}
        for key in ("queue", "ended"):
            if key in self.expect and getattr(record, key) != self.expect[key]:
                problems.append(f"{key}: expected {self.expect[key]!r}, got {getattr(record, key)!r}")
        for key in ("intent", "agent_requested", "reason", "mood", "callback_number"):
            if key in self.expect and context.get(key) != self.expect[key]:
                problems.append(f"context {key}: expected {self.expect[key]!r}, got {context.get(key)!r}")
        for name, value in self.expect.get("slots", {}).items():
            if context.get("slots", {}).get(name) != str(value):
                problems.append(f"slot {name}: expected {value!r}, got {context.get('slots', {}).get(name)!r}")
        heard = " ".join(record.heard).lower()
        problems += [f"never heard {p!r}" for p in self.expect.get("heard", []) if p.lower() not in heard]
        problems += [f"heard {p!r}" for p in self.expect.get("not_heard", []) if p.lower() in heard]
        if "whisper" in self.expect and self.expect["whisper"].lower() not in (record.whisper or "").lower():
            problems.append(f"whisper: expected {self.expect['whisper']!r} in {record.whisper!r}")
        return problems
