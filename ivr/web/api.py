"""JSON API for agent desktops and CRMs: the context record of a call (bearer-token protected)."""
from __future__ import annotations

import functools
import hmac
import logging

from flask import Blueprint, current_app, jsonify, request

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
probes = Blueprint("probes", __name__)  # /healthz and /readyz, where orchestrators look for them


def token_required(view):
    """Require `Authorization: Bearer <IVR_API_TOKEN>`; with no token configured the API stays closed."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        expected = current_app.config["IVR_SETTINGS"].api_token
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not expected or scheme != "Bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            log.warning("401 %s from %s: bad or missing API token", request.path, request.remote_addr)
            response = jsonify(error="send Authorization: Bearer <IVR_API_TOKEN>")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="ivr"'
            return response
        return view(*args, **kwargs)

    return wrapper


@bp.get("/calls/<call_sid>/context")
@token_required
def call_context(call_sid: str):
    """The context record stored before the call was transferred."""
    try:
        record = current_app.extensions["ivr.conversations"].context(call_sid)
    except Exception:
        log.exception("context for %s: store unavailable", call_sid)
        return jsonify(error="the call store is unavailable; try again"), 503
    if record is None:
        return jsonify(error=f"no context for call {call_sid} (unknown, not transferred yet, or expired)"), 404
    return jsonify(record.to_dict())


@bp.get("/health")
def health():
    """Liveness and store reachability, for the load balancer."""
    try:
        store_ok = current_app.extensions["ivr.store"].ping()
    except Exception:
        store_ok = False
    catalog, speech = current_app.extensions["ivr.catalog"], current_app.extensions["ivr.speech"]
    body = {"store": store_ok, "locales": catalog.locales(), "grammar_errors": catalog.errors,
            "streams": {"active": speech.active_streams, "lag_s": round(speech.lag_s(), 2),
                        "overloaded": speech.overloaded()}}
    return jsonify(body), 200 if store_ok else 503


@probes.get("/healthz")
def alive():
    """Liveness: the process answers (for the orchestrator's restart decision; nothing else is checked)."""
    return jsonify(alive=True)


@probes.get("/readyz")
def ready():
    """Readiness: a grammar loaded (its classifier built), the store reachable, the grammar's prompts rendered."""
    catalog, speech = current_app.extensions["ivr.catalog"], current_app.extensions["ivr.speech"]
    try:
        store_ok = current_app.extensions["ivr.store"].ping()
    except Exception:
        store_ok = False
    pending = speech.prompts.pending_public() if speech.tts else 0
    checks = {"grammar": bool(catalog.locales()), "store": store_ok, "prompts_pending": pending}
    ready_now = checks["grammar"] and store_ok and pending == 0
    return jsonify(ready=ready_now, **checks), 200 if ready_now else 503
