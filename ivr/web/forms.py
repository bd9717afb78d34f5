"""What the people-facing pages share: the session key, CSRF on every POST of their forms (the voice webhooks are
signed by Twilio instead) and one rate limiter for sign-ins (across workers when REDIS_URL is set)."""
from __future__ import annotations

import logging
import secrets

from flask import Flask, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect

log = logging.getLogger(__name__)
csrf = CSRFProtect()
SIGN_IN_LIMIT = "5 per minute"  # per client address


def protect_forms() -> None:
    """A blueprint's before_request: every POST carries the form's CSRF token."""
    if request.method == "POST":
        csrf.protect()


def init_app(app: Flask) -> Limiter:
    settings = app.config["IVR_SETTINGS"]
    if not app.secret_key:
        app.secret_key = settings.secret_key or None
    if not app.secret_key:
        app.secret_key = secrets.token_hex(32)
        log.warning("IVR_SECRET_KEY is not set: sign-ins to the desk and admin pages last only as long as this process")
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked by the pages' own blueprints (protect_forms)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    csrf.init_app(app)

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError):
        log.warning("CSRF refused on %s: %s", request.path, error.description)
        return jsonify(error=f"refused: {error.description}"), 400

    limiter = Limiter(get_remote_address, app=app, default_limits=[], storage_uri=settings.redis_url or "memory://")
    # Only the sign-in views have limits, and their decorator checks them: the app-wide hook would evaluate an
    # empty set of limits on every webhook (~150 µs of a busy worker's GIL each).
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    return limiter
