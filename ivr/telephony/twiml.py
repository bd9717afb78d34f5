"""TwiML builders: small pure functions from dialog Actions to Twilio's XML (twilio.twiml.voice_response)."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from urllib.parse import urlencode

from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

from ivr.types import Action, Hangup, Listen, Say, Transfer


def url(path: str, **query: str) -> str:
    return f"{path}?{urlencode(query)}" if query else path


AudioUrl = Callable[[str], str | None]


def speak(parent, text: str, *, locale: str, audio_url: AudioUrl | None) -> None:
    """<Play> the on-prem rendered prompt when there is one, else <Say>."""
    url_ = audio_url(text) if audio_url else None
    if url_:
        parent.play(url_)
    else:
        parent.say(text, language=locale)


def render(actions: Sequence[Action], *, locale: str, turn: int = 0, audio_url: AudioUrl | None = None) -> str:
    """Turn one dialog step into TwiML. Prompts right before a Listen go inside <Gather> so callers can barge in."""
    response = VoiceResponse()
    pending: list[Say] = []
    for action in actions:
        if isinstance(action, Say):
            pending.append(action)
            continue
        if isinstance(action, Listen):
            interruptible = [s for s in pending if s.barge_in]
            for say in (s for s in pending if not s.barge_in):
                speak(response, say.text, locale=locale, audio_url=audio_url)
            response.append(gather(action, interruptible, locale=locale, turn=turn, audio_url=audio_url))
        else:
            for say in pending:
                speak(response, say.text, locale=locale, audio_url=audio_url)
            if isinstance(action, Transfer):
                response.enqueue(
                    action.queue,
                    wait_url=url("/voice/wait", queue=action.queue, locale=locale),
                    action=url("/voice/queue-exit", queue=action.queue, locale=locale),
                )
            elif isinstance(action, Hangup):
                response.hangup()
        pending = []
    for say in pending:
        speak(response, say.text, locale=locale, audio_url=audio_url)
    return str(response)


SPEECH_MODELS = {"intent": "phone_call", "digits": "numbers_and_commands"}  # yes/no and choices: Twilio's default


def gather(listen: Listen, prompts: Sequence[Say], *, locale: str, turn: int, audio_url: AudioUrl | None) -> Gather:
    """<Gather input="speech dtmf"> with grammar hints; an empty result still posts back (no-input handling).
    The turn number in the action URL tells a retried request (same turn) from a new, identical answer. With a
    speechModel, speechTimeout must be whole seconds (Twilio warning 13335:
    https://www.twilio.com/docs/api/errors/13335); without one, "auto"."""
    model = SPEECH_MODELS.get(listen.expect)
    element = Gather(
        input="speech dtmf",
        action=url("/voice/gather", turn=str(turn)),
        method="POST",
        language=locale,
        hints=", ".join(listen.hints) if listen.hints else None,
        speech_timeout=max(1, math.ceil(listen.end_silence_ms / 1000)) if model else "auto",
        timeout=listen.timeout_s,
        num_digits=listen.max_digits,
        finish_on_key="#",
        action_on_empty_result=True,
        speech_model=model,
    )
    for say in prompts:
        speak(element, say.text, locale=locale, audio_url=audio_url)
    return element


def connect_stream(stream_url: str, parameters: dict[str, str], *, locale: str) -> str:
    """Stream mode: a bidirectional Media Stream; when the service closes it, Twilio requests the action URL (with
    the locale, so even a fault after the stream speaks the caller's language). Per-call data travels as
    <Parameter>s because Twilio drops query strings from stream URLs."""
    response = VoiceResponse()
    connect = Connect(action=url("/voice/after-stream", locale=locale))
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def safe_transfer(message: str, queue: str, *, locale: str) -> str:
    """The answer when anything is wrong: apologise and put the caller in a human queue."""
    return render([Say(message), Transfer(queue, reason="fault")], locale=locale)


def announce(text: str, *, locale: str, audio_url: AudioUrl | None = None, pause_s: int = 0) -> str:
    """A spoken message (hold announcement, whisper), optionally followed by silence for hold music."""
    response = VoiceResponse()
    speak(response, text, locale=locale, audio_url=audio_url)
    if pause_s:
        response.pause(length=pause_s)
    return str(response)


def hold(announcement: str, offer: str | None, comfort: str, *, callback_action: str, music: str, locale: str,
         audio_url: AudioUrl | None = None) -> str:
    """waitUrl TwiML: position and wait (after a long wait, a keypress for a call back instead), then music with a
    comfort message between; Twilio plays it again when it ends, until an agent takes the call."""
    response = VoiceResponse()
    speak(response, announcement, locale=locale, audio_url=audio_url)
    if offer:
        choice = Gather(input="dtmf", num_digits=1, timeout=6, action=callback_action, method="POST")
        speak(choice, offer, locale=locale, audio_url=audio_url)
        response.append(choice)
    response.play(music)
    speak(response, comfort, locale=locale, audio_url=audio_url)
    response.play(music)
    return str(response)


def leave_with(message: str, *, locale: str, audio_url: AudioUrl | None = None) -> str:
    """Say goodbye and <Leave> the queue (Twilio then requests the <Enqueue action>)."""
    response = VoiceResponse()
    speak(response, message, locale=locale, audio_url=audio_url)
    response.leave()
    return str(response)


def redirect(target: str) -> str:
    response = VoiceResponse()
    response.redirect(target)
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
