"""A self-service backend over HTTP: the service POSTs the collected slots as JSON to a configured URL, signed with
an HMAC so the backend can tell the request came from this service, within a timeout, and speaks the answer.

    request:  {"action": "account_balance", "slots": {"account_number": "12345678"}, "caller": "+1…", "locale": "en-US"}
              header X-IVR-Signature: hex HMAC-SHA256 of the body with IVR_SELFSERVICE_SECRET
    response: {"text": "Your balance is …", "ok": true, "data": {…}}   (any 2xx; anything else is a failure)
"""
from __future__ import annotations

import hashlib
import hmac
import json

import requests

from ivr.types import SelfServiceRequest, SelfServiceResult


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpBackend:
    def __init__(self, action: str, url: str, *, secret: str, timeout_s: float):
        self.action, self.url, self.secret, self.timeout_s = action, url, secret, timeout_s

    def __call__(self, request: SelfServiceRequest) -> SelfServiceResult:
        body = json.dumps({"action": self.action, "slots": request.slots, "caller": request.caller,
                           "locale": request.locale}).encode()
        headers = {"Content-Type": "application/json", "X-IVR-Signature": signature(self.secret, body)}
        answer = requests.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
        answer.raise_for_status()
        reply = answer.json()
        text = reply.get("text") if isinstance(reply, dict) else None
        if not isinstance(text, str):
            return SelfServiceResult("", ok=False, data={"error": "the backend's answer has no text"})
        return SelfServiceResult(text[:1000], ok=bool(reply.get("ok", True)), data=reply.get("data") or {})
