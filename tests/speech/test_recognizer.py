"""The pool of warm Vosk recognisers, without a model: what it hands on and what it drops."""
import logging

from ivr.speech.recognizer import WarmRecognizers


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
