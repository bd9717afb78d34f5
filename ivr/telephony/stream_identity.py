"""Which call a Media Stream may speak for: the `<Stream>` TwiML carries a per-call token (HMAC of the CallSid and
an expiry, keyed by the auth token) as a `<Parameter>`; the `start` message must present it, for the CallSid it was
issued to, before it expires, and only once per call. The upgrade's signature covers only the URL, so without this
one captured signature would open streams for any call."""
from __future__ import annotations

import hashlib
import hmac


def stream_token(call_sid: str, *, key: str, expires: int) -> str:
    return hmac.new(key.encode(), f"{call_sid}:{expires}".encode(), hashlib.sha256).hexdigest()


def token_parameters(call_sid: str, *, key: str, now: float, valid_s: int = 60) -> dict[str, str]:
    """The <Parameter>s that let this call's stream in (Twilio opens it within seconds of the TwiML)."""
    expires = int(now) + valid_s
    return {"expires": str(expires), "token": stream_token(call_sid, key=key, expires=expires)}


def token_is_valid(call_sid: str, parameters: dict[str, str], *, key: str, now: float) -> bool:
    try:
        expires = int(parameters.get("expires", ""))
    except ValueError:
        return False
    expected = stream_token(call_sid, key=key, expires=expires)
    return expires >= now and hmac.compare_digest(expected, parameters.get("token", ""))
