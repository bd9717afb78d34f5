"""Turn-taking frame by frame, without a socket, a thread or a recogniser."""
import numpy as np
import pytest

from ivr.speech.audio import SILENCE, frames, ulaw_to_pcm
from ivr.speech.turns import INTER_DIGIT_FRAMES, BargeIn, Hear, PromptsDone, TurnEnded, TurnTaking
from ivr.testing.stream_simulator import tone_speech
from ivr.types import Listen

QUIET = ulaw_to_pcm(SILENCE)
LOUD = [ulaw_to_pcm(f) for f in frames(tone_speech(1.0))]
INTENT = Listen("intent", timeout_s=5, end_silence_ms=800)
DIGITS = Listen("digits", max_digits=4, timeout_s=8, end_silence_ms=1200)


def play(turns: TurnTaking, frames_, *, until=None) -> list:
    """Feed frames; return the events, stopping after the first event of type `until`."""
    events = []
    for pcm in frames_:
        events += turns.audio(pcm)
        if until and any(isinstance(e, until) for e in events):
            break
    return events


def prompting(*, interruptible: bool, listen: Listen = INTENT) -> TurnTaking:
    turns = TurnTaking()
    turns.prompt_queued("prompt-1", interruptible=interruptible)
    turns.listen(listen)
    return turns


def test_nothing_is_heard_before_a_question_is_asked():
    turns = TurnTaking()
    assert play(turns, LOUD[:20]) == [] and turns.frame == 20


def test_barge_in_on_the_frame_speech_is_detected_and_its_onset_is_heard():
    turns = prompting(interruptible=True)
    play(turns, [QUIET] * 10)
    events = play(turns, LOUD, until=BargeIn)
    onset = turns.vad.onset
    assert turns.frame == 10 + onset, "clear must go out on the frame the VAD detects speech"
    assert isinstance(events[0], BargeIn)
    heard = [e for e in events if isinstance(e, Hear)]
    assert heard[-onset:] == [Hear(pcm.tobytes()) for pcm in LOUD[:onset]]  # after a little lead-in silence


def test_speech_during_an_uninterruptible_prompt_does_not_interrupt_it():
    turns = prompting(interruptible=False)
    assert play(turns, LOUD) == []


def test_speech_over_the_disclosure_is_not_an_instant_no_input():
    turns = prompting(interruptible=False)
    play(turns, LOUD)  # the caller talks over the greeting
    assert turns.mark("prompt-1") == [PromptsDone()]
    events = play(turns, [QUIET] * 60)
    assert not any(isinstance(e, TurnEnded) for e in events)


def test_end_of_speech_after_the_trailing_silence():
    turns = prompting(interruptible=True)
    turns.mark("prompt-1")
    play(turns, LOUD)
    events = play(turns, [QUIET] * 100, until=TurnEnded)
    assert events[-1] == TurnEnded("", "speech")
    assert sum(isinstance(e, Hear) for e in events) == INTENT.end_silence_ms // 20


def test_no_input_after_the_timeout_counted_from_the_end_of_the_prompt():
    turns = prompting(interruptible=True)
    play(turns, [QUIET] * 400)  # the prompt is still playing: no timeout yet
    turns.mark("prompt-1")
    events = play(turns, [QUIET] * 1000, until=TurnEnded)
    assert events[-1] == TurnEnded("", "no_input") and turns.frame == 400 + INTENT.timeout_s * 50


@pytest.mark.parametrize(("keys", "digits"), [("1234", "1234"), ("12#", "12")])
def test_keys_end_the_turn_at_their_length_or_hash(keys, digits):
    turns = prompting(interruptible=True, listen=DIGITS)
    turns.mark("prompt-1")
    events = [e for key in keys for e in turns.keypad(key)]
    assert events == [TurnEnded(digits, "digits")]


def test_slow_keys_end_after_the_inter_digit_gap_and_are_never_lost_to_a_timeout():
    turns = prompting(interruptible=True, listen=DIGITS)
    turns.mark("prompt-1")
    play(turns, [QUIET] * 300)
    turns.keypad("1")
    play(turns, [QUIET] * 100)
    turns.keypad("2")
    events = play(turns, [QUIET] * 1000, until=TurnEnded)
    assert events[-1] == TurnEnded("12", "digits") and turns.frame == 400 + INTER_DIGIT_FRAMES


def test_a_key_interrupts_an_interruptible_prompt():
    turns = prompting(interruptible=True)
    assert turns.keypad("3") == [BargeIn(), TurnEnded("3", "digits")]


def test_a_key_during_the_disclosure_waits_for_it_to_finish():
    turns = prompting(interruptible=False)
    assert turns.keypad("3") == []  # no clear: the disclosure plays to the end
    assert turns.mark("prompt-1") == [PromptsDone(), TurnEnded("3", "digits")]


def test_a_recogniser_endpoint_in_silence_is_not_a_turn_but_keys_typed_meanwhile_are():
    turns = prompting(interruptible=True, listen=DIGITS)
    turns.mark("prompt-1")
    play(turns, [QUIET] * 250)
    assert turns.endpoint() == []
    turns.keypad("1")
    assert turns.endpoint() == [TurnEnded("1", "digits")]


def test_a_recogniser_endpoint_after_speech_ends_the_turn():
    turns = prompting(interruptible=True)
    turns.mark("prompt-1")
    play(turns, LOUD[:20])
    assert turns.endpoint() == [TurnEnded("", "endpoint")]
    assert play(turns, LOUD[:5]) == []  # no longer listening until the dialog asks again


def test_marks_of_earlier_prompts_do_not_end_playback():
    turns = TurnTaking()
    turns.prompt_queued("prompt-1", interruptible=True)
    turns.prompt_queued("prompt-2", interruptible=True)
    assert turns.mark("prompt-1") == [] and turns.mark("prompt-2") == [PromptsDone()]


def test_frames_are_pcm_arrays():
    assert isinstance(QUIET, np.ndarray) and QUIET.dtype == np.int16 and len(QUIET) == 160
