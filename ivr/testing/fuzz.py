"""Hostile but correctly signed webhooks (hypothesis strategies): every Twilio parameter the service reads, filled
with what Twilio never sends — huge and negative numbers, control characters, markup, unknown CallSids, long text.
The service must answer each with valid TwiML or a proper 4xx, never a server error."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

PATHS = ("/voice/incoming", "/voice/gather?turn=0", "/voice/gather?turn=3", "/voice/wait?queue=billing",
         "/voice/wait-callback?queue=billing", "/voice/queue-exit?queue=billing", "/voice/status",
         "/voice/whisper?call=CAx", "/voice/after-stream", "/voice/agent-join?call=CAx&agent=alice",
         "/voice/agent-bridge?call=CAx&agent=alice", "/voice/caller-join?call=CAx",
         "/voice/agent-status?call=CAx&agent=alice", "/voice/requeue?queue=nope", "/voice/agent-left",
         "/voice/customer-join?call=CAx", "/voice/callback-status?call=CAx&agent=a", "/voice/gather?locale=xx-YY")
NASTY = st.one_of(
    st.text(max_size=40), st.text(alphabet=st.characters(max_codepoint=0x1f), max_size=20),
    st.sampled_from(["-1", "1e309", "NaN", "99999999999999999999", "<Say>hi</Say>", "]]>", "&amp;", "\x00", "",
                     "call-me-maybe", "0", "1", "#", "*", "bridged", "hangup", "error", "completed", "no-answer",
                     "machine_start", "ʕ•ᴥ•ʔ", "' OR 1=1 --"]),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.text(min_size=600, max_size=2000),
)
PARAMS = st.fixed_dictionaries(
    {"CallSid": st.one_of(st.just("CA" + "f" * 32), st.from_regex(r"CA[0-9a-f]{32}", fullmatch=True), NASTY)},
    optional={name: NASTY for name in (
        "From", "To", "SpeechResult", "Confidence", "Digits", "QueuePosition", "AvgQueueTime", "QueueTime",
        "QueueResult", "QueueSid", "CallStatus", "CallDuration", "AnsweredBy", "CurrentQueueSize")},
)


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # server errors and TwiML that does not parse


def fuzz(post, auth_token: str, *, requests: int, base_url: str = "http://localhost") -> FuzzReport:
    """Post `requests` signed hostile webhooks through `post(path, params, headers) -> (status, body)`."""
    validator, report = RequestValidator(auth_token), FuzzReport()

    @settings(max_examples=requests, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), derandomize=True)
    @given(path=st.sampled_from(PATHS), params=PARAMS)
    def one(path: str, params: dict[str, str]) -> None:
        signature = validator.compute_signature(base_url + path, params)
        status, body = post(path, params, {"X-Twilio-Signature": signature})
        report.requests += 1
        report.statuses[status] += 1
        if status >= 500:
            report.failures.append(f"{status} {path} {params!r:.200}")
        elif status == 200 and body.strip():
            try:
                root = ET.fromstring(body)
            except ET.ParseError as exc:
                report.failures.append(f"invalid TwiML from {path}: {exc}")
                return
            if root.tag != "Response":
                report.failures.append(f"{path} answered <{root.tag}>")

    one()
    return report
