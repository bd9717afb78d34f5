"""Analytics on a generated fortnight of calls, written through the store and read back per period and locale."""
from __future__ import annotations

from ivr import analytics
from ivr.store.calls import CallStore
from ivr.types import CallEvent

DAY = 86_400
END = 20_000 * DAY  # midnight UTC, 2024-10-04


def one_call(sid: str, at: float, *, locale: str = "en-US", intent: str = "pay_bill", ending: str = "transfer",
             misses: tuple[str, ...] = ()) -> list[CallEvent]:
    """The events a call writes: start, turns (with misses first), then how it ended."""
    events = [CallEvent(sid, "start", at, {"locale": locale})]
    for i, miss in enumerate(misses):
        events.append(CallEvent(sid, "turn", at + 5 + i, {"asked": "intent", "step": "intent", "miss": miss}))
    at += 10 + len(misses)
    outcome = {"self_service": "self_service", "callback": "callback"}.get(ending, "transfer")
    events.append(CallEvent(sid, "turn", at, {"asked": "intent", "step": "done", "intent": intent,
                                              "outcome": outcome}))
    if ending in ("transfer", "agent", "abandoned"):
        reason = "agent_requested" if ending == "agent" else "intent"
        events.append(CallEvent(sid, "transfer", at, {"queue": "billing", "intent": intent, "reason": reason}))
        result = "hangup" if ending == "abandoned" else "bridged"
        events.append(CallEvent(sid, "queue_exit", at + 60, {"result": result, "queue": "billing", "waited": 60}))
    if ending == "callback":
        events.append(CallEvent(sid, "callback_dialled", at + 600, {}))
        events.append(CallEvent(sid, "callback_succeeded", at + 660, {}))
    if ending == "misrouted":
        events.append(CallEvent(sid, "transfer", at, {"queue": "billing", "intent": intent, "reason": "intent"}))
        events.append(CallEvent(sid, "wrap_up", at + 300, {"misrouted": True, "right_intent": "internet_down"}))
    return events


def fortnight() -> list[CallEvent]:
    """Last week (days -14..-8): 1 pay_bill call a day. This week (days -7..-1), every day: a contained balance
    check, a pay_bill transfer, an agent request after a no-input, and an internet_down call abandoned in the queue;
    on the last day also a German call-back and a misroute reported by the agent."""
    events: list[CallEvent] = []
    for day in range(14, 7, -1):
        events += one_call(f"old{day}", END - day * DAY + 3600)
    for day in range(7, 0, -1):
        at = END - day * DAY + 3600
        events += one_call(f"self{day}", at, intent="check_balance", ending="self_service")
        events += one_call(f"pay{day}", at + 100)
        events += one_call(f"agent{day}", at + 200, intent="speak_to_agent", ending="agent", misses=("no_input",))
        events += one_call(f"net{day}", at + 300, intent="internet_down", ending="abandoned",
                           misses=("no_match", "no_match"))
    events += one_call("cb", END - 3000, locale="de-DE", intent="pay_bill", ending="callback")
    events += one_call("mis", END - 2000, intent="billing_question", ending="misrouted")
    return events


def test_a_week_of_calls_adds_up(redis_client):
    store = CallStore(redis_client, call_ttl_s=3600, context_ttl_s=3600)
    for event in fortnight():
        store.log_event(event)
    events = store.events_between(END - 14 * DAY, END)
    week = analytics.report(events, start=END - 7 * DAY, end=END)
    assert week.calls == 7 * 4 + 2
    assert week.containment == round(7 / 30, 3)
    assert week.transfer_rate == round((7 * 3 + 1) / 30, 3)
    assert week.agent_requested_rate == round(7 / 30, 3)
    assert week.intents["internet_down"] == {"calls": 7, "transferred": 7, "transfer_rate": 1.0}
    assert week.intents["check_balance"]["transferred"] == 0
    assert week.steps["intent"]["no_input"] == 7 and week.steps["intent"]["no_match"] == 14
    assert week.steps["intent"]["turns"] == 30 + 7 + 14
    assert week.queue_exits == 21 and week.abandonment == round(7 / 21, 3) and week.avg_wait_s == 60.0
    assert week.avg_time_to_route_s is not None and week.avg_time_to_route_s > 10
    assert week.callbacks == {"requested": 1, "dialled": 1, "succeeded": 1}
    assert week.misroutes == 1
    assert week.top_requests[0] == ("pay_bill", 8)
    assert week.growing[0]["intent"] in ("check_balance", "internet_down", "speak_to_agent")
    assert {g["intent"]: g["change"] for g in week.growing}["pay_bill"] == 1  # 8 this week, 7 the week before
    assert [d["calls"] for d in week.days] == [4] * 6 + [6]
    german = analytics.report(events, locale="de-DE", start=END - 7 * DAY, end=END)
    assert german.calls == 1 and german.callbacks["requested"] == 1
    assert ("day", "2024-10-03", "calls", 6) in week.rows()


def test_events_of_a_forgotten_call_leave_every_day(redis_client):
    from ivr.store.forget import forget_caller

    store = CallStore(redis_client, call_ttl_s=3600, context_ttl_s=3600)
    for event in one_call("CA1", END - 2 * DAY) + one_call("CA2", END - DAY):
        store.log_event(event)
    store.add_to_history("+15550100001", {"call": "CA1", "at": END - 2 * DAY})
    deleted = forget_caller(redis_client, "+15550100001")
    assert deleted["events"] == 4
    assert {e.call for e in store.events(100)} == {"CA2"}
