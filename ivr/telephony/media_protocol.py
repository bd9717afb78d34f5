"""Twilio Media Streams JSON ⇄ the project's own frames: the only place that knows Twilio's message shapes.
https://www.twilio.com/docs/voice/media-streams/websocket-messages"""
from __future__ import annotations

import base64
import binascii

from ivr.speech.audio import ulaw_to_pcm
from ivr.speech.frames import (
    AudioIn,
    AudioOut,
    InboundFrame,
    Keypad,
    Mark,
    OutboundFrame,
    PlaybackMark,
    Start,
    Stop,
)


class MalformedMessage(ValueError):
    """A message that is not what Twilio sends; the stream logs and skips it."""


def decode(message: dict) -> InboundFrame | None:
    """One inbound message → a frame; None for messages with nothing to act on (`connected`, outbound tracks)."""
    try:
        event = message["event"]
        if event == "media":
            media = message["media"]
            if media.get("track", "inbound") != "inbound":
                return None
            return AudioIn(ulaw_to_pcm(base64.b64decode(media["payload"], validate=True)))
        if event == "start":
            start = message["start"]
            return Start(start["streamSid"], start["callSid"], dict(start.get("customParameters") or {}))
        if event == "dtmf":
            return Keypad(str(message["dtmf"]["digit"]))
        if event == "mark":
            return PlaybackMark(str(message["mark"]["name"]))
        if event == "stop":
            return Stop()
        if event == "connected":
            return None
    except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise MalformedMessage(f"{type(exc).__name__}: {exc}") from None
    raise MalformedMessage(f"unknown event {message.get('event')!r}")


def encode(frame: OutboundFrame, stream_sid: str) -> dict:
    """One outbound frame → the message Twilio expects on this stream."""
    if isinstance(frame, AudioOut):
        return {"event": "media", "streamSid": stream_sid, "media": {"payload": base64.b64encode(frame.ulaw).decode()}}
    if isinstance(frame, Mark):
        return {"event": "mark", "streamSid": stream_sid, "mark": {"name": frame.name}}
    return {"event": "clear", "streamSid": stream_sid}
