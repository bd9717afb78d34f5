"""The Media Streams WebSocket endpoint (`/media`) and the stream URL that the TwiML points at: JSON text frames
in and out, translated at this edge by `media_protocol`; the session behind it sees only the project's frames."""
from __future__ import annotations

import json
import logging
import socket
import threading

from flask import Flask, abort, current_app, request
from flask_sock import Sock
from twilio.request_validator import RequestValidator

from ivr import logs
from ivr.speech.frames import OutboundFrame, Start
from ivr.telephony import media_protocol
from ivr.telephony.stream import MediaSession
from ivr.telephony.stream_identity import token_is_valid

log = logging.getLogger(__name__)
START_TIMEOUT_S = 5.0  # a socket that sends no valid `start` within this is closed (it holds a thread)
IDLE_TIMEOUT_S = 60.0  # a started stream that sends nothing (Twilio sends a frame every 20 ms) is closed
SOCKET_MARGIN = 2  # sockets past IVR_MAX_STREAMS a worker still accepts (a closing call overlapping a new one)
CLOSE_WAIT_S = 1.0  # how long a closing stream's thread waits for the peer to answer the close frame


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


class TwilioSocket:
    """The socket side of one stream: encodes outbound frames for Twilio (one writer at a time)."""

    def __init__(self, ws):
        self.ws = ws
        self.stream_sid = ""
        self.lock = threading.Lock()

    def send(self, frame: OutboundFrame) -> None:
        with self.lock:
            self.ws.send(json.dumps(media_protocol.encode(frame, self.stream_sid)))

    def close(self) -> None:
        self.ws.close()


def stream_may_start(start: Start) -> bool:
    """Only the call the service answered with <Stream>, with that call's token, and only once."""
    settings, store = current_app.config["IVR_SETTINGS"], current_app.extensions["ivr.store"]
    now = current_app.extensions["ivr.conversations"].clock()
    if not settings.insecure_skip_signature and not token_is_valid(
            start.call_sid, start.parameters, key=settings.twilio_auth_token, now=now):
        return False
    return store.claim_stream(start.call_sid)


def init_app(app: Flask) -> None:
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": 64 * 1024})  # a 20 ms frame is ~400 bytes
    sock = Sock(app)

    @app.before_request
    def refuse_unsigned_upgrade() -> None:
        """Checked before the WebSocket handshake, so an unsigned client never gets a socket."""
        if request.path != "/media":
            return
        if not upgrade_is_signed():
            log.warning("403 /media from %s: missing or invalid X-Twilio-Signature on the upgrade", request.remote_addr)
            abort(403)
        # Every open socket holds a server thread. Twilio opens one per admitted stream call (IVR_MAX_STREAMS across
        # all workers), so more open here are replays of a captured upgrade: refused before they take a thread.
        limit = current_app.config["IVR_SETTINGS"].max_streams + SOCKET_MARGIN
        if current_app.extensions["ivr.speech"].active_streams >= limit:
            log.warning("503 /media from %s: %d sockets already open on this worker (limit %d)", request.remote_addr,
                        current_app.extensions["ivr.speech"].active_streams, limit)
            abort(503)

    @sock.route("/media")
    def media(ws) -> None:
        """One call's Media Stream: receive, translate, hand to the session; it never blocks this loop."""
        speech = current_app.extensions["ivr.speech"]
        twilio_socket = TwilioSocket(ws)
        session = MediaSession(current_app.extensions["ivr.conversations"], speech.prompts, speech.recognizer_for,
                               twilio_socket.send, twilio_socket.close, pool=speech.workers, paced=speech.paced)
        speech.stream_opened(session)
        try:
            while ws.connected:
                # A socket that does not start a call within seconds is closed: it would hold a worker thread.
                raw = ws.receive(timeout=IDLE_TIMEOUT_S if session.call_sid else START_TIMEOUT_S)
                if raw is None:
                    break
                try:
                    frame = media_protocol.decode(json.loads(raw))
                except ValueError as exc:  # JSON or protocol: log and skip, the call goes on
                    log.warning("call %s: ignoring a malformed stream message (%s): %r", session.call_sid, exc,
                                str(raw)[:80])
                    continue
                if isinstance(frame, Start):
                    if session.call_sid or not stream_may_start(frame):
                        log.warning("closing /media from %s: start for %s refused (a second start, or no valid "
                                    "stream token for that call)", request.remote_addr, frame.call_sid)
                        break
                    twilio_socket.stream_sid = frame.stream_sid
                    logs.call_sid.set(frame.call_sid)  # the session's lane jobs inherit it
                    logs.locale.set(frame.parameters.get("locale", "-"))
                elif not session.call_sid and frame is not None:
                    continue  # nothing before a valid start
                if frame is not None:
                    session.on_frame(frame)
        finally:
            session.stop()
            speech.stream_closed(session)
            try:
                current_app.extensions["ivr.store"].release_stream(session.call_sid)
            except Exception:  # the status callback releases it too, or it goes stale
                log.exception("call %s: stream slot not released", session.call_sid)
            close_stream(ws)


def close_stream(ws, *, wait_s: float = CLOSE_WAIT_S) -> None:
    """End the WebSocket here, on this request's thread: send the close frame, give the peer `wait_s` to answer it
    (Twilio does at once), then shut the TCP connection. Left to the server, gunicorn's gthread worker would wait
    up to 2 s for the peer's FIN on its main loop, and no other request of that worker is served meanwhile
    (`ivr bench closes`)."""
    try:
        ws.close()
    except Exception:  # the peer closed first
        pass
    reader = getattr(ws, "thread", None)
    if reader is not None:
        reader.join(wait_s)  # the socket's reader ends when the peer's close frame arrives
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed: nothing is left to linger on
        pass
