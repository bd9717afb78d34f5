"""Twilio request signatures (X-Twilio-Signature), checked on every webhook; see
https://www.twilio.com/docs/usage/security#validating-requests"""
from __future__ import annotations

import functools
import hmac
import logging
import re

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)
CALL_SID = re.compile(r"[A-Za-z0-9]{2,64}")  # Twilio's are CA + 32 hex digits; anything else is refused


def call_sid_is_valid(value: str | None) -> bool:
    return value is None or CALL_SID.fullmatch(value) is not None


def signed_url() -> str:
    """The URL Twilio signed: the configured public base URL plus path and query, when behind a proxy."""
    base = current_app.config["IVR_SETTINGS"].public_url.rstrip("/")
    if not base:
        return request.url
    query = request.query_string.decode()
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def signature_is_valid() -> bool:
    settings = current_app.config["IVR_SETTINGS"]
    if settings.insecure_skip_signature:
        return True
    if not settings.twilio_auth_token:
        log.error("rejecting %s: no Twilio auth token configured (set TWILIO_AUTH_TOKEN)", request.path)
        return False
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator, url = RequestValidator(settings.twilio_auth_token), signed_url()
    if "bodySHA256" not in url:  # a form post signed for the URL as we see it: one HMAC, not the port variants too
        expected = validator.compute_signature(url, request.form)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    return validator.validate(url, request.form, signature)


def twilio_signed(view):
    """Reject a request that Twilio did not sign with our auth token: 403 and a log line."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not signature_is_valid():
            log.warning("403 %s from %s: missing or invalid X-Twilio-Signature (signed URL %.300s)",
                        request.path, request.remote_addr, signed_url())
            abort(403)
        if not call_sid_is_valid(request.form.get("CallSid")):
            log.warning("400 %s from %s: CallSid %.40r is not a Twilio CallSid", request.path, request.remote_addr,
                        request.form.get("CallSid"))
            abort(400)
        return view(*args, **kwargs)

    return wrapper
