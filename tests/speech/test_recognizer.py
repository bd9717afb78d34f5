"""The pool of warm Vosk recognisers, without a model: what it hands on and what it drops; and what an utterance
takes from Vosk's result."""
import logging
import math

import pytest

from ivr.speech.recognizer import WarmRecognizers, to_utterance


class FakeKaldi:
    def __init__(self, *, broken: bool = False):
        self.broken, self.finalised = broken, 0

    def AcceptWaveform(self, pcm):  # noqa: N802 (Vosk's names)
        if self.broken:
            raise RuntimeError("decoder died")
        return False

    def FinalResult(self):  # noqa: N802
        self.finalised += 1
        return "{}"


def test_a_recogniser_is_finalised_before_it_is_handed_on_and_a_broken_one_is_dropped(caplog):
    pool = WarmRecognizers(model=None, keep=1)
    good = FakeKaldi()
    pool.give_back(good)
    assert good.finalised == 1 and pool.take() is good  # no speaker adaptation carried to the next call
    with caplog.at_level(logging.WARNING):
        pool.give_back(FakeKaldi(broken=True))  # a recogniser that failed mid-call never reaches another call
    assert pool._idle == [] and "dropped" in caplog.text
    pool.give_back(FakeKaldi())
    pool.give_back(FakeKaldi())  # past `keep`: let go
    assert len(pool._idle) == 1


def test_the_n_best_likelihoods_become_posteriors_and_the_best_ones_is_the_confidence():
    """Vosk's alternatives carry each path's log-likelihood (the Korean model's values on the test recording)."""
    result = {"alternatives": [{"confidence": 186.100372, "text": "야구 기요하라"},
                               {"confidence": 185.768692, "text": "약 기요하라"},
                               {"confidence": 180.1, "text": "따라서 기요하라"},
                               {"confidence": 190.0, "text": " "}]}  # an empty hypothesis is no hypothesis
    utterance = to_utterance(result)
    assert utterance.text == "야구 기요하라" and utterance.alternatives == ("약 기요하라", "따라서 기요하라")
    assert sum(utterance.posteriors) == pytest.approx(1.0) and utterance.confidence == utterance.posteriors[0]
    best, close, unlikely = utterance.posteriors
    assert close / best == pytest.approx(math.exp(185.768692 - 186.100372)) and unlikely < 0.01
    assert to_utterance({"alternatives": [{"confidence": 42.0, "text": "ja"}]}).confidence == 1.0
