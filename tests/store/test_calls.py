"""The call repository on the embedded store and, in CI, on a real redis-server (IVR_TEST_REDIS_URL)."""
import threading

import pytest

from ivr.store import CallStore
from ivr.types import CallbackRequest, CallContext, CallEvent

CONTEXT = CallContext(
    call_sid="CA1", caller="+15550100001", locale="en-US", intent="internet_down",
    intent_label="your internet not working", confidence=0.91,
    alternatives=({"intent": "slow_internet", "score": 0.05},),
    slots={"account_number": "12345678"}, transcript=({"speaker": "caller", "text": "my wifi died", "at": 1.0},),
    retries=1, agent_requested=False, mood="neutral", queue="tech_support", skills=("internet",), reason="intent",
    callback_number=None, summary="Caller is calling about internet down.", started_at=0.5,
)


@pytest.fixture
def store(redis_client):
    return CallStore(redis_client, call_ttl_s=60, context_ttl_s=600)


def test_state_is_plain_data_with_the_call_ttl(store, redis_client):
    assert store.load_state("CA1") is None
    store.save_state("CA1", {"step": "intent", "turns": [{"speaker": "ivr", "text": "hi", "at": 0.0}]})
    assert store.load_state("CA1") == {"step": "intent", "turns": [{"speaker": "ivr", "text": "hi", "at": 0.0}]}
    assert 0 < redis_client.ttl("ivr:call:CA1:state") <= 60


def test_context_round_trips_as_a_typed_record_with_its_own_ttl(store, redis_client):
    store.save_context(CONTEXT)
    again = store.load_context("CA1")
    assert again.to_dict() == CONTEXT.to_dict() | {"alternatives": [{"intent": "slow_internet", "score": 0.05}],
                                                   "transcript": [CONTEXT.transcript[0]], "skills": ["internet"],
                                                   "further": [], "verified_slots": []}
    assert 60 < redis_client.ttl("ivr:call:CA1:context") <= 600
    assert store.load_context("CAnone") is None


def test_the_first_copy_of_a_request_claims_it_and_copies_get_its_reply(store):
    assert store.claim_request("CA1", "k") and not store.claim_request("CA1", "k")
    assert store.cached_reply("CA1", "k") is None  # being made
    assert store.wait_for_reply("CA1", "k", timeout_s=0.0) is None
    store.save_reply("CA1", "k", "<Response>first</Response>")
    assert store.wait_for_reply("CA1", "k", timeout_s=0.0) == "<Response>first</Response>"
    assert not store.claim_request("CA1", "k")


def test_callbacks_keep_one_shape_whatever_asked_for_them(store):
    store.add_callback(CallbackRequest("CA1", "+15550100001", "billing", "pay_bill", "closed", 1.0))
    store.add_callback(CallbackRequest("CA2", "+15550100002", "billing", None, "long_wait", 2.0))
    store.add_callback(CallbackRequest("CA1", "+15550100001", "billing", "pay_bill", "closed", 3.0))  # a retry
    assert [(c.call, c.reason) for c in store.callbacks()] == [("CA2", "long_wait"), ("CA1", "closed")]


def test_events_are_kept_per_day_newest_first_bounded_and_expiring(store):
    store.events_per_day = 3
    day = 86_400 * 20_000
    for i in range(5):
        store.log_event(CallEvent(f"CA{i}", "turn", day + i, {"step": "intent"}))
    store.log_event(CallEvent("CA-next-day", "start", day + 86_400 + 5))
    events = store.events()
    assert [e.call for e in events] == ["CA-next-day", "CA4", "CA3", "CA2"] and events[1].data == {"step": "intent"}
    assert [e.call for e in store.events_between(day + 3, day + 86_400)] == ["CA3", "CA4"]
    assert 0 < store.redis.ttl("ivr:events:2024-10-04") <= store.events_ttl_s + 86_400


def test_ping(store):
    assert store.ping()


class CountingRedis:
    """A Redis client that counts the round trips of the thread that made it (the background renders do their
    own): each command sent alone, and each pipeline sent."""

    def __init__(self, client):
        self.client, self.round_trips, self.thread = client, 0, threading.get_ident()

    def count(self):
        self.round_trips += threading.get_ident() == self.thread

    def pipeline(self, *args, **kwargs):
        pipe = self.client.pipeline(*args, **kwargs)
        send = pipe.execute

        def execute(*a, **kw):
            self.count()
            return send(*a, **kw)

        pipe.execute = execute
        return pipe

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def command(*args, **kwargs):
            self.count()
            return attribute(*args, **kwargs)

        return command


def test_a_turn_costs_two_round_trips_to_redis(settings, redis_client, clock):
    """Under load every round trip waits for the GIL again: the claim brings the call's state, and the state, the
    event and the reply go back together."""
    from tests.support import TwilioHelper, make_app

    counting = CountingRedis(redis_client)
    helper = TwilioHelper(make_app(settings, counting, clock).test_client())
    call = {"CallSid": "CAr", "From": "+15550100001"}
    helper.post("/voice/incoming", call)
    for said in ("my internet is not working", "yes"):  # a turn, and the turn that ends the bot's conversation
        before = counting.round_trips
        helper.post("/voice/gather", {**call, "SpeechResult": said})
        assert counting.round_trips - before == 2
    before = counting.round_trips
    helper.post("/voice/status", {**call, "CallStatus": "completed", "CallDuration": "42"})
    assert counting.round_trips - before == 4  # private prompts, calls in progress, waiting list, the event


def test_a_batch_sends_its_writes_at_its_end_and_reads_see_them(store, redis_client):
    with store.batch():
        assert store.claim_request("CA1", "k")
        store.save_state("CA1", {"step": "confirm"})
        store.log_event(CallEvent("CA1", "turn", 1.0, {}))
        assert redis_client.get("ivr:call:CA1:state") is None  # not sent yet…
        assert store.load_state("CA1") == {"step": "confirm"}  # …but this webhook reads its own write
        store.save_context(CONTEXT)
        assert store.load_context("CA1").summary == CONTEXT.summary
        store.save_reply("CA1", "k", "<Response/>")
    assert store.cached_reply("CA1", "k") == "<Response/>" and store.events()[0].type == "turn"


def test_the_state_read_with_the_claim_is_the_state_at_the_claim(store):
    store.save_state("CA1", {"step": "intent"})
    with store.batch():
        assert store.claim_request("CA1", "k")
        store.save_state("CA2", {"step": "other call"})
        assert store.load_state("CA1") == {"step": "intent"}
    with store.batch():
        assert not store.claim_request("CA1", "k")  # a copy: it reads nothing of the call
        assert store.load_state("CA1") == {"step": "intent"}


def test_writes_made_before_a_fault_are_kept(store):
    with pytest.raises(RuntimeError), store.batch():
        store.save_state("CA1", {"step": "done"})
        raise RuntimeError("the view failed after saving its state")
    assert store.load_state("CA1") == {"step": "done"}


def test_a_job_that_copied_the_webhooks_context_to_another_thread_writes_at_once(store, redis_client):
    """A lane job runs in a copy of the request's context (its log lines name the call): its writes must not join
    a batch that its thread never sends."""
    import contextvars

    with store.batch():
        worker = threading.Thread(target=contextvars.copy_context().run,
                                  args=(store.save_state, "CA9", {"step": "from a lane"}))
        worker.start()
        worker.join()
        assert redis_client.get("ivr:call:CA9:state") is not None
