"""Twilio voice webhooks (Gather mode, the stream's entry and exit, hold and whisper): TwiML out, signatures
checked, retries answered idempotently, every fault answered with a transfer to a human. The views only translate
requests to `Conversations` verbs and their replies to TwiML."""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, request, send_file

from ivr import logs
from ivr.conversation import Conversations, Reply, UnknownCall
from ivr.speech.hold_music import hold_music_wav
from ivr.store import CallStore
from ivr.store.breaker import FAILURES
from ivr.telephony import params, twiml
from ivr.telephony.media import stream_url
from ivr.telephony.security import call_sid_is_valid, twilio_signed
from ivr.telephony.stream_identity import token_parameters
from ivr.types import CallEvent, Transfer, Utterance

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")
REPLY_WAIT_S = 10.0  # a copy waits this long for the first copy's reply (Twilio gives up on a webhook at 15 s)
PRIVATE_FETCH_WAIT_S = 4.0  # Twilio's fetch of a call's own prompt waits this long for its render (~15 ms)


def conversations() -> Conversations:
    return current_app.extensions["ivr.conversations"]


def locale_param() -> str:
    """Locale of this hotline number: `?locale=de-DE` on the webhook URL configured in Twilio."""
    return request.args.get("locale") or current_app.config["IVR_SETTINGS"].locale


def audio_url(text: str, locale: str, *, public: bool = False) -> str | None:
    """URL of the on-prem rendered prompt for <Play>, or None to use <Say>. A grammar prompt, or a `public` text
    (one that names nothing of the caller), is a file on disk shared by every call: <Say>ed at once while it renders
    the first time. A call's own text (a balance, a whisper) is rendered for that call; see `ready_private`."""
    if not plays_prompts():
        return None
    settings, speech = current_app.config["IVR_SETTINGS"], current_app.extensions["ivr.speech"]
    base = settings.public_url.rstrip("/")
    if public or speech.prompts.is_public(text, locale):
        path = speech.prompts.ready(text, locale)
        return f"{base}/voice/audio/{path.stem}.wav" if path else None
    call = request.args.get("call") or request.form.get("CallSid", "")  # the caller's call (whispers name it)
    key = speech.prompts.ready_private(call, text, locale) if call_sid_is_valid(call) and call else None
    if key is None:
        return None
    query = urlencode({"call": call, "token": private_token(call, key)})
    return f"{base}/voice/audio/private/{key}.wav?{query}"


def plays_prompts() -> bool:
    """Whether TwiML <Play>s on-prem rendered prompts (IVR_GATHER_PROMPTS=play with a working renderer)."""
    return current_app.config["IVR_SETTINGS"].gather_prompts == "play" and current_app.extensions["ivr.speech"].tts


def private_token(call: str, key: str) -> str:
    """Who may fetch a call's private prompt: whoever got its URL from us (Twilio), nobody who guesses the text."""
    secret = current_app.config["IVR_SETTINGS"].twilio_auth_token.encode()
    return hmac.new(secret, f"{call}/{key}".encode(), hashlib.sha256).hexdigest()[:32]


def player(locale: str, *, public: bool = False) -> twiml.AudioUrl:
    return lambda text: audio_url(text, locale, public=public)


def render(reply: Reply) -> str:
    if any(isinstance(action, Transfer) for action in reply.actions):
        prepare_whisper(request.form.get("CallSid", ""), reply.locale)
    return twiml.render(reply.actions, locale=reply.locale, turn=reply.turn, audio_url=player(reply.locale))


def prepare_whisper(call_sid: str, locale: str) -> None:
    """The agent's whisper is known once the caller is queued (the context is stored before a transfer renders)
    and asked for when an agent answers, seconds later: rendered now, in the background, it is ready by then. Only
    a head start: whatever fails here, the transfer goes on (`/voice/whisper` renders or <Say>s it then)."""
    if not plays_prompts() or not call_sid_is_valid(call_sid):
        return
    if getattr(current_app.extensions["ivr.store"].redis, "circuit_open", False):  # a fault transfer: no context
        return
    try:
        text, locale = conversations().whisper_text(call_sid, locale=locale)
        current_app.extensions["ivr.speech"].prompts.render_later(text, locale, call=call_sid)
    except Exception:
        log.warning("call %s: whisper not rendered ahead (rendered when the agent answers)", call_sid)


def xml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def voice_webhook(view=None, *, on_fault: Callable[[str], str] | None = None):
    """Signed, idempotent for Twilio's retries, and never silent: any fault transfers the caller to a human, or,
    where the call is not in the dialog (on hold, leaving a queue), does what fits there (`on_fault`)."""
    if view is None:
        return functools.partial(voice_webhook, on_fault=on_fault)

    @twilio_signed
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        call_sid = request.form.get("CallSid", "")
        if not call_sid:
            log.warning("400 %s: signed but without a CallSid", request.path)
            abort(400)
        key = request_key()
        replies: CallStore = current_app.extensions["ivr.store"]
        try:
            with replies.batch():  # the claim reads the call's state; the webhook's writes go in one round trip
                if not replies.claim_request(call_sid, key):  # a copy of this request is (or was) answered elsewhere
                    log.info("call %s: repeated %s answered with the first copy's reply", call_sid, request.path)
                    body = replies.wait_for_reply(call_sid, key, timeout_s=REPLY_WAIT_S)
                    return xml(body if body is not None else fault_reply(call_sid, reason="fault"))
                body = view(*args, **kwargs)
                replies.save_reply(call_sid, key, body)
        except Exception as exc:
            if isinstance(exc, FAILURES):  # Redis: the breaker logs the cause once; no traceback per webhook
                log.warning("call %s: %s in %s, answering so the caller still reaches a human", call_sid, exc,
                            request.path)
            else:
                log.exception("call %s: fault in %s, answering so the caller still reaches a human", call_sid,
                              request.path)
            try:  # its writes and its reply in one round trip, or during an outage one spool write (one fsync)
                with replies.batch():
                    body = on_fault(call_sid) if on_fault else fault_reply(call_sid, reason="fault")
                    replies.save_reply(call_sid, key, body)  # a retry of this request gets the same answer
            except Exception:
                log.warning("call %s: the fault answer could not be stored for retries", call_sid)
        return xml(body)

    return wrapper


@bp.before_app_request
def bind_call_to_logs() -> None:
    """Every log line of this request names its call (or "-"), whichever thread served an earlier one."""
    call = request.form.get("CallSid") or request.args.get("call") or ""
    logs.call_sid.set("-" if not call else call if call_sid_is_valid(call) else "invalid")
    locale = request.args.get("locale") or ""
    logs.locale.set("-" if not locale else locale if len(locale) <= 16 and locale.replace("-", "").isalnum()
                    else "invalid")


def request_key() -> str:
    """Twilio's identity of a request: path, query and each parameter once (a copy with a parameter repeated is
    the same request, and must not advance the dialog again)."""
    items = sorted(set(request.form.items(multi=True)))
    return hashlib.sha1(repr((request.path, request.query_string, items)).encode()).hexdigest()


def fault_reply(call_sid: str, *, reason: str) -> str:
    locale = locale_param()
    try:
        return render(conversations().fail(call_sid, locale=locale, reason=reason))
    except Exception:  # even the grammar is gone: a fixed English apology and the default queue
        log.exception("call %s: cannot build the fault transfer, using the built-in one", call_sid)
        return twiml.safe_transfer("Sorry, something went wrong. Connecting you to an agent.", "general", locale=locale)


@bp.post("/incoming")
@voice_webhook
def incoming() -> str:
    """A new call: greet with the AI disclosure and listen (stream mode: over the Media Stream)."""
    caller, call_sid = params.text("From", limit=64), request.form["CallSid"]
    speech, store = current_app.extensions["ivr.speech"], current_app.extensions["ivr.store"]
    if speech.stream_mode and speech.overloaded():
        log.warning("stream recognition %.1f s behind real time (IVR_MAX_STREAM_LAG_MS): this call uses Gather mode",
                    speech.lag_s())
    elif speech.stream_mode:
        now = conversations().clock()
        if store.admit_stream(call_sid, limit=speech.max_streams, now=now):
            key = current_app.config["IVR_SETTINGS"].twilio_auth_token
            parameters = {"caller": caller, "locale": locale_param(), **token_parameters(call_sid, key=key, now=now)}
            return twiml.connect_stream(stream_url(), parameters, locale=locale_param())
        log.warning("%d stream calls admitted (IVR_MAX_STREAMS): this call uses Gather mode", speech.max_streams)
    return render(conversations().begin(request.form["CallSid"], caller=caller, locale=locale_param()))


@bp.post("/gather")
@voice_webhook
def gather() -> str:
    """The caller's answer to a <Gather>: speech, keys or nothing."""
    call_sid = request.form["CallSid"]
    utterance = Utterance(text=params.text("SpeechResult"), confidence=params.confidence(), digits=params.keys())
    try:
        return render(conversations().respond(call_sid, utterance))
    except UnknownCall:
        log.warning("call %s: unknown or expired CallSid at /voice/gather, transferring", call_sid)
        return fault_reply(call_sid, reason="unknown_call")


@bp.post("/after-stream")
@voice_webhook
def after_stream() -> str:
    """The <Connect action>: the stream closed, so carry out what the dialog decided (transfer or goodbye)."""
    call_sid = request.form["CallSid"]
    try:
        return render(conversations().after_stream(call_sid, locale=locale_param()))
    except UnknownCall:
        log.error("call %s: stream ended for an unknown call, transferring", call_sid)
        return fault_reply(call_sid, reason="stream_ended")


@bp.get("/audio/<key>.wav")
def audio(key: str):
    """Rendered prompts for <Play> (Twilio fetches them). Keys are content hashes."""
    if not key.isalnum():
        abort(404)
    path = current_app.extensions["ivr.speech"].prompts.local_or_shared(key)
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/wav", max_age=86400)


@bp.get("/audio/private/<key>.wav")
def private_audio(key: str):
    """A call's private prompt (a balance, a whisper), from memory, with the per-call token; gone at hang-up."""
    call, token = request.args.get("call", ""), request.args.get("token", "")
    if not key.isalnum() or not hmac.compare_digest(token.encode(), private_token(call, key).encode()):
        log.warning("403 private prompt %s for %.40r: bad or missing token", key[:24], call)
        abort(403)
    prompts = current_app.extensions["ivr.speech"].prompts
    audio = prompts.private_wav_when_ready(call, key, timeout_s=PRIVATE_FETCH_WAIT_S)
    if audio is None:
        log.warning("404 private prompt %s of %s: dropped at hang-up, failed, or not rendered within %.0f s (Twilio "
                    "skips it)", key[:24], call, PRIVATE_FETCH_WAIT_S)
        abort(404)
    return Response(audio, mimetype="audio/wav", headers={"Cache-Control": "private, no-store"})


@bp.post("/wait")
@twilio_signed
def wait() -> Response:
    """Hold announcement while queued: position and estimated wait (Twilio repeats this URL); past the queue's
    max_wait_before_callback, a keypress for a call back instead."""
    locale, queue = locale_param(), request.args.get("queue", "")
    try:  # the caller is in the queue now: ring an agent (never at the cost of the hold audio)
        current_app.extensions["ivr.desk"].caller_waiting(request.form.get("CallSid", ""), queue=queue, locale=locale,
                                                          queue_sid=params.text("QueueSid", limit=64))
    except Exception:
        log.exception("queue %s: no agent rung for this caller now (the sweep tries again)", queue)
    hold = conversations().hold(locale=locale, queue=queue, position=params.integer("QueuePosition", 1) or 1,
                                avg_queue_time_s=params.integer("AvgQueueTime"), waited_s=params.integer("QueueTime"))
    action = twiml.url("/voice/wait-callback", queue=queue, locale=locale)
    music = f"{current_app.config['IVR_SETTINGS'].public_url.rstrip('/')}/voice/hold-music.wav"
    return xml(twiml.hold(hold.announcement, hold.callback_offer, hold.comfort, callback_action=action, music=music,
                          locale=locale, audio_url=player(locale, public=True)))  # a position and a wait: public


@bp.get("/hold-music.wav")
def hold_music() -> Response:
    """Music on hold for <Play> (generated, so no recording's licence applies); Twilio caches it."""
    response = Response(hold_music_wav(), mimetype="audio/wav")
    response.cache_control.max_age = 86400
    return response


def keep_holding(call_sid: str) -> str:
    """A fault while on hold: stay in the queue with the hold announcements (never a second <Enqueue>)."""
    return twiml.redirect(twiml.url("/voice/wait", queue=request.args.get("queue", ""), locale=locale_param()))


def leave_quietly_unless_failed(call_sid: str) -> str:
    """A fault after the caller left the queue: a bridged or finished call ends quietly; a failed queue → a human."""
    if params.text("QueueResult", limit=32) in ("bridged", "bridging-in-process", "hangup", "leave", "redirected"):
        return twiml.empty()
    return fault_reply(call_sid, reason="queue_error")


@bp.post("/wait-callback")
@voice_webhook(on_fault=keep_holding)
def wait_callback() -> str:
    """The caller on hold pressed a key: 1 leaves the queue with a callback request, anything else keeps waiting."""
    locale, queue = locale_param(), request.args.get("queue", "")
    if params.keys() != "1":
        return twiml.redirect(twiml.url("/voice/wait", queue=queue, locale=locale))
    goodbye = conversations().request_callback(request.form["CallSid"], number=params.text("From", limit=64),
                                               queue=queue, locale=locale)
    return twiml.leave_with(goodbye, locale=locale, audio_url=player(locale))


@bp.post("/queue-exit")
@voice_webhook(on_fault=leave_quietly_unless_failed)
def queue_exit() -> str:
    """The caller left the queue. If Twilio could not queue them, try the default queue rather than drop them."""
    result, call_sid, queue = params.text("QueueResult", limit=32), request.form["CallSid"], request.args.get("queue")
    conversations().left_queue(call_sid, queue=queue or "", result=result, waited_s=params.integer("QueueTime"))
    if result in ("error", "system-error"):
        log.error("call %s: queue %s failed (%s)", call_sid, queue, result)
        return fault_reply(call_sid, reason="queue_error")
    return twiml.empty()


@bp.post("/whisper")
@twilio_signed
def whisper() -> Response:
    """Spoken to the agent before the bridge: the one-sentence summary of what the caller already said."""
    call_sid = request.args.get("call") or request.form.get("CallSid", "")
    text, locale = conversations().whisper_text(call_sid, locale=locale_param())
    return xml(twiml.announce(text, locale=locale, audio_url=player(locale)))


@bp.post("/status")
@twilio_signed
def status() -> tuple[str, int]:
    """Call status callback: record how the call ended (for analytics: abandoned vs. transferred vs. served)."""
    call_sid = request.form.get("CallSid", "")
    if request.form.get("CallStatus") in ("completed", "busy", "failed", "no-answer", "canceled"):
        current_app.extensions["ivr.speech"].prompts.forget(call_sid)  # its private prompts (a balance…)
        try:
            current_app.extensions["ivr.store"].call_ended(call_sid)  # and its stream slot, if it had one
        except Exception:
            log.warning("call %s: not taken off the calls in progress nor its stream slot freed (both go stale "
                        "later)", call_sid)
        try:
            current_app.extensions["ivr.desk"].caller_gone(call_sid)  # left the queue, or an agent rang for nothing
        except Exception:
            log.exception("call %s: not taken off the waiting list", call_sid)
    conversations().note(CallEvent(call_sid, "status", conversations().clock(), {
        "status": params.text("CallStatus", limit=32), "duration": params.integer("CallDuration")}))
    return "", 204
