"""Admission from the recogniser's measured cost per second of audio."""
import pytest

from ivr.speech.capacity import speech_like, streams_for


@pytest.mark.parametrize(("cost", "cores", "streams"), [(0.3, 2, 10), (0.05, 2, 64), (4.0, 2, 1), (0.9, 2, 3)])
def test_calls_that_fit_in_real_time_with_headroom(cost, cores, streams):
    assert streams_for(cost, cores=cores) == streams


def test_the_probe_audio_is_loud_and_as_long_as_asked():
    audio = speech_like(0.5)
    assert len(audio) == 8000  # 0.5 s of 8 kHz 16-bit samples
    assert max(abs(int.from_bytes(audio[i:i + 2], "little", signed=True)) for i in range(0, 8000, 2)) > 3000
