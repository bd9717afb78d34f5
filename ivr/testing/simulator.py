"""A Twilio simulator: places a call against the service the way Twilio does (signed form posts, in Twilio's
order, with Twilio's parameters), follows the TwiML, and plays a caller from a script or the keyboard."""
from __future__ import annotations

import http.client
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode, urljoin, urlsplit

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
    """Against a running service. Webhooks are posted with `http.client`, one connection each as Twilio does: a
    fifth of `requests`' CPU per post (0.5 ms, not 2.7), which matters when `ivr bench load` plays 100 callers on
    the server's own cores. Raises OSError (or `http.client.HTTPException`) when the service does not answer."""

    def post(self, url, params, headers):
        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.netloc, timeout=15)  # Twilio's own limit
        try:
            connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=urlencode(params),
                               headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
            response = connection.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()

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


@dataclass(frozen=True)
class SimulatedAgent:
    """An agent the simulator plays: `alice:billing+tech_support` answers; `bob:billing:no-answer` lets it ring."""

    id: str
    skills: tuple[str, ...]
    answers: bool = True

    @classmethod
    def parse(cls, spec: str) -> SimulatedAgent:
        parts = spec.strip().split(":")
        if len(parts) < 2 or not parts[0] or parts[2:] not in ([], ["no-answer"]):
            raise ValueError(f"agent {spec!r}: use id:skill[+skill…][:no-answer], e.g. alice:billing")
        return cls(parts[0], tuple(filter(None, parts[1].split("+"))), answers=parts[2:] != ["no-answer"])


def staff(app, agents: list[SimulatedAgent]):
    """Put simulated agents on duty in an in-process app built with a FakeTelephony (the first idles longest)."""
    from ivr.store.agents import Agent

    desk = app.extensions["ivr.desk"]
    for index, agent in enumerate(agents):
        desk.agents.save_agent(Agent(agent.id, agent.id.title(), skills=agent.skills, languages=("en", "de")))
        desk.agents.set_state(agent.id, "available", desk.clock() - len(agents) + index)  # idle since, in order
        desk.route_agent(agent.id)


@dataclass
class CallRecord:
    call_sid: str
    heard: list[str] = field(default_factory=list)
    queue: str | None = None
    agent: str | None = None  # who took the call (simulated agents)
    missed: list[str] = field(default_factory=list)  # agents rung who did not answer
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
                 api_token: str = "", echo: Callable[[str], None] | None = None, max_steps: int = 40,
                 telephony=None, agents: list[SimulatedAgent] | None = None):
        self.transport = transport
        self.telephony = telephony  # the app's FakeTelephony: the agent legs the service places, played here
        self.agents = {agent.id: agent for agent in agents or []}
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
        if self.telephony is not None:
            return self.take_by_agent(record, verb, base)
        leg = {**base, "CallSid": "CA" + uuid.uuid4().hex, "Direction": "outbound-api", "To": "client:agent"}
        self.agent_hears(record, f"/voice/whisper?call={record.call_sid}", leg)
        self.post(record, verb.get("action", "/voice/queue-exit"), {**base, "QueueResult": "bridged",
                                                                     "QueueTime": "12"})
        record.ended = "bridged to agent"


    def take_by_agent(self, record: CallRecord, verb: ET.Element, base: dict) -> None:
        """The service rings simulated agents through the fake REST client: one who does not answer is reported
        as Twilio would (no-answer) and the next is rung; one who answers hears the whisper and is bridged."""
        handled = 0
        while handled < len(self.telephony.rings):
            ring = self.telephony.rings[handled]
            handled += 1
            if f"call={record.call_sid}" not in ring["url"]:
                continue
            agent = self.agents.get(ring["to"].removeprefix("client:"))
            leg = {"CallSid": ring["sid"], "AccountSid": base["AccountSid"], "Direction": "outbound-api",
                   "To": ring["to"]}
            if agent is None or not agent.answers:
                self.echo(f"[{ring['to']} does not answer]")
                record.missed.append(ring["to"].removeprefix("client:"))
                self.post(record, ring["status_callback"], {**leg, "CallStatus": "no-answer"})
                continue
            join = ET.fromstring(self.post(record, ring["url"], {**leg, "CallStatus": "in-progress"}))
            record.whisper = " ".join(spoken(join))
            self.echo(f"[{agent.id} answers and hears] {record.whisper}")
            bridge = join.find("./Redirect")
            if bridge is None or bridge.text is None:
                continue  # the caller was gone
            self.post(record, bridge.text, leg)
            moved = next(m for m in self.telephony.redirects if m["call_sid"] == record.call_sid)
            self.post(record, moved["url"], base)
            self.post(record, verb.get("action", "/voice/queue-exit"), {**base, "QueueResult": "redirected"})
            record.agent, record.ended = agent.id, f"talking with {agent.id}"
            self.echo(f"[caller and {agent.id} are connected]")
            return
        record.ended = "waiting in the queue (no agent free)"


@dataclass
class ConversationScript:
    """A whole call as data (tests/conversations/*.yaml): what the caller does, and what must happen."""

    name: str
    turns: list[CallerTurn]
    expect: dict
    locale: str | None = None
    caller_number: str = "+15550100001"
    at: str = "2026-11-25T10:00:00-05:00"  # when the call happens (a weekday morning: every shipped queue is open)
    agents: tuple[SimulatedAgent, ...] = ()  # on duty (the first idles longest); none: a generic agent answers

    @classmethod
    def load(cls, path: str | Path) -> ConversationScript:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        turns = [CallerTurn() if t in ("silence", None) else CallerTurn(**t) for t in data.get("caller", [])]
        return cls(data.get("name", Path(path).stem), turns, data.get("expect", {}), data.get("locale"),
                   str(data.get("from", "+15550100001")), data.get("at", cls.at),
                   tuple(SimulatedAgent.parse(spec) for spec in data.get("agents", [])))

    def run(self, simulator: TwilioSimulator) -> CallRecord:
        return simulator.place_call(scripted_caller(self.turns), from_=self.caller_number, locale=self.locale)

    def failures(self, record: CallRecord) -> list[str]:
        """What the call did differently from `expect` (empty when it passed)."""
        problems = []
        for key in ("queue", "ended", "agent", "missed"):
            if key in self.expect and getattr(record, key) != self.expect[key]:
                problems.append(f"{key}: expected {self.expect[key]!r}, got {getattr(record, key)!r}")
        checked = [k for k in ("intent", "agent_requested", "reason", "mood", "callback_number") if k in self.expect]
        wanted = [k for k in [*checked, "slots"] if self.expect.get(k) is not None]  # `null`: no context shows that
        if wanted and record.context is None:
            problems.append(f"context not read ({', '.join(wanted)} unchecked): the call stored none, or the "
                            "service refused the API token (set IVR_API_TOKEN to the service's)")
        context = record.context or {}
        for key in checked if record.context is not None or not wanted else ():
            if context.get(key) != self.expect[key]:
                problems.append(f"context {key}: expected {self.expect[key]!r}, got {context.get(key)!r}")
        for name, value in self.expect.get("slots", {}).items() if record.context is not None else ():
            if context.get("slots", {}).get(name) != str(value):
                problems.append(f"slot {name}: expected {value!r}, got {context.get('slots', {}).get(name)!r}")
        heard = " ".join(record.heard).lower()
        played = " (prompts were played as audio: serve with IVR_GATHER_PROMPTS=say to check words)" \
            if "[audio " in heard else ""
        problems += [f"never heard {p!r}{played}" for p in self.expect.get("heard", []) if p.lower() not in heard]
        problems += [f"heard {p!r}" for p in self.expect.get("not_heard", []) if p.lower() in heard]
        if "whisper" in self.expect and self.expect["whisper"].lower() not in (record.whisper or "").lower():
            problems.append(f"whisper: expected {self.expect['whisper']!r} in {record.whisper!r}")
        return problems
