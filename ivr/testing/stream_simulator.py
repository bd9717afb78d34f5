"""Twilio Media Streams simulator: drives a call over the WebSocket as Twilio does (signed upgrade, `connected`,
`start` with <Parameter>s, 20 ms base64 μ-law `media` frames, `dtmf`, `stop`), plays the service's audio back on a
simulated clock (echoing each `mark` when playback reaches it, dropping audio on `clear`), records it to a WAV,
then follows the <Connect action> TwiML like the webhook simulator."""
from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simple_websocket
from werkzeug.serving import make_server

from ivr.speech.audio import SILENCE, frames, ulaw_to_pcm, wav_to_ulaw, write_wav
from ivr.testing.simulator import CallRecord, TwilioSimulator, scripted_caller


class LiveServer:
    """The app on a real socket on 127.0.0.1 (WebSockets need one), in a background thread. Its public URL is
    set to that address, as IVR_PUBLIC_URL is in production, so signed URLs do not depend on Host headers."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        app.config["IVR_SETTINGS"] = app.config["IVR_SETTINGS"].replace(public_url=self.url)
        # A short poll interval: shutdown() waits for the serving loop to look again (0.5 s by default).
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


@dataclass(frozen=True)
class StreamTurn:
    """What the caller does once the service has spoken: speak real audio (8 kHz μ-law), key digits, or keep
    quiet. With `barge_in_ms` the caller starts speaking that long into the prompt instead of after it."""

    audio: bytes = b""
    dtmf: str = ""
    barge_in_ms: int | None = None

    @classmethod
    def from_wav(cls, path: str | Path, *, barge_in_ms: int | None = None) -> StreamTurn:
        return cls(audio=wav_to_ulaw(path), barge_in_ms=barge_in_ms)


@dataclass
class StreamRecord(CallRecord):
    played: bytearray = field(default_factory=bytearray)  # what the caller heard, μ-law
    marks_echoed: int = 0
    clears: int = 0
    reply_latency_ms: list[float] = field(default_factory=list)  # end of caller audio → first reply frame
    clear_latency_ms: list[float] = field(default_factory=list)  # caller speech onset in a prompt → clear
    frames_heard: int = 0  # prompt frames received
    frames_late: int = 0  # …that arrived after a playback clock started at the prompt's first frame needed them

    def save(self, path: str | Path) -> None:
        write_wav(path, ulaw_to_pcm(bytes(self.played)))


class StreamCaller:
    """One simulated call over the stream. `realtime` paces caller frames at 20 ms; otherwise it runs as fast as
    the service answers (waiting on the socket, never sleeping)."""

    def __init__(self, simulator: TwilioSimulator, base_url: str, turns: list[StreamTurn], *, realtime: bool = False,
                 max_seconds: float = 120.0):
        self.simulator = simulator
        self.base_url = base_url.rstrip("/")
        self.turns = deque(turns)
        self.realtime = realtime
        self.max_frames = int(max_seconds * 50)
        self.inbox: queue.Queue = queue.Queue()
        self.playback: deque = deque()  # ("audio", bytes) | ("mark", name)
        self.speaking: deque[bytes] = deque()
        self.prompt_frames = 0  # frames of the current prompt played so far
        self.heard_since_turn = False
        self.last_speech_at: float | None = None
        self.barge_started: float | None = None  # when the barging speech began (monotonic)
        self.sent = 0
        self.clock_start: float | None = None  # the playback clock of the prompt being received (wire arrival)
        self.clock_frames = 0

    def run(self, *, from_: str = "+15550100001", locale: str | None = None) -> StreamRecord:
        call_sid = "CA" + uuid.uuid4().hex
        record = StreamRecord(call_sid)
        base = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": from_, "To": "+15550009999",
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        query = f"?locale={locale}" if locale else ""
        answer = self.simulator.post(record, f"/voice/incoming{query}", {**base, "CallStatus": "ringing"})
        connect, stream = ET.fromstring(answer).find("./Connect"), ET.fromstring(answer).find("./Connect/Stream")
        if connect is None or stream is None:
            raise RuntimeError("the service did not answer with <Connect><Stream> (is stream mode on?)")
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        self.converse(stream.get("url", ""), call_sid, parameters, record)
        action = connect.get("action", "/voice/after-stream")
        body = self.simulator.post(record, action, base)
        while (next_request := self.simulator.execute(record, body, scripted_caller([]), base)) is not None:
            body = self.simulator.post(record, *next_request)
        self.simulator.hang_up(record, base)
        return record

    def converse(self, url: str, call_sid: str, parameters: dict, record: StreamRecord) -> None:
        signature = self.simulator.validator.compute_signature(url, {})
        ws = simple_websocket.Client.connect(url, headers={"X-Twilio-Signature": signature})
        reader = threading.Thread(target=self._read, args=(ws,), daemon=True)
        reader.start()
        stream_sid = "MZ" + uuid.uuid4().hex
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
            "streamSid": stream_sid, "accountSid": "AC" + "0" * 32, "callSid": call_sid, "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        started = time.monotonic()
        try:
            while self.sent < self.max_frames and self.tick(ws, stream_sid, record):
                if self.realtime:
                    time.sleep(max(0.0, started + self.sent * 0.02 - time.monotonic()))
        except (simple_websocket.ConnectionClosed, OSError):  # the service closed the stream
            pass
        if ws.connected:
            ws.send(json.dumps({"event": "stop", "streamSid": stream_sid, "stop": {"callSid": call_sid}}))
            ws.close()

    def _read(self, ws) -> None:
        try:
            while True:
                message = ws.receive()
                if message is None:
                    break
                self.inbox.put((time.monotonic(), json.loads(message)))  # the wire-level arrival time
        except simple_websocket.ConnectionClosed:
            pass
        self.inbox.put((time.monotonic(), None))

    def tick(self, ws, stream_sid: str, record: StreamRecord) -> bool:
        """One 20 ms step: take the service's messages, play one frame, send one caller frame."""
        idle = not self.playback and not self.speaking
        wait = 0.005 if idle and not self.realtime else 0.0
        while True:
            try:
                message = self.inbox.get(timeout=wait) if wait else self.inbox.get_nowait()
            except queue.Empty:
                break
            wait = 0.0
            if message[1] is None:
                return False  # the service closed the stream: transfer or goodbye
            self.receive(message[0], message[1], record)
        self.play_one_frame(ws, stream_sid, record)
        self.caller_acts(ws, stream_sid)
        payload = self.speaking.popleft() if self.speaking else SILENCE
        if not self.speaking and payload is not SILENCE:  # the caller's last frame of speech
            self.last_speech_at = time.monotonic()
        ws.send(json.dumps({"event": "media", "streamSid": stream_sid, "media": {
            "track": "inbound", "chunk": str(self.sent + 1), "timestamp": str(self.sent * 20),
            "payload": base64.b64encode(payload).decode()}}))
        self.sent += 1
        return True

    def receive(self, at: float, message: dict, record: StreamRecord) -> None:
        event = message.get("event")
        if event == "media":
            if self.last_speech_at is not None:
                record.reply_latency_ms.append((at - self.last_speech_at) * 1000)
                self.last_speech_at = None
            if self.clock_start is None:  # a prompt starts playing the moment its first frame arrives
                self.clock_start, self.clock_frames = at, 0
            record.frames_heard += 1
            record.frames_late += at > self.clock_start + self.clock_frames * 0.02 + 0.001
            self.clock_frames += 1
            self.playback.append(("audio", base64.b64decode(message["media"]["payload"])))
        elif event == "mark":
            self.clock_start = None
            self.playback.append(("mark", message["mark"]["name"]))
        elif event == "clear":
            self.simulator.echo("[service sent clear: caller barged in]")
            record.clears += 1
            self.clock_start = None
            if self.barge_started is not None:
                record.clear_latency_ms.append((at - self.barge_started) * 1000)
                self.barge_started = None
            marks = [item for item in self.playback if item[0] == "mark"]
            self.playback = deque(marks)  # audio dropped; Twilio still returns the marks

    def play_one_frame(self, ws, stream_sid: str, record: StreamRecord) -> None:
        while self.playback and self.playback[0][0] == "mark":
            name = self.playback.popleft()[1]
            ws.send(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}))
            self.simulator.echo(f"IVR:    [prompt {name}: {self.prompt_frames * 0.02:.1f} s of audio played]")
            record.marks_echoed += 1
            self.heard_since_turn = True
            self.prompt_frames = 0
        if self.playback:
            record.played.extend(self.playback.popleft()[1])
            self.prompt_frames += 1

    def caller_acts(self, ws, stream_sid: str) -> None:
        if self.speaking or not self.turns:
            return
        turn = self.turns[0]
        if turn.barge_in_ms is not None:  # a prompt is playing: audio heard since the last mark
            ready = self.prompt_frames * 20 >= turn.barge_in_ms
        else:
            ready = self.heard_since_turn and not self.playback
        if not ready:
            return
        self.turns.popleft()
        self.heard_since_turn = False
        if turn.barge_in_ms is not None:  # measured from where the recording's speech begins
            self.barge_started = time.monotonic() + speech_onset(turn.audio) * 0.02 * self.realtime
        what = f"keys {turn.dtmf}" if turn.dtmf else f"{len(turn.audio) / 8000:.1f} s of audio"
        self.simulator.echo(f"caller: [{what}{' (barging in)' if turn.barge_in_ms is not None else ''}]")
        if turn.dtmf:
            for digit in turn.dtmf:
                ws.send(json.dumps({"event": "dtmf", "streamSid": stream_sid, "dtmf": {"track": "inbound_track",
                                                                                       "digit": digit}}))
            self.last_speech_at = time.monotonic()
        else:
            self.speaking.extend(frames(turn.audio))


def speech_onset(ulaw: bytes) -> int:
    """Index of the first 20 ms frame of speech in a recording (its leading silence skipped)."""
    from ivr.speech.audio import VoiceActivity

    vad = VoiceActivity()
    for index, frame in enumerate(frames(ulaw)):
        if vad.update(ulaw_to_pcm(frame)):
            return max(0, index - vad.onset + 1)
    return 0


def trailing_silence_ms(ulaw: bytes) -> int:
    """How long a recording stays quiet after its last loud frame (the caller's speech ended that much earlier)."""
    from ivr.speech.audio import VoiceActivity

    vad, last, count = VoiceActivity(), 0, 0
    for index, frame in enumerate(frames(ulaw)):
        vad.update(ulaw_to_pcm(frame))
        last = index if vad.loud_run else last
        count = index + 1
    return (count - 1 - last) * 20


def silence(seconds: float) -> StreamTurn:
    """A caller who says nothing (the service's no-input timeout must fire)."""
    return StreamTurn(audio=SILENCE * int(seconds * 50))


def tone_speech(seconds: float = 1.0) -> bytes:
    """A loud voiced signal, for tests that need "speech" without words (the scripted recogniser supplies text)."""
    from ivr.speech.audio import pcm_to_ulaw

    t = np.arange(int(8000 * seconds)) / 8000
    return pcm_to_ulaw((np.sin(2 * np.pi * 180 * t) * 9000 * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.int16))
