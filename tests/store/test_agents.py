"""Agent presence and reservations, on the embedded store and (in CI) on a real redis-server; the concurrency test
runs two desks — two workers — against one store from many threads."""
import random
import threading
from collections import Counter

import pytest

from ivr.desk import AgentDesk
from ivr.store.agents import Agent, AgentStore, Waiting
from ivr.testing.telephony import FakeTelephony


class Events:
    """What the desk needs of the conversations here: a place for its events."""

    def __init__(self):
        self.lock, self.noted = threading.Lock(), []

    def note(self, event):
        with self.lock:
            self.noted.append(event)


def desk_on(client, phone, events) -> AgentDesk:
    return AgentDesk(AgentStore(client), phone, events, "", 20, clock=lambda: 1000.0)


def test_presence_and_the_idle_order(redis_client):
    store = AgentStore(redis_client)
    store.save_agent(Agent("a", "A", skills=("billing",)))
    store.save_agent(Agent("b", "B", skills=("billing",), languages=("en", "de")))
    store.set_state("b", "available", 10.0)
    store.set_state("a", "available", 20.0)
    assert store.idle_agents() == ["b", "a"]  # b has waited longest
    store.set_state("b", "busy", 30.0, call="CA1")
    assert store.idle_agents() == ["a"] and store.presence("b") == {"state": "busy", "since": 30.0, "call": "CA1"}
    assert store.agent("b").languages == ("en", "de") and store.agent("b").fits(["billing"], "de")
    assert store.presence("nobody")["state"] == "offline"
    with pytest.raises(ValueError, match="unknown agent state"):
        store.set_state("a", "napping", 0.0)
    assert store.remove_agent("a") and store.agent("a") is None and store.idle_agents() == []


def test_a_reservation_takes_one_caller_and_one_idle_agent_once(redis_client):
    store = AgentStore(redis_client)
    store.set_state("a", "available", 1.0)
    assert store.reserve("CA1", "a") == "reserved"
    assert store.reserve("CA1", "b") == "caller_taken" and store.reserve("CA2", "a") == "agent_taken"
    store.set_state("b", "offline", 1.0)
    assert store.reserve("CA3", "b") == "agent_taken"  # not idle
    assert store.reserved_agent("CA3") is None  # a failed attempt leaves no claim on the caller
    store.release("CA1", "a")
    assert store.reserved_agent("CA1") is None and store.reserved_call("a") is None


def test_priority_callers_are_served_first_then_by_waiting_time(redis_client):
    store = AgentStore(redis_client)
    store.add_waiting(Waiting("CAold", "billing", "QU", ("billing",), "en-US", 100.0))
    store.add_waiting(Waiting("CAnew", "billing", "QU", ("billing",), "en-US", 130.0))
    store.add_waiting(Waiting("CAvip", "billing", "QU", ("billing",), "en-US", 150.0, priority=1))
    assert not store.add_waiting(Waiting("CAold", "billing", "QU", ("billing",), "en-US", 999.0))  # once
    assert [w.call for w in store.all_waiting()] == ["CAvip", "CAold", "CAnew"]


def test_two_workers_never_double_book_an_agent_or_a_caller_over_200_calls(redis_client):
    agents, calls = [f"agent{i:02d}" for i in range(40)], [f"CA{i:03d}" for i in range(200)]
    events = Events()
    phones = [FakeTelephony(), FakeTelephony()]
    desks = [desk_on(redis_client, phone, events) for phone in phones]
    for agent in agents:
        desks[0].agents.save_agent(Agent(agent, agent, skills=("billing",)))
    for index, call in enumerate(calls):
        desks[0].agents.add_waiting(Waiting(call, "billing", "QU1", ("billing",), "en-US", float(index)))

    def storm(work) -> None:
        threads = [threading.Thread(target=lambda part=part: [job() for job in part])
                   for part in (work[i::8] for i in range(8))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def rings(since=(0, 0)) -> list[dict]:
        return phones[0].rings[since[0]:] + phones[1].rings[since[1]:]

    # Round 1: agents come online while both workers route every caller.
    work = [lambda a=a, d=desks[i % 2]: d.set_available(a) for i, a in enumerate(agents)]
    work += [lambda c=c, d=desks[i % 2]: d.route_caller(c) for i, c in enumerate(calls)]
    random.Random(7).shuffle(work)
    storm(work)
    first = rings()
    assert len(first) == 40
    assert max(Counter(r["to"] for r in first).values()) == 1  # no agent rung twice
    assert max(Counter(r["url"] for r in first).values()) == 1  # no caller given to two agents

    # Round 2: every leg goes unanswered; each worker reports some, then everyone is available again.
    before = (len(phones[0].rings), len(phones[1].rings))
    for index, ring in enumerate(first):
        agent = ring["to"].removeprefix("client:")
        desks[index % 2].leg_ended(desks[0].agents.reserved_call(agent) or "", agent, "no-answer")
    work = [lambda a=a, d=desks[i % 2]: d.set_available(a) for i, a in enumerate(agents)]
    work += [lambda c=c, d=desks[(i + 1) % 2]: d.route_caller(c) for i, c in enumerate(calls)]
    random.Random(8).shuffle(work)
    storm(work)
    second = rings(before)
    assert len(second) == 40 and max(Counter(r["to"] for r in second).values()) == 1
    assert max(Counter(r["url"] for r in second).values()) == 1
    reserved = [desks[1].agents.reserved_call(agent) for agent in agents]
    assert len(set(reserved)) == 40 and None not in reserved

