"""The agent's leg (placed by the desk through the REST API): whisper, then the conference named after the caller's
CallSid; the caller's side of the bridge; the leg's status callback. TwiML out, signatures checked."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr.desk import AgentDesk
from ivr.telephony import params, twiml
from ivr.telephony.security import twilio_signed
from ivr.telephony.webhooks import conversations, locale_param, player, xml
from ivr.types import Hangup, Say, Transfer

log = logging.getLogger(__name__)
bp = Blueprint("agent_leg", __name__, url_prefix="/voice")
GONE = {"en": "This caller is no longer waiting for you: they hung up, or a colleague took the call. Thank you.",
        "de": "Dieser Anrufer wartet nicht mehr auf Sie: Er hat aufgelegt, oder ein Kollege hat übernommen. Danke."}


def desk() -> AgentDesk:
    return current_app.extensions["ivr.desk"]


def conference(call: str, *, caller: bool) -> Dial:
    """The conference of one caller: it starts when the agent enters; the caller leaving ends it, the agent
    leaving does not end the caller's call."""
    dial = Dial()
    music = f"{current_app.config['IVR_SETTINGS'].public_url.rstrip('/')}/voice/hold-music.wav"
    dial.conference(call, start_conference_on_enter=not caller, end_conference_on_exit=caller, beep=False,
                    wait_url=music, wait_method="GET")
    return dial


@bp.post("/agent-join")
@twilio_signed
def agent_join() -> Response:
    """The agent answered: the whisper (what the caller already said), then the bridge."""
    call, agent, locale = request.args.get("call", ""), request.args.get("agent", ""), locale_param()
    callback, transfer = request.args.get("callback") == "1", request.args.get("transfer") == "1"
    response = VoiceResponse()
    if params.text("AnsweredBy", limit=32).startswith(("machine", "fax")):  # voicemail: ring the next agent
        log.info("call %s: agent %s's voicemail answered; treated as no answer", call, agent)
        response.hangup()
        return xml(str(response))
    if not desk().answered(call, agent, callback=callback, transfer=transfer):
        twiml.speak(response, GONE.get(locale[:2], GONE["en"]), locale=locale, audio_url=player(locale))
        response.hangup()
        return xml(str(response))
    text, locale = conversations().whisper_text(call, locale=locale)
    twiml.speak(response, text, locale=locale, audio_url=player(locale))
    flags = {"callback": "1"} if callback else {"transfer": "1"} if transfer else {}
    response.redirect(twiml.url("/voice/agent-bridge", call=call, agent=agent, locale=locale, **flags))
    return xml(str(response))


@bp.post("/agent-bridge")
@twilio_signed
def agent_bridge() -> Response:
    """After the whisper: bring the caller in (out of the queue, or dialled for a call-back) and put the agent in the
    caller's conference."""
    call, agent, locale = request.args.get("call", ""), request.args.get("agent", ""), locale_param()
    response = VoiceResponse()
    if request.args.get("callback") == "1":
        joined = desk().dial_customer(call, agent)
    elif request.args.get("transfer") == "1":
        joined = desk().join_transfer(call, agent)  # the caller is already in the conference, on hold
    else:
        joined = desk().bridge(call, agent)
    if not joined:
        twiml.speak(response, GONE.get(locale[:2], GONE["en"]), locale=locale, audio_url=player(locale))
        response.hangup()
        return xml(str(response))
    response.append(conference(call, caller=False))
    return xml(str(response))


@bp.post("/caller-join")
@twilio_signed
def caller_join() -> Response:
    """The caller, taken out of the queue, joins the conference named after their CallSid."""
    response = VoiceResponse()
    response.append(conference(request.args.get("call", ""), caller=True))
    return xml(str(response))


@bp.post("/agent-left")
@twilio_signed
def agent_left() -> Response:
    """The agent hung up first: the caller hears a goodbye instead of an empty conference."""
    locale = locale_param()
    return xml(twiml.render([Say(conversations().grammar(locale).prompts.goodbye), Hangup()], locale=locale,
                            audio_url=player(locale)))


@bp.post("/requeue")
@twilio_signed
def requeue() -> Response:
    """A cold transfer: the caller leaves the conference for a queue (hold audio, then the next agent)."""
    locale, queue = locale_param(), request.args.get("queue", "")
    grammar = conversations().grammar(locale)
    target = queue if queue in grammar.queues else grammar.default_queue
    return xml(twiml.render([Transfer(target, reason="transfer")], locale=locale, audio_url=player(locale)))


@bp.post("/customer-join")
@twilio_signed
def customer_join() -> Response:
    """A call-back's customer answered: say who is calling, then join the agent in the conference."""
    locale = locale_param()
    response = VoiceResponse()
    intro = conversations().grammar(locale).prompts.callback_intro
    twiml.speak(response, intro, locale=locale, audio_url=player(locale))
    response.append(conference(request.args.get("call", ""), caller=True))
    return xml(str(response))


@bp.post("/callback-status")
@twilio_signed
def callback_status() -> tuple[str, int]:
    """The customer's leg of a call-back ended: answered, or not (then it is dialled again later)."""
    call, agent = request.args.get("call", ""), request.args.get("agent", "")
    try:
        desk().callback_ended(call, agent, params.text("CallStatus", limit=32))
    except Exception:
        log.exception("call-back %s: customer leg status not processed", call)
    return "", 204


@bp.post("/agent-status")
@twilio_signed
def agent_status() -> tuple[str, int]:
    """The agent's leg ended (answered and finished, or not answered, busy, declined, failed)."""
    call, agent = request.args.get("call", ""), request.args.get("agent", "")
    try:
        status = params.text("CallStatus", limit=32)
        if request.args.get("transfer") == "1":
            desk().transfer_leg_ended(call, agent, status)
        else:
            desk().leg_ended(call, agent, status, locale=locale_param())
    except Exception:
        log.exception("call %s: agent %s leg status not processed (the sweep rings again)", call, agent)
    return "", 204
