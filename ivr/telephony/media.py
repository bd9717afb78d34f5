"""The Media Streams WebSocket endpoint (`/media`) and the stream URL that the TwiML points at."""
from __future__ import annotations

import json
import logging
import threading

from flask import Flask, abort, current_app, request
from flask_sock import Sock
from twilio.request_validator import RequestValidator

from ivr.telephony.stream import MediaSession

log = logging.getLogger(__name__)


def stream_url() -> str:
    """wss://<public host>/media (ws:// when the service itself is reached over plain http, e.g. locally)."""
    base = current_app.config["IVR_SETTINGS"].public_url.rstrip("/") or request.host_url.rstrip("/")
    return base.replace("https://", "wss://").replace("http://", "ws://") + "/media"


def upgrade_is_signed() -> bool:
    """Twilio signs the WebSocket upgrade like a webhook, over the stream URL with no parameters."""
    settings = current_app.config["IVR_SETTINGS"]
    if settings.insecure_skip_signature:
        return True
    signature = request.headers.get("X-Twilio-Signature", "")
    if not settings.twilio_auth_token or not signature:
        return False
    validator = RequestValidator(settings.twilio_auth_token)
    url = stream_url()
    candidates = {url, url.replace("wss://", "https://").replace("ws://", "http://")}
    return any(validator.validate(candidate, {}, signature) for candidate in candidates)


def init_app(app: Flask) -> None:
    sock = Sock(app)

    @app.before_request
    def refuse_unsigned_upgrade() -> None:
        """Checked before the WebSocket handshake, so an unsigned client never gets a socket."""
        if request.path == "/media" and not upgrade_is_signed():
            log.warning("403 /media from %s: missing or invalid X-Twilio-Signature on the upgrade", request.remote_addr)
            abort(403)

    @sock.route("/media")
    def media(ws) -> None:
        """One call's Media Stream: JSON text frames in, media/mark/clear out."""
        speech = current_app.extensions["ivr.speech"]
        conversations = current_app.extensions["ivr.conversations"]
        lock = threading.Lock()

        def send(message: dict) -> None:
            with lock:
                ws.send(json.dumps(message))

        session = MediaSession(conversations, speech.prompts, speech.recognizer_for, send, ws.close, paced=speech.paced)
        speech.stream_opened()
        try:
            while ws.connected:
                raw = ws.receive(timeout=60)
                if raw is None:
                    break
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("call %s: ignoring a malformed stream message %r", session.call_sid, str(raw)[:80])
                    continue
                session.handle(message)
        finally:
            session.player.stop()
            speech.stream_closed()
