"""Twilio voice webhooks (Gather mode, the stream's entry and exit, hold and whisper): TwiML out, signatures
checked, retries answered idempotently, every fault answered with a transfer to a human."""
from __future__ import annotations

import functools
import hashlib
import logging

from flask import Blueprint, Response, abort, current_app, request, send_file

from ivr.conversation import Conversations, UnknownCall
from ivr.privacy import redact
from ivr.routing.handoff import wait_minutes
from ivr.telephony import twiml
from ivr.telephony.media import stream_url
from ivr.telephony.security import twilio_signed
from ivr.types import Hangup, Transfer, Utterance

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")


def conversations() -> Conversations:
    return current_app.extensions["ivr.conversations"]


def locale_param() -> str:
    """Locale of this hotline number: `?locale=de-DE` on the webhook URL configured in Twilio."""
    return request.args.get("locale") or current_app.config["IVR_SETTINGS"].locale


def audio_url(text: str, locale: str) -> str | None:
    """URL of the on-prem rendered prompt for <Play> (rendered now if needed), or None to fall back to <Say>."""
    settings, speech = current_app.config["IVR_SETTINGS"], current_app.extensions["ivr.speech"]
    if settings.gather_prompts != "play" or not speech.tts:
        return None
    prompts = speech.prompts
    try:
        path = prompts.ensure(text, locale)
    except Exception as exc:
        log.warning("prompt render failed (%s), using <Say>: %r", exc, redact(text[:60]))
        return None
    return f"{settings.public_url.rstrip('/')}/voice/audio/{path.stem}.wav"


def player(locale: str) -> twiml.AudioUrl:
    return lambda text: audio_url(text, locale)


def render(actions, *, locale: str, turn: int = 0) -> str:
    return twiml.render(actions, locale=locale, turn=turn, audio_url=player(locale))


def record_event(event: dict) -> None:
    """Analytics are best effort: a store fault must not change what the caller hears."""
    try:
        conversations().store.log_event({**event, "at": conversations().clock()})
    except Exception:
        log.exception("call %s: %s event not recorded", event.get("call"), event.get("type"))


def xml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def voice_webhook(view):
    """Signed, idempotent for Twilio's retries, and never silent: any fault transfers the caller to a human."""

    @twilio_signed
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        call_sid = request.form.get("CallSid", "")
        if not call_sid:
            log.warning("400 %s: signed but without a CallSid", request.path)
            abort(400)
        items = sorted(request.form.items(multi=True))
        key = hashlib.sha1(repr((request.path, request.query_string, items)).encode()).hexdigest()
        store = conversations().store
        try:
            cached = store.cached_reply(call_sid, key)
            if cached is not None:
                log.info("call %s: repeated %s answered from cache", call_sid, request.path)
                return xml(cached)
            body = view(*args, **kwargs)
            if not store.claim_reply(call_sid, key, body):
                body = store.cached_reply(call_sid, key) or body
        except Exception:
            log.exception("call %s: fault in %s, transferring to a human", call_sid, request.path)
            body = fault_reply(call_sid, reason="fault")
        return xml(body)

    return wrapper


def fault_reply(call_sid: str, *, reason: str) -> str:
    locale = locale_param()
    try:
        return render(conversations().fail(call_sid, locale=locale, reason=reason), locale=locale)
    except Exception:  # even the grammar is gone: a fixed English apology and the default queue
        log.exception("call %s: cannot build the fault transfer, using the built-in one", call_sid)
        return twiml.safe_transfer("Sorry, something went wrong. Connecting you to an agent.", "general", locale=locale)


@bp.post("/incoming")
@voice_webhook
def incoming() -> str:
    """A new call: greet with the AI disclosure and listen (stream mode: over the Media Stream)."""
    caller = request.form.get("From", "")
    speech = current_app.extensions["ivr.speech"]
    if speech.admit_stream():
        return twiml.connect_stream(stream_url(), {"caller": caller, "locale": locale_param()})
    if speech.stream_mode:
        log.warning("%d streams active (IVR_MAX_STREAMS): this call uses Gather mode", speech.active_streams)
    state, actions = conversations().begin(request.form["CallSid"], caller=caller, locale=locale_param())
    return render(actions, locale=state.locale, turn=state.turn_count)


@bp.post("/gather")
@voice_webhook
def gather() -> str:
    """The caller's answer to a <Gather>: speech, keys or nothing."""
    call_sid = request.form["CallSid"]
    utterance = Utterance(
        text=request.form.get("SpeechResult", "").strip(),
        confidence=float(request.form.get("Confidence") or 0.0),
        digits=request.form.get("Digits", "").strip(),
    )
    try:
        state, actions = conversations().respond(call_sid, utterance)
    except UnknownCall:
        log.warning("call %s: unknown or expired CallSid at /voice/gather, transferring", call_sid)
        return fault_reply(call_sid, reason="unknown_call")
    return render(actions, locale=state.locale, turn=state.turn_count)


@bp.post("/after-stream")
@voice_webhook
def after_stream() -> str:
    """The <Connect action>: the stream closed, so carry out what the dialog decided (transfer or goodbye)."""
    call_sid = request.form["CallSid"]
    state = conversations().store.load_state(call_sid)
    if state is not None and state.outcome == "transfer" and state.queue:
        return twiml.render([Transfer(state.queue, tuple(state.skills), state.transfer_reason or "intent")],
                            locale=state.locale)
    if state is not None and state.step == "done":
        return twiml.render([Hangup()], locale=state.locale)
    log.error("call %s: stream ended without a decision, transferring", call_sid)
    return fault_reply(call_sid, reason="stream_ended")


@bp.get("/audio/<key>.wav")
def audio(key: str):
    """Rendered prompts for <Play> (Twilio fetches them). Keys are content hashes."""
    if not key.isalnum():
        abort(404)
    path = current_app.extensions["ivr.speech"].prompts.path(key)
    if not path.exists():
        abort(404)
    return send_file(path, mimetype="audio/wav", max_age=86400)


@bp.post("/wait")
@twilio_signed
def wait() -> Response:
    """Hold announcement while queued: position and estimated wait (Twilio repeats this URL); past the queue's
    max_wait_before_callback, a keypress for a call back instead."""
    locale, queue_name = locale_param(), request.args.get("queue", "")
    grammar = conversations().catalog.get(locale).grammar
    position = int(request.form.get("QueuePosition") or 1)
    minutes = wait_minutes(position, int(request.form.get("AvgQueueTime") or 0))
    queue = grammar.queues.get(queue_name)
    waited = int(request.form.get("QueueTime") or 0)
    offer = grammar.prompts.hold_callback if queue and waited >= queue.max_wait_before_callback else None
    action = twiml.url("/voice/wait-callback", queue=queue_name, locale=locale)
    announcement = grammar.prompts.wait.format(position=position, minutes=minutes)
    return xml(twiml.hold(announcement, offer, callback_action=action, locale=locale, audio_url=player(locale)))


@bp.post("/wait-callback")
@voice_webhook
def wait_callback() -> str:
    """The caller on hold pressed a key: 1 leaves the queue with a callback request, anything else keeps waiting."""
    locale, queue = locale_param(), request.args.get("queue", "")
    if request.form.get("Digits") != "1":
        return twiml.redirect(twiml.url("/voice/wait", queue=queue, locale=locale))
    call_sid = request.form.get("CallSid", "")
    store = conversations().store
    store.add_callback({"call": call_sid, "number": request.form.get("From", ""), "queue": queue,
                        "reason": "long_wait", "at": conversations().clock()})
    store.log_event({"call": call_sid, "type": "callback", "queue": queue, "at": conversations().clock()})
    prompts = conversations().catalog.get(locale).grammar.prompts
    return twiml.leave_with(prompts.callback_queued, locale=locale, audio_url=player(locale))


@bp.post("/queue-exit")
@voice_webhook
def queue_exit() -> str:
    """The caller left the queue. If Twilio could not queue them, try the default queue rather than drop them."""
    result = request.form.get("QueueResult", "")
    call_sid = request.form.get("CallSid", "")
    record_event({"call": call_sid, "type": "queue_exit", "result": result, "queue": request.args.get("queue")})
    if result in ("error", "system-error"):
        log.error("call %s: queue %s failed (%s)", call_sid, request.args.get("queue"), result)
        return fault_reply(call_sid, reason="queue_error")
    return twiml.empty()


@bp.post("/whisper")
@twilio_signed
def whisper() -> Response:
    """Spoken to the agent before the bridge: the one-sentence summary of what the caller already said."""
    call_sid = request.args.get("call") or request.form.get("CallSid", "")
    locale = locale_param()
    try:
        context = conversations().store.load_context(call_sid)
        locale = context["locale"] if context else locale  # the caller's hotline decides the agents' language
        template = conversations().catalog.get(locale).grammar.prompts.whisper
    except Exception:
        log.exception("whisper for %s: context unavailable", call_sid)
        context, template = None, "Incoming caller. {summary}"
    summary = context["summary"] if context else "No details were collected for this caller."
    return xml(twiml.announce(template.format(summary=summary), locale=locale, audio_url=player(locale)))


@bp.post("/status")
@twilio_signed
def status() -> tuple[str, int]:
    """Call status callback: record how the call ended (for analytics: abandoned vs. transferred vs. served)."""
    call_sid = request.form.get("CallSid", "")
    record_event({"call": call_sid, "type": "status", "status": request.form.get("CallStatus"),
                  "duration": request.form.get("CallDuration")})
    return "", 204
