"""Whole calls as data: every tests/conversations/*.yaml script, run through the Twilio simulator
(the same scripts `ivr call --script` runs)."""
from datetime import datetime
from pathlib import Path

import pytest

from ivr.testing.simulator import ConversationScript

SCRIPTS = sorted((Path(__file__).parent / "conversations").glob("*.yaml"))


def test_there_are_enough_scripted_calls():
    assert len(SCRIPTS) >= 15


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_conversation(path, simulator, clock):
    script = ConversationScript.load(path)
    clock.now = datetime.fromisoformat(script.at).timestamp()
    record = script.run(simulator)
    assert script.failures(record) == [], "\n".join(record.heard)
