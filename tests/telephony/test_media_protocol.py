"""Twilio's Media Streams JSON ⇄ the project's frames, both ways."""
import base64

import numpy as np
import pytest

from ivr.speech.audio import SILENCE
from ivr.speech.frames import AudioIn, AudioOut, Clear, Keypad, Mark, PlaybackMark, Start, Stop
from ivr.telephony.media_protocol import MalformedMessage, decode, encode

PAYLOAD = base64.b64encode(SILENCE).decode()


def test_inbound_messages_become_frames():
    start = decode({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1",
                                                "customParameters": {"caller": "+1555", "locale": "de-DE"}}})
    assert start == Start("MZ1", "CA1", {"caller": "+1555", "locale": "de-DE"})
    audio = decode({"event": "media", "media": {"track": "inbound", "payload": PAYLOAD}})
    assert isinstance(audio, AudioIn) and audio.pcm.dtype == np.int16 and len(audio.pcm) == 160
    assert decode({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}) == Keypad("5")
    assert decode({"event": "mark", "mark": {"name": "prompt-1"}}) == PlaybackMark("prompt-1")
    assert decode({"event": "stop", "stop": {"callSid": "CA1"}}) == Stop()


def test_messages_with_nothing_to_act_on_are_none():
    assert decode({"event": "connected", "protocol": "Call", "version": "1.0.0"}) is None
    assert decode({"event": "media", "media": {"track": "outbound", "payload": PAYLOAD}}) is None


@pytest.mark.parametrize("message", [{}, {"event": "media"}, {"event": "media", "media": {"payload": "***"}},
                                     {"event": "start", "start": {}}, {"event": "wat"}, {"event": "dtmf", "dtmf": 5}])
def test_malformed_messages_are_refused_with_a_reason(message):
    with pytest.raises(MalformedMessage):
        decode(message)


def test_outbound_frames_become_twilio_messages():
    assert encode(AudioOut(SILENCE), "MZ1") == {"event": "media", "streamSid": "MZ1", "media": {"payload": PAYLOAD}}
    assert encode(Mark("prompt-2"), "MZ1") == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "prompt-2"}}
    assert encode(Clear(), "MZ1") == {"event": "clear", "streamSid": "MZ1"}
