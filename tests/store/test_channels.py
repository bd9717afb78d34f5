"""Redis pub/sub ignores the database number: two services on one server (db 0 and db 1) must not hear each other
(seen in CI as a ring for another test's call, from a parallel worker's database)."""
import json

import fakeredis
import pytest

from ivr.store.agents import AgentStore
from ivr.store.grammars import GrammarVersions


def first_message(feed) -> dict:
    """The first message delivered (the subscription's own confirmation is skipped)."""
    for _ in range(5):
        if message := feed.get_message(timeout=1.0):
            return json.loads(message["data"])
    raise AssertionError("nothing delivered")


@pytest.fixture
def two_databases():
    server = fakeredis.FakeServer()
    return [fakeredis.FakeRedis(server=server, db=db, decode_responses=True) for db in (0, 1)]


def test_desk_events_stay_in_their_own_database(two_databases):
    ours, theirs = (AgentStore(client) for client in two_databases)
    feed = ours.subscribe("alice")
    theirs.publish("alice", {"type": "ringing", "call": "CA-theirs"})
    ours.publish("alice", {"type": "ringing", "call": "CA-ours"})
    assert first_message(feed)["call"] == "CA-ours"


def test_grammar_publish_notices_stay_in_their_own_database(two_databases):
    ours, theirs = (GrammarVersions(client) for client in two_databases)
    feed = ours.subscribe()
    theirs.publish("de-DE", "theirs", by="bo", now=1.0, note="", figures={})
    ours.publish("en-US", "ours", by="ada", now=1.0, note="", figures={})
    assert first_message(feed)["locale"] == "en-US"
