"""The call repository on the embedded store and, in CI, on a real redis-server (IVR_TEST_REDIS_URL)."""
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
