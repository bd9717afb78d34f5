"""What callers ask for and where the bot fails, aggregated from the call events of a period: containment, transfers
per intent, agent requests, no-input and no-match per dialog step, queue abandonment and waits, call-backs,
misroutes agents reported, the top requests and the fastest-growing ones week over week. Pure: events in, figures
out, so the pages, the CSV export and the tests read the same numbers."""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.types import CallEvent

WEEK = 7 * 86_400
ABANDONED = {"hangup"}  # Twilio's QueueResult when the caller hung up while waiting


@dataclass
class Call:
    """One call's events, in order."""

    sid: str
    locale: str = ""
    started: float | None = None
    events: list[CallEvent] = field(default_factory=list)

    def of(self, kind: str) -> list[CallEvent]:
        return [e for e in self.events if e.type == kind]

    @property
    def intent(self) -> str | None:
        """What the caller asked for: the intent the call was transferred with, else the last one understood."""
        transfers = self.of("transfer")
        if transfers:  # an escalation after a denied guess carries no intent: the guess was not the request
            return transfers[0].data.get("intent")
        intents = [e.data.get("intent") for e in self.of("turn") if e.data.get("intent")]
        return intents[-1] if intents else None

    @property
    def transferred(self) -> bool:
        return bool(self.of("transfer"))

    @property
    def callback(self) -> bool:
        return bool(self.of("callback")) or any(e.data.get("outcome") == "callback" for e in self.of("turn"))

    @property
    def contained(self) -> bool:
        """Ended in self-service: a request answered by the bot, no agent, no call-back."""
        served = any(e.data.get("outcome") == "self_service" for e in self.of("turn"))
        return served and not self.transferred and not self.callback


def calls_of(events: Iterable[CallEvent], locale: str | None = None) -> list[Call]:
    """Group events by call; with `locale`, only calls that started in that locale."""
    calls: dict[str, Call] = {}
    for event in sorted(events, key=lambda e: e.at):
        call = calls.setdefault(event.call, Call(event.call))
        call.events.append(event)
        if event.type == "start":
            call.started, call.locale = event.at, event.data.get("locale", "")
    return [c for c in calls.values() if c.started is not None and (locale is None or c.locale == locale)]


def rate(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


@dataclass
class Report:
    calls: int
    containment: float
    transfer_rate: float
    agent_requested_rate: float
    intents: dict[str, dict]  # intent → calls, transferred, transfer_rate
    steps: dict[str, dict]  # dialog step asked → turns, no_input, no_match, rates
    queue_exits: int
    abandonment: float
    avg_wait_s: float | None
    avg_time_to_route_s: float | None
    callbacks: dict[str, int]  # requested, dialled, succeeded
    misroutes: int
    top_requests: list[tuple[str, int]]
    growing: list[dict]  # intent, this_week, last_week, change
    days: list[dict]  # day, calls, contained, transferred (the chart)

    def rows(self) -> list[tuple[str, str, str, object]]:
        """(section, key, metric, value) rows: the CSV export."""
        rows: list[tuple[str, str, str, object]] = [
            ("summary", "", name, getattr(self, name)) for name in (
                "calls", "containment", "transfer_rate", "agent_requested_rate", "queue_exits", "abandonment",
                "avg_wait_s", "avg_time_to_route_s", "misroutes")]
        rows += [("callbacks", "", name, n) for name, n in self.callbacks.items()]
        rows += [("intent", intent, metric, value) for intent, figures in self.intents.items()
                 for metric, value in figures.items()]
        rows += [("step", step, metric, value) for step, figures in self.steps.items()
                 for metric, value in figures.items()]
        rows += [("day", day["day"], metric, day[metric]) for day in self.days for metric in
                 ("calls", "contained", "transferred")]
        rows += [("growing", g["intent"], "change", g["change"]) for g in self.growing]
        return rows


def report(events: Iterable[CallEvent], *, locale: str | None = None, start: float, end: float) -> Report:
    """Figures for calls that started in [start, end); the week before `end` is compared with the week before it
    for the fastest-growing requests (pass events from `end - 2 weeks` on for that)."""
    every = calls_of(events, locale)
    calls = [c for c in every if start <= (c.started or 0) < end]
    n = len(calls)
    per_intent: dict[str, Counter] = defaultdict(Counter)
    steps: dict[str, Counter] = defaultdict(Counter)
    exits, abandoned, waits, to_route = 0, 0, [], []
    callbacks: Counter = Counter()
    misroutes = 0
    for call in calls:
        if call.intent:
            per_intent[call.intent]["calls"] += 1
            per_intent[call.intent]["transferred"] += call.transferred
        for turn in call.of("turn"):
            asked = turn.data.get("asked") or turn.data.get("step", "")
            steps[asked]["turns"] += 1
            if turn.data.get("miss"):
                steps[asked]["no_input" if turn.data["miss"] == "no_input" else "no_match"] += 1
        for exit_ in call.of("queue_exit"):
            exits += 1
            abandoned += exit_.data.get("result") in ABANDONED
            if exit_.data.get("result") == "bridged":
                waits.append(float(exit_.data.get("waited") or 0))
        waits += [float(e.data.get("waited") or 0) for e in call.of("connected")]
        if call.of("transfer"):
            to_route.append(call.of("transfer")[0].at - (call.started or 0))
        callbacks["requested"] += call.callback
        callbacks["dialled"] += len(call.of("callback_dialled"))
        callbacks["succeeded"] += len(call.of("callback_succeeded"))
        misroutes += sum(bool(e.data.get("misrouted")) for e in call.of("wrap_up"))
    agent_requested = sum(any(e.data.get("reason") == "agent_requested" for e in c.of("transfer")) for c in calls)
    by_day: dict[str, Counter] = defaultdict(Counter)
    for call in calls:
        day = by_day[time.strftime("%Y-%m-%d", time.gmtime(call.started or 0))]
        day["calls"] += 1
        day["contained"] += call.contained
        day["transferred"] += call.transferred
    return Report(
        calls=n,
        containment=rate(sum(c.contained for c in calls), n),
        transfer_rate=rate(sum(c.transferred for c in calls), n),
        agent_requested_rate=rate(agent_requested, n),
        intents={intent: {"calls": c["calls"], "transferred": c["transferred"],
                          "transfer_rate": rate(c["transferred"], c["calls"])}
                 for intent, c in sorted(per_intent.items(), key=lambda kv: -kv[1]["calls"])},
        steps={step: {"turns": c["turns"], "no_input": c["no_input"], "no_match": c["no_match"],
                      "no_input_rate": rate(c["no_input"], c["turns"]),
                      "no_match_rate": rate(c["no_match"], c["turns"])} for step, c in sorted(steps.items())},
        queue_exits=exits,
        abandonment=rate(abandoned, exits),
        avg_wait_s=mean(waits),
        avg_time_to_route_s=mean(to_route),
        callbacks={k: callbacks[k] for k in ("requested", "dialled", "succeeded")},
        misroutes=misroutes,
        top_requests=Counter({i: c["calls"] for i, c in per_intent.items()}).most_common(10),
        growing=growth(every, end),
        days=[{"day": day, **{k: c[k] for k in ("calls", "contained", "transferred")}}
              for day, c in sorted(by_day.items())],
    )


def growth(calls: list[Call], end: float) -> list[dict]:
    """Requests of the last 7 days against the 7 days before, the largest increase first."""
    this_week = Counter(c.intent for c in calls if c.intent and end - WEEK <= (c.started or 0) < end)
    last_week = Counter(c.intent for c in calls if c.intent and end - 2 * WEEK <= (c.started or 0) < end - WEEK)
    changes = {intent: this_week[intent] - last_week[intent] for intent in set(this_week) | set(last_week)}
    rising = sorted((i for i, change in changes.items() if change > 0), key=lambda i: (-changes[i], i))[:10]
    return [{"intent": i, "this_week": this_week[i], "last_week": last_week[i], "change": changes[i]} for i in rising]
