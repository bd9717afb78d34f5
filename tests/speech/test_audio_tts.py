import logging
import os
import shutil
import subprocess

import numpy as np
import pytest

from ivr.speech.audio import SILENCE, VoiceActivity, frames, pcm_to_ulaw, read_wav, resample, ulaw_to_pcm, wav_to_ulaw
from ivr.speech.tts import PromptAudio, Pyttsx3Renderer, ToneRenderer
from ivr.testing.stream_simulator import tone_speech
from tests.support import EVAL, requires_eval


def test_ulaw_round_trip_keeps_telephone_quality():
    x = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 12000).astype(np.int16)
    y = ulaw_to_pcm(pcm_to_ulaw(x))
    snr = 10 * np.log10((x.astype(float) ** 2).mean() / ((y - x).astype(float) ** 2).mean())
    assert snr > 30
    assert ulaw_to_pcm(SILENCE).tolist() == [0] * 160


@requires_eval
def test_real_recording_becomes_20ms_ulaw_frames():
    ulaw = wav_to_ulaw(EVAL / "speechrecognition_test_audio" / "english.wav")  # 44.1 kHz stereo source
    chunks = frames(ulaw)
    assert all(len(c) == 160 for c in chunks) and abs(len(chunks) * 0.02 - 2.745) < 0.03


@requires_eval
def test_vad_ignores_silence_and_finds_real_speech():
    vad = VoiceActivity()
    assert not any(vad.update(ulaw_to_pcm(f)) for f in [SILENCE] * 50)
    digit = EVAL / "fsdd_spoken_digits_8khz" / "recordings"
    wav = sorted(digit.glob("*.wav"))[0]
    samples, rate = read_wav(wav)
    speech = frames(pcm_to_ulaw(resample(samples, rate)))
    assert any(vad.update(ulaw_to_pcm(f)) for f in speech)
    assert VoiceActivity().update(ulaw_to_pcm(tone_speech(0.1)[:160])) is False  # one loud frame is not speech


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_pyttsx3_renders_real_speech_and_caches_it(tmp_path):
    prompts = PromptAudio(tmp_path, Pyttsx3Renderer())
    prompts.prerender(["Thanks for calling. How can I help?"], "en-US")  # a grammar prompt: cached on disk
    prompts._pool.submit(lambda: None).result()
    path = prompts.cached("Thanks for calling. How can I help?", "en-US")
    samples, rate = read_wav(path)
    assert rate == 8000 and len(samples) > 8000 and np.abs(samples).max() > 1000
    assert prompts.cached("Thanks for calling. How can I help?", "en-US") == path
    assert prompts.key("Hallo", "de-DE") != prompts.key("Hallo", "en-US")
    assert len(prompts.ulaw("Thanks for calling. How can I help?", "en-US")) == len(samples)  # from the cache


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_the_render_worker_yields_the_cpu_to_webhooks():
    """Prompts render in the background (a webhook that finds none answers with <Say>): with a cold cache under a
    burst of calls, the renderers (~11 ms of CPU a prompt, one per gunicorn worker) must not take the webhooks' CPU."""
    renderer = Pyttsx3Renderer()
    try:
        renderer.render("hello", voice="en-us", rate=165)
        assert os.getpriority(os.PRIO_PROCESS, renderer._child.pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 10
    finally:
        renderer.close()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_one_pyttsx3_worker_renders_many_prompts_and_a_hung_one_is_replaced(tmp_path, caplog):
    renderer = Pyttsx3Renderer(timeout_s=0.001)
    with pytest.raises(subprocess.TimeoutExpired):  # the worker did not answer in time: killed, the CLI tried
        renderer.render("This will not finish in a millisecond.", voice="en-us", rate=165)
    assert renderer._child is None
    renderer.timeout_s = 10.0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for text in ("One.", "Zwei.", "Three."):
            samples, _ = renderer.render(text, voice="de" if text == "Zwei." else "en-us", rate=165)
            assert np.abs(samples).max() > 1000
    worker = renderer._child
    assert worker is not None and worker.poll() is None and "pyttsx3 worker" not in caplog.text  # no fallback
    renderer.close()


def test_prompts_with_personal_data_stay_in_memory_per_call_and_go_at_hang_up(tmp_path):
    prompts = PromptAudio(tmp_path / "cache", ToneRenderer())
    balance = "Your balance is 84 dollars and 20 cents."
    key = prompts.ready_private("CA1", balance, "en-US")
    assert prompts.private_wav_when_ready("CA1", key, timeout_s=10)[:4] == b"RIFF"
    assert prompts.private_wav("CA2", key) is None
    assert len(prompts.ulaw(balance, "en-US")) > 0  # stream mode: in memory too
    assert list((tmp_path / "cache").iterdir()) == []  # nothing on disk
    prompts.forget("CA1")
    assert prompts.private_wav("CA1", key) is None


def test_render_timeout_raises_so_callers_can_fall_back(tmp_path):
    prompts = PromptAudio(tmp_path, Pyttsx3Renderer(timeout_s=0.001))
    with pytest.raises(subprocess.TimeoutExpired):
        prompts.ensure("This will not finish in a millisecond.", "en-US")


def test_gather_mode_plays_rendered_prompts_served_by_the_app(settings, redis_client, clock, tmp_path):
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper, make_app

    app = make_app(settings.replace(gather_prompts="play", public_url="https://ivr.example.com",
                           audio_dir=str(tmp_path / "audio")), redis_client, clock)
    prompts = app.extensions["ivr.speech"].prompts
    prompts._pool.submit(lambda: None).result()  # the grammars' prompts were queued first: they are rendered now
    helper = TwilioHelper(app.test_client(), base_url="https://ivr.example.com")
    root = ET.fromstring(helper.post("/voice/incoming", {"CallSid": "CAp", "From": "+1555"}).get_data(as_text=True))
    url = root.find("./Play").text
    assert url.startswith("https://ivr.example.com/voice/audio/") and root.find("./Say") is None
    response = app.test_client().get(url.removeprefix("https://ivr.example.com"))
    assert response.status_code == 200 and response.mimetype == "audio/wav" and len(response.data) > 1000
    assert app.test_client().get("/voice/audio/nothere.wav").status_code == 404
    waiting = helper.post("/voice/wait?queue=billing", {"CallSid": "CAp", "QueuePosition": "2"})
    hold = ET.fromstring(waiting.get_data(as_text=True))
    assert "number 2 in line" in hold.find("./Say").text  # not rendered yet: said at once, rendered meanwhile
    prompts._pool.submit(lambda: None).result()
    another = helper.post("/voice/wait?queue=billing", {"CallSid": "CAq", "QueuePosition": "2"})
    announcement = ET.fromstring(another.get_data(as_text=True)).find("./Play").text
    # a position and a wait name nothing of the caller: one file on disk for every caller, never waited for
    assert announcement.startswith("https://ivr.example.com/voice/audio/") and "/private/" not in announcement
    clip = app.test_client().get(announcement.removeprefix("https://ivr.example.com"))
    assert clip.status_code == 200 and clip.mimetype == "audio/wav"


def test_the_agents_whisper_is_rendered_when_the_caller_is_queued_not_when_the_agent_answers(
        settings, redis_client, clock, tmp_path):
    """The whisper is a call's own text, known once the call is transferred; the agent answers seconds later, so
    `/voice/whisper` finds it rendered instead of waiting for a render (or <Say>ing it) under load."""
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper, make_app

    app = make_app(settings.replace(gather_prompts="play", public_url="https://ivr.example.com",
                           audio_dir=str(tmp_path / "audio")), redis_client, clock)
    prompts = app.extensions["ivr.speech"].prompts
    helper = TwilioHelper(app.test_client(), base_url="https://ivr.example.com")
    call = {"CallSid": "CAw", "From": "+15550100001"}
    helper.post("/voice/incoming", call)
    queued = ET.fromstring(helper.post("/voice/gather", {**call, "SpeechResult": "I want to speak to a person"})
                           .get_data(as_text=True))
    assert queued.find("./Enqueue") is not None
    prompts._pool.submit(lambda: None).result()  # the background renders so far are done
    text, locale = app.extensions["ivr.conversations"].whisper_text("CAw", locale="en-US")
    assert prompts.private_wav("CAw", prompts.key(text, locale)) is not None  # before any agent answered
    agent_leg = {"CallSid": "CAagent", "From": "+15550100001"}
    whisper = ET.fromstring(helper.post("/voice/whisper?call=CAw", agent_leg).get_data(as_text=True))
    assert "/voice/audio/private/" in whisper.find("./Play").text


def test_a_webhook_names_a_private_prompt_at_once_and_twilios_fetch_gets_it_once_rendered(
        settings, redis_client, clock, tmp_path):
    import threading
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper, make_app

    app = make_app(settings.replace(gather_prompts="play", public_url="https://ivr.example.com",
                           audio_dir=str(tmp_path / "audio")), redis_client, clock)
    prompts = app.extensions["ivr.speech"].prompts
    prompts._pool.submit(lambda: None).result()  # the grammars' prompts are rendered
    prompts.renderer = renderer = GatedRenderer()  # from now on the engine is stuck until the test says
    helper = TwilioHelper(app.test_client(), base_url="https://ivr.example.com")
    call = {"CallSid": "CAg", "From": "+15550100001"}
    helper.post("/voice/incoming", call)
    helper.post("/voice/gather", {**call, "SpeechResult": "I want to speak to a person"})
    whisper = ET.fromstring(helper.post("/voice/whisper?call=CAg", {"CallSid": "CAagent", "From": "+15550100001"})
                            .get_data(as_text=True))
    url = whisper.find("./Play").text.removeprefix("https://ivr.example.com")  # not <Say>: nothing was waited for
    fetched = []
    fetch = threading.Thread(target=lambda: fetched.append(app.test_client().get(url)))
    fetch.start()
    renderer.gate.set()
    fetch.join()
    assert fetched[0].status_code == 200 and fetched[0].data[:4] == b"RIFF"


class GatedRenderer(ToneRenderer):
    """A slow or broken TTS engine: renders only when the test says, and counts its renders."""

    def __init__(self, *, fail: bool = False):
        import threading

        self.gate, self.entered, self.fail, self.renders = threading.Event(), threading.Event(), fail, 0

    def render(self, text, *, voice, rate):
        self.renders += 1
        self.entered.set()
        self.gate.wait(timeout=30)
        if self.fail:
            raise RuntimeError("espeak-ng crashed")
        return super().render(text, voice=voice, rate=rate)


def test_a_prompt_is_rendered_once_however_many_ask_and_a_failure_is_not_retried_at_once(tmp_path):
    renderer = GatedRenderer(fail=True)
    prompts = PromptAudio(tmp_path, renderer)
    for _ in range(5):
        assert prompts.ready("Your balance is 84 dollars.", "en-US") is None  # never waits for the render
    renderer.gate.set()
    prompts._pool.submit(lambda: None).result()
    assert prompts.ready("Your balance is 84 dollars.", "en-US") is None
    prompts._pool.submit(lambda: None).result()
    assert renderer.renders == 1


def test_a_private_prompt_is_never_waited_for_by_the_webhook_and_is_served_once_rendered(tmp_path):
    """A balance is known only in its own webhook: the webhook names its URL at once and the render runs meanwhile;
    Twilio's fetch of the audio, not the webhook, waits for it (a render takes ~15 ms)."""
    import threading

    renderer = GatedRenderer()
    prompts = PromptAudio(tmp_path, renderer)
    for _ in range(3):  # the render is stuck: the webhook still answers at once, with <Play>
        key = prompts.ready_private("CA1", "Your balance is 84 dollars.", "en-US")
        assert key == prompts.key("Your balance is 84 dollars.", "en-US")
    fetched = []
    fetch = threading.Thread(target=lambda: fetched.append(prompts.private_wav_when_ready("CA1", key, timeout_s=30)))
    fetch.start()
    assert prompts.private_wav("CA1", key) is None and not fetched  # Twilio's fetch waits…
    renderer.gate.set()
    fetch.join()
    assert fetched[0][:4] == b"RIFF" and renderer.renders == 1  # …for the one render


def fetched_on_another_worker(tmp_path, renderer):
    """A balance's webhook answered by one worker (its render held by the gated renderer), Twilio's fetch of the
    audio served by another sharing its store (Redis in production): what the fetch gets once the render ends."""
    import threading

    rendering, serving = PromptAudio(tmp_path / "a", renderer), PromptAudio(tmp_path / "b", ToneRenderer())
    serving.private = rendering.private
    key = rendering.ready_private("CA1", "Your balance is 84 dollars.", "en-US")
    fetched = []
    fetch = threading.Thread(target=lambda: fetched.append(serving.private_wav_when_ready("CA1", key, timeout_s=30)))
    fetch.start()
    renderer.gate.set()
    fetch.join()
    return fetched[0], rendering.private.get("CA1", key)


def test_a_private_prompt_rendered_by_another_worker_is_fetched_from_the_shared_store(tmp_path):
    audio, _ = fetched_on_another_worker(tmp_path, GatedRenderer())
    assert audio[:4] == b"RIFF"


def test_a_render_failing_on_one_worker_ends_the_wait_of_a_fetch_on_another(tmp_path):
    audio, stored = fetched_on_another_worker(tmp_path, GatedRenderer(fail=True))
    assert audio is None and stored is None  # not "being rendered" any more: the fetch stopped waiting


def test_a_fetch_for_a_prompt_that_is_not_being_rendered_is_answered_at_once(tmp_path, monkeypatch):
    """After the hang-up (or for a text never asked for) there is nothing to wait for: Twilio gets its 404 now."""
    from ivr.speech import tts

    prompts = PromptAudio(tmp_path, ToneRenderer())
    key = prompts.ready_private("CA1", "Your balance is 84 dollars.", "en-US")
    prompts._pool.submit(lambda: None).result()
    prompts.forget("CA1")
    monkeypatch.setattr(tts.time, "sleep", lambda s: pytest.fail("polled for a prompt nobody renders"))
    assert prompts.private_wav_when_ready("CA1", key, timeout_s=30) is None
    assert prompts.private_wav_when_ready("CA2", "0" * 24, timeout_s=30) is None


def test_while_the_renderer_fails_private_prompts_are_said_by_twilio(tmp_path):
    renderer = GatedRenderer(fail=True)
    renderer.gate.set()
    prompts = PromptAudio(tmp_path, renderer)
    prompts.ready("Welcome.", "en-US")
    prompts._pool.submit(lambda: None).result()  # that render failed
    assert prompts.ready_private("CA1", "Your balance is 84 dollars.", "en-US") is None  # <Say>, not a broken <Play>


def test_a_callers_own_prompt_is_rendered_before_the_grammars_backlog(tmp_path):
    renderer = GatedRenderer()
    prompts = PromptAudio(tmp_path, renderer)
    order = []
    original = renderer.render
    renderer.render = lambda text, **kw: (order.append(text), original(text, **kw))[1]
    prompts.prerender([f"Prompt {n}." for n in range(5)], "en-US")
    renderer.entered.wait(timeout=30)  # the first is being rendered, four wait
    prompts.ready_private("CA1", "Your balance is 84 dollars.", "en-US")
    renderer.gate.set()
    prompts._pool.submit(lambda: None).result()
    assert order[:2] == ["Prompt 0.", "Your balance is 84 dollars."]  # next after the render already running


def test_prompts_are_prerendered_when_a_grammar_loads(settings, redis_client, clock, tmp_path):

    from tests.support import make_app

    app = make_app(settings.replace(audio_dir=str(tmp_path / "audio")), redis_client, clock)  # an empty cache
    prompts = app.extensions["ivr.speech"].prompts
    grammar = app.extensions["ivr.catalog"].get("en-US").grammar
    prompts._pool.shutdown(wait=True)  # let the background renders finish
    assert prompts.cached(grammar.prompts.greeting, "en-US") is not None
    assert prompts.cached(grammar.prompts.silent_goodbye, "en-US") is not None
    assert isinstance(prompts.renderer, ToneRenderer)


def test_without_espeak_ng_prompts_fall_back_to_say_and_gather_mode(settings, redis_client, clock):
    import xml.etree.ElementTree as ET

    from ivr import create_app
    from ivr.speech import Unavailable
    from ivr.speech.recognizer import ScriptedRecognizer
    from tests.support import TwilioHelper

    app = create_app({"IVR_SETTINGS": settings.replace(gather_prompts="play", speech_mode="stream"),
                      "REDIS_CLIENT": redis_client, "IVR_CLOCK": clock, "IVR_TTS": Unavailable(),  # no espeak-ng
                      "IVR_RECOGNIZER_FACTORY": lambda locale: ScriptedRecognizer()})
    assert not app.extensions["ivr.speech"].stream_mode
    root = ET.fromstring(TwilioHelper(app.test_client()).post("/voice/incoming", {"CallSid": "CAn"}).get_data(True))
    assert root.find("./Say") is not None and root.find("./Play") is None


def test_a_balance_is_played_from_memory_with_a_per_call_token_and_gone_at_hang_up(settings, redis_client, clock,
                                                                                   tmp_path):
    import xml.etree.ElementTree as ET

    from tests.support import TwilioHelper, make_app

    app = make_app(settings.replace(gather_prompts="play", audio_dir=str(tmp_path / "audio")), redis_client, clock)
    prompts = app.extensions["ivr.speech"].prompts
    prompts._pool.submit(lambda: None).result()  # the grammar's prompts are rendered first (one render at a time)
    helper, call = TwilioHelper(app.test_client()), {"CallSid": "CAbal", "From": "+15550100001"}
    helper.post("/voice/incoming", call)
    helper.post("/voice/gather?turn=0", {**call, "SpeechResult": "what's my balance"})
    answer = ET.fromstring(helper.post("/voice/gather?turn=1", {**call, "Digits": "12345678"}).data)
    urls = [play.text for play in answer.iter("Play") if "/voice/audio/private/" in play.text]  # rendered at once
    assert urls and "token=" in urls[0]
    path = urls[0].removeprefix("http://localhost")
    client = app.test_client()
    assert client.get(path.split("?")[0] + "?call=CAbal&token=guess").status_code == 403
    assert client.get(path).status_code == 200 and client.get(path).mimetype == "audio/wav"
    other_worker = make_app(settings.replace(gather_prompts="play", audio_dir=str(tmp_path / "audio2")),
                            redis_client, clock).test_client()
    assert other_worker.get(path).status_code == 200  # any worker serves the <Play> URL Twilio fetches
    cached = {p.name for p in (tmp_path / "audio" / "cache").iterdir()}
    assert not any(prompts.key(text, "en-US") in " ".join(cached) for text in
                   ("Your balance is 84 dollars and 20 cents, due on December 3.",))
    helper.post("/voice/status", {**call, "CallStatus": "completed"})
    assert client.get(path).status_code == 404 and other_worker.get(path).status_code == 404


def test_an_instance_serves_a_grammar_prompt_another_instance_rendered(settings, redis_client, clock, tmp_path):

    from tests.support import make_app

    first = make_app(settings.replace(gather_prompts="play", audio_dir=str(tmp_path / "a")), redis_client, clock)
    first.extensions["ivr.speech"].prompts._pool.submit(lambda: None).result()  # the grammar's prompts rendered
    second = make_app(settings.replace(gather_prompts="play", audio_dir=str(tmp_path / "b")), redis_client, clock)
    greeting = first.extensions["ivr.catalog"].get("en-US").grammar.prompts.greeting
    key = first.extensions["ivr.speech"].prompts.key(greeting, "en-US")
    second.extensions["ivr.speech"].prompts._pool.shutdown(cancel_futures=True)  # it renders nothing itself
    response = second.test_client().get(f"/voice/audio/{key}.wav")
    assert response.status_code == 200 and response.data == (tmp_path / "a" / "cache" / f"{key}.wav").read_bytes()


def test_prompts_rendered_while_the_store_is_down_are_logged_once_not_one_line_each(tmp_path, caplog):
    class DownStore:
        def put(self, key, wav):
            raise ConnectionError("Redis unavailable")

    prompts = PromptAudio(tmp_path, ToneRenderer())
    prompts.shared = DownStore()
    with caplog.at_level(logging.WARNING):
        for text in ("One.", "Two.", "Three."):  # a start-up during an outage renders ~100
            prompts.ensure(text, "en-US")
    assert caplog.text.count("not shared") == 1
