"""Stream mode end to end: the real app on a socket, driven over the WebSocket by the Media Streams simulator,
with a scripted recogniser that returns text at the end of each utterance of real audio."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import simple_websocket
from twilio.request_validator import RequestValidator

from ivr.speech.audio import SILENCE, frames, ulaw_to_pcm
from ivr.speech.frames import AudioIn, AudioOut, Clear, Keypad, Mark, PlaybackMark, Start
from ivr.speech.recognizer import ScriptedRecognizer
from ivr.speech.tts import PromptAudio, ToneRenderer
from ivr.telephony.stream import MediaSession
from ivr.testing.simulator import TwilioSimulator
from ivr.testing.stream_simulator import LiveServer, StreamCaller, StreamTurn, silence, tone_speech
from tests.support import API_TOKEN, AUTH_TOKEN, EVAL, make_app, requires_eval

SPEECH_WAV = EVAL / "speechrecognition_test_audio" / "english.wav"


@pytest.fixture
def heard_texts():
    return []


@pytest.fixture
def stream_app(settings, redis_client, clock, heard_texts):
    """Stream mode; each call's recogniser returns the texts the test put in `heard_texts`."""
    factory = lambda locale: ScriptedRecognizer(heard_texts)  # noqa: E731
    return make_app(settings.replace(speech_mode="stream"), redis_client, clock,
                    IVR_RECOGNIZER_FACTORY=factory, IVR_PACED=False)


@pytest.fixture
def live(stream_app):
    with LiveServer(stream_app) as server:
        yield server


def call(live, turns, **kwargs):
    from ivr.testing.simulator import HttpTransport

    simulator = TwilioSimulator(HttpTransport(), auth_token=AUTH_TOKEN, base_url=live.url, api_token=API_TOKEN)
    return StreamCaller(simulator, live.url, turns).run(**kwargs)


def speech(seconds=1.0):
    return StreamTurn(audio=tone_speech(seconds))


def test_incoming_answers_with_a_bidirectional_stream(stream_app):
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper

    root = ET.fromstring(TwilioHelper(stream_app.test_client()).post("/voice/incoming?locale=de-DE", {
        "CallSid": "CA1", "From": "+4930123"}).get_data(as_text=True))
    stream = root.find("./Connect/Stream")
    assert root.find("./Connect").get("action") == "/voice/after-stream?locale=de-DE"  # the locale survives the stream
    assert stream.get("url") == "ws://localhost/media"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters.keys() == {"caller", "locale", "expires", "token"}  # the token lets only this call's stream in
    assert (parameters["caller"], parameters["locale"]) == ("+4930123", "de-DE")


@requires_eval
def test_real_audio_call_reaches_the_queue_with_context(live, heard_texts, tmp_path):
    heard_texts.append("my internet keeps dropping out")
    record = call(live, [StreamTurn.from_wav(SPEECH_WAV)])
    assert record.queue == "tech_support" and record.ended == "bridged to agent"
    assert record.context["intent"] == "internet_down"
    assert record.context["transcript"][1]["text"] == "my internet keeps dropping out"
    assert record.marks_echoed >= 2 and len(record.played) > 8000  # greeting and transfer prompt were heard
    record.save(tmp_path / "heard.wav")
    assert (tmp_path / "heard.wav").stat().st_size > 16000


def test_dtmf_on_the_stream_is_handled_like_speech(live):
    record = call(live, [StreamTurn(dtmf="3")])
    assert record.queue == "tech_support" and record.context["intent"] == "internet_down"


def test_zero_on_the_stream_reaches_an_agent(live):
    record = call(live, [StreamTurn(dtmf="0")])
    assert record.queue == "general" and record.context["agent_requested"] is True


def test_no_input_timeouts_reprompt_then_end_the_silent_line(live):
    record = call(live, [silence(6), silence(6), silence(6), silence(9)])
    assert record.queue is None and record.ended == "hangup"
    assert record.marks_echoed == 5  # greeting, two reprompts, the offer of a call back by key, the goodbye


def test_self_service_over_the_stream_then_goodbye(live, heard_texts):
    heard_texts.extend(["what's my balance", "one two three four five six seven eight", "no"])
    record = call(live, [speech(), speech(2.0), speech(0.5)])
    assert record.queue is None and record.ended == "hangup"


def test_barge_in_clears_the_prompt_and_the_answer_is_used(live, heard_texts):
    heard_texts.extend(["what's the weather like", "my internet is down"])
    record = call(live, [speech(), StreamTurn(audio=tone_speech(1.0), barge_in_ms=400)])
    assert record.clears == 1
    assert record.queue == "tech_support"


def test_streams_are_counted_and_overflow_calls_use_gather_mode(live, stream_app):
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper

    speech = stream_app.extensions["ivr.speech"]
    call(live, [StreamTurn(dtmf="0")])
    assert speech.wait_for_streams(0, timeout=30)  # the server closes its side independently of the client
    speech.max_streams = 0  # as if every stream slot were taken
    twilio = TwilioHelper(stream_app.test_client(), base_url=live.url)  # the live server's public URL
    root = ET.fromstring(twilio.post("/voice/incoming", {"CallSid": "CAover", "From": "+1555"}).get_data(as_text=True))
    assert root.find("./Connect") is None and root.find("./Gather") is not None


def test_unsigned_websocket_upgrade_is_refused(live):
    with pytest.raises(simple_websocket.ConnectionError):
        simple_websocket.Client.connect(live.url.replace("http", "ws") + "/media")


def test_recogniser_crash_mid_call_ends_at_a_human(settings, redis_client, clock):
    class Broken(ScriptedRecognizer):
        def feed(self, pcm):
            raise RuntimeError("decoder died")

    app = make_app(settings.replace(speech_mode="stream"), redis_client, clock,
                   IVR_RECOGNIZER_FACTORY=lambda locale: Broken(), IVR_PACED=False)
    with LiveServer(app) as server:
        record = call(server, [speech()])
    assert record.queue == "general" and record.context["reason"] == "speech_fault"


def test_redis_dropping_mid_stream_call_ends_at_a_human(settings, clock):
    import fakeredis

    from ivr.types import Utterance

    server = fakeredis.FakeServer()

    class RedisDropsNow(ScriptedRecognizer):
        def finish(self):
            server.connected = False  # the store goes away just as the caller finishes speaking
            return Utterance("my internet keeps dropping out")

    app = make_app(settings.replace(speech_mode="stream"), fakeredis.FakeRedis(server=server, decode_responses=True),
                   clock, IVR_RECOGNIZER_FACTORY=lambda locale: RedisDropsNow(), IVR_PACED=False)
    with LiveServer(app) as server_:
        record = call(server_, [speech()])
    assert record.queue == "general" and record.ended == "bridged to agent"
    assert len(record.played) > 16000  # greeting and the apology were played, not silence


# --- the session on its own: the receive thread never waits ----------------------------------------------


class Recorder:
    """The socket side: what the session sent, as frames."""

    def __init__(self):
        self.sent = []
        self.closed = False

    def send(self, frame):
        self.sent.append(frame)

    def close(self):
        self.closed = True

    def marks(self):
        return [f.name for f in self.sent if isinstance(f, Mark)]


@pytest.fixture
def pool():
    workers = ThreadPoolExecutor(4)
    yield workers
    workers.shutdown(wait=False, cancel_futures=True)


def open_session(app, recognizer, pool, tmp_path, recorder):
    prompts = PromptAudio(tmp_path / "prompts", ToneRenderer())
    media = MediaSession(app.extensions["ivr.conversations"], prompts, lambda locale: recognizer, recorder.send,
                         recorder.close, pool=pool, paced=False)
    media.on_frame(Start("MZ1", "CAs", {"caller": "+15550100001"}))
    settle(media)
    return media


def settle(media):
    """Wait (on events, not the clock) until the lane and the player are idle."""
    assert media.lane.settle(timeout=30)
    media.player.drain()


def ack_marks(media, recorder):
    for name in recorder.marks():
        media.on_frame(PlaybackMark(name))
    recorder.sent.clear()


def feed(media, payloads):
    for payload in payloads:
        media.on_frame(AudioIn(ulaw_to_pcm(payload)))


def test_clear_is_sent_on_the_frame_speech_is_detected(app, pool, tmp_path, heard_texts):
    recorder = Recorder()
    media = open_session(app, ScriptedRecognizer(["what's the weather like"]), pool, tmp_path, recorder)
    ack_marks(media, recorder)
    feed(media, frames(tone_speech(1.0)) + [SILENCE] * 60)  # a no-match turn: the reprompt is interruptible
    settle(media)
    assert [e for e, _ in media.events].count("utterance") == 1
    speech_start = media.turns.frame + 1
    fed = 0
    for frame in frames(tone_speech(0.5)):
        feed(media, [frame])
        fed += 1
        if any(isinstance(f, Clear) for f in recorder.sent):
            break
    assert fed == media.turns.vad.onset, "clear must go out on the frame the VAD detects speech"
    assert dict(media.events)["clear"] == speech_start + fed - 1


def test_speech_during_the_disclosure_does_not_interrupt_it(app, pool, tmp_path):
    recorder = Recorder()
    media = open_session(app, ScriptedRecognizer([]), pool, tmp_path, recorder)
    feed(media, frames(tone_speech(1.0)))
    assert not any(isinstance(f, Clear) for f in recorder.sent)


class Gate:
    """Holds a slow recogniser or backend until the test opens it, and says whether it was kept waiting."""

    def __init__(self):
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self):
        self.entered.set()
        assert self.opened.wait(timeout=30), "the test never opened the gate"


class SlowRecognizer(ScriptedRecognizer):
    def __init__(self, texts, gate):
        super().__init__(texts)
        self.gate = gate

    def finish(self):
        self.gate.hold()  # as slow as the test wants: far past the 300 ms of a loaded decoder
        return super().finish()


def test_frames_are_handled_on_time_while_recognition_and_the_backend_are_slow(settings, redis_client, clock,
                                                                             pool, tmp_path):
    """Every inbound frame is taken while a final result and a backend call block; the per-frame cost is printed."""
    from ivr.selfservice import ActionRegistry
    from ivr.types import SelfServiceResult

    recognizing, backend = Gate(), Gate()
    registry = ActionRegistry()
    registry.register("account_balance", lambda request: (backend.hold(), SelfServiceResult("Your balance is 5."))[1])
    registry.register("send_invoice_copy", lambda request: SelfServiceResult("sent"))
    app = make_app(settings, redis_client, clock, IVR_ACTIONS=registry)
    recorder = Recorder()
    media = open_session(app, SlowRecognizer(["what's my balance"], recognizing), pool, tmp_path, recorder)
    ack_marks(media, recorder)
    delays = []

    def timed_feed(payloads):
        for payload in payloads:
            started = time.perf_counter()
            feed(media, [payload])
            delays.append(time.perf_counter() - started)

    timed_feed(frames(tone_speech(1.0)) + [SILENCE] * 45)  # the turn ends: recognition starts and blocks
    assert recognizing.entered.wait(timeout=30)
    before = media.turns.frame
    timed_feed([SILENCE] * 250)  # 5 s of audio while the final result is pending
    assert media.turns.frame == before + 250 and not recognizing.opened.is_set()
    recognizing.opened.set()
    settle(media)
    assert "8-digit account number" in " ".join(t.text for t in media.conversations.load("CAs").turns)
    ack_marks(media, recorder)
    for key in "12345678":
        media.on_frame(Keypad(key))  # the slot is complete: the backend runs and blocks
    assert backend.entered.wait(timeout=30)
    before = media.turns.frame
    timed_feed([SILENCE] * 100)
    assert media.turns.frame == before + 100 and not backend.opened.is_set()
    backend.opened.set()
    settle(media)
    assert any(isinstance(f, AudioOut) for f in recorder.sent)  # the answer was played afterwards
    print(f"frame handling while blocked: p50 {np.percentile(delays, 50) * 1e3:.3f} ms, "
          f"max {max(delays) * 1e3:.3f} ms over {len(delays)} frames")


def test_a_burst_of_calls_gets_one_admission_decision_each_across_workers(settings, redis_client, clock):
    """Ten calls arrive at once at two workers sharing Redis, with room for eight streams: eight streams, two
    Gather calls; a finished call frees its slot."""
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper

    workers = [make_app(settings.replace(speech_mode="stream", max_streams=8), redis_client, clock,
                        IVR_RECOGNIZER_FACTORY=lambda locale: ScriptedRecognizer([])) for _ in range(2)]
    answers = []
    for i in range(10):
        helper = TwilioHelper(workers[i % 2].test_client())
        body = helper.post("/voice/incoming", {"CallSid": f"CAburst{i}", "From": "+1555"}).get_data(as_text=True)
        answers.append(ET.fromstring(body).find("./Connect") is not None)
    assert answers.count(True) == 8 and answers[8:] == [False, False]
    TwilioHelper(workers[0].test_client()).post("/voice/status", {"CallSid": "CAburst0", "CallStatus": "completed"})
    body = TwilioHelper(workers[1].test_client()).post("/voice/incoming", {"CallSid": "CAlate", "From": "+1555"})
    assert ET.fromstring(body.get_data(as_text=True)).find("./Connect") is not None


def test_no_prompt_frame_is_sent_after_a_clear():
    """The player checks for an interrupt after its pacing wait and sends under the same lock: nothing after `clear`."""
    from ivr.telephony.stream import Player

    sent, first = [], threading.Event()

    def send(frame):
        sent.append(frame)
        first.set()

    player = Player(send, paced=True)
    for _ in range(20):
        player.enqueue(AudioOut(SILENCE))
    assert first.wait(timeout=30)
    player.interrupt(Clear())
    player.drain()
    player.stop()
    assert isinstance(sent[-1], Clear) and len(sent) < 21


def open_socket(live):
    url = live.url.replace("http", "ws") + "/media"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    return simple_websocket.Client.connect(url, headers={"X-Twilio-Signature": signature})


def start_message(call_sid, parameters):
    return json.dumps({"event": "start", "start": {"streamSid": "MZx", "callSid": call_sid,
                                                   "customParameters": parameters}})


def closed_by_server(ws) -> bool:
    try:
        while ws.receive(timeout=30) is not None:
            pass
    except simple_websocket.ConnectionClosed:
        return True
    return not ws.connected


def test_a_socket_that_never_starts_a_call_is_closed_and_frees_its_thread(live, monkeypatch):
    from ivr.telephony import media

    monkeypatch.setattr(media, "START_TIMEOUT_S", 0.2)  # 5 s in service
    ws = open_socket(live)  # signed, but silent: it would hold a worker thread forever
    with pytest.raises(simple_websocket.ConnectionClosed):  # closed by the server well before the 3 s bound
        while ws.receive(timeout=3) is not None:
            pass


def test_a_stream_for_a_call_never_answered_with_stream_is_closed(live, stream_app):
    ws = open_socket(live)
    ws.send(start_message("CAnever", {"caller": "+1666", "expires": "9999999999", "token": "forged"}))
    assert closed_by_server(ws)
    assert stream_app.extensions["ivr.store"].load_state("CAnever") is None


def test_a_second_start_for_a_live_call_is_refused_and_the_call_is_untouched(live, stream_app):
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper

    twilio = TwilioHelper(stream_app.test_client(), base_url=live.url)
    root = ET.fromstring(twilio.post("/voice/incoming", {"CallSid": "CAlive", "From": "+15550100001"})
                         .get_data(as_text=True))
    parameters = {p.get("name"): p.get("value") for p in root.findall("./Connect/Stream/Parameter")}
    first = open_socket(live)
    first.send(start_message("CAlive", parameters))
    assert json.loads(first.receive(timeout=30))["event"] == "media"  # the greeting plays
    hijack = open_socket(live)
    hijack.send(start_message("CAlive", {**parameters, "caller": "+1666"}))  # the same token, replayed
    assert closed_by_server(hijack)
    assert stream_app.extensions["ivr.store"].load_state("CAlive")["caller"] == "+15550100001"
    first.close()


class Behind:
    lag_s = 2.0  # a stream whose recogniser is 2 s behind real time


def test_a_lagging_recogniser_sends_new_calls_to_gather_mode_and_shows_in_health(stream_app):
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper

    speech, lagging = stream_app.extensions["ivr.speech"], Behind()
    speech.stream_opened(lagging)
    try:
        root = ET.fromstring(TwilioHelper(stream_app.test_client()).post(
            "/voice/incoming", {"CallSid": "CAbehind", "From": "+1555"}).get_data(as_text=True))
        assert root.find("./Connect") is None and root.find("./Gather") is not None
        health = stream_app.test_client().get("/api/health").get_json()
        assert health["streams"] == {"active": 1, "lag_s": 2.0, "overloaded": True}
    finally:
        speech.stream_closed(lagging)


def test_a_sessions_lag_is_the_audio_its_recogniser_has_not_decoded(app, pool, tmp_path):
    gate = Gate()

    class Stuck(ScriptedRecognizer):
        def feed(self, pcm):
            gate.hold()
            return False

    recorder = Recorder()
    media = open_session(app, Stuck([]), pool, tmp_path, recorder)
    ack_marks(media, recorder)
    feed(media, frames(tone_speech(1.0)))
    assert gate.entered.wait(timeout=30)
    assert media.lag_s >= 0.9  # ~1 s of speech queued behind the stuck decoder
    gate.opened.set()
    settle(media)
    assert media.lag_s == 0


def test_a_closing_stream_is_shut_on_its_own_thread_not_left_to_linger_in_the_server():
    """gunicorn's gthread worker lingers up to 2 s on its main loop for the FIN of a peer that keeps its socket after
    the close frame (every other request of the worker waits: `ivr bench closes` measured 2.0 s per close). The
    stream's own thread sends the close frame, waits a bounded time for the answer, and shuts the connection."""
    import socket as sockets
    import threading

    from ivr.telephony.media import close_stream

    class Peer:  # a WebSocket whose peer never answers the close frame
        def __init__(self):
            self.closed, self.shut = False, None
            self.thread = threading.Thread(target=lambda: None)
            self.thread.start()
            self.thread.join()
            self.sock = self

        def close(self):
            self.closed = True

        def shutdown(self, how):
            self.shut = how

    peer = Peer()
    close_stream(peer, wait_s=0.0)
    assert peer.closed and peer.shut == sockets.SHUT_RDWR


def test_the_latency_bench_knows_how_long_its_recording_stays_quiet_after_the_speech():
    from ivr.testing.stream_simulator import SILENCE, tone_speech, trailing_silence_ms

    assert trailing_silence_ms(SILENCE * 5 + tone_speech(0.5) + SILENCE * 15) == 300
    assert trailing_silence_ms(tone_speech(0.5)) == 0


def test_sockets_past_the_stream_limit_are_refused_before_they_take_a_thread(settings, redis_client, clock):
    """Each open socket holds a server thread; Twilio opens one per admitted call, so a worker refuses sockets past
    IVR_MAX_STREAMS (+2 for a closing call overlapping a new one): replays of a captured upgrade cannot take every
    thread from the webhooks."""
    from twilio.request_validator import RequestValidator

    app = make_app(settings.replace(speech_mode="stream", max_streams=1), redis_client, clock,
                   IVR_RECOGNIZER_FACTORY=lambda locale: ScriptedRecognizer([]), IVR_PACED=False)
    with LiveServer(app) as server:
        url = server.url.replace("http", "ws") + "/media"
        signed = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, {})}
        held = [simple_websocket.Client.connect(url, headers=signed) for _ in range(3)]
        assert app.extensions["ivr.speech"].wait_for_streams(3, timeout=30)
        with pytest.raises(simple_websocket.ConnectionError):
            simple_websocket.Client.connect(url, headers=signed)
        for client in held:
            client.close()
