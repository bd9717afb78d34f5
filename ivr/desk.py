"""The agent side of a call: a router that pairs queued callers with available agents (skills, language, longest
idle, priority), rings the agent's leg through the REST seam, whispers, bridges both into a conference named after
the caller's CallSid, and re-rings the next agent when one does not answer — the caller never leaves the queue
until an agent is on the line, so no place is lost."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlencode

from ivr.conversation import Conversations
from ivr.store.agents import Agent, AgentStore, Waiting
from ivr.types import CallEvent, TelephonyClient

log = logging.getLogger(__name__)


class Router(Protocol):
    """What the webhooks and the desk ask of a router: this Redis one, or later an adapter to Twilio TaskRouter."""

    def caller_waiting(self, call: str, *, queue: str, queue_sid: str, locale: str) -> None: ...
    def caller_gone(self, call: str) -> None: ...
    def set_available(self, agent_id: str) -> None: ...
    def leg_ended(self, call: str, agent_id: str, status: str, *, locale: str = "en-US") -> None: ...
    def sweep(self) -> int: ...


@dataclass
class AgentDesk:
    """The Redis router and everything around an agent's leg (see the module docstring)."""

    agents: AgentStore
    telephony: TelephonyClient
    conversations: Conversations
    public_url: str
    ring_timeout_s: int
    clock: Callable[[], float]
    callback_attempts: int = 3
    callback_retry_s: int = 900
    talk_ttl_s: int = 4 * 3600  # how long a connected pairing is kept (the conversation's length, at most)

    # --- callers --------------------------------------------------------------------------------------------
    def caller_waiting(self, call: str, *, queue: str, queue_sid: str, locale: str) -> None:
        """Twilio asked for hold audio, so the caller is in the queue: register them once and try to ring an agent."""
        grammar = self.conversations.grammar(locale)
        skills = self.skills_of(queue, locale)
        context = self.conversations.context(call)
        intent = grammar.intents.get(context.intent or "") if context else None
        waiting = Waiting(call, queue, queue_sid, skills, grammar.locale, self.clock(),
                          priority=intent.priority if intent else 0)
        if self.agents.add_waiting(waiting):
            self.note(call, "queued", queue=queue, skills=list(skills), priority=waiting.priority)
        self.route_caller(call)

    def route_caller(self, call: str) -> str | None:
        """Ring the longest-idle available agent who fits the caller; None when nobody fits or one already rings."""
        waiting = self.agents.waiting(call)
        if waiting is None or self.agents.reserved_agent(call):
            return None
        for agent in self.agents.idle():
            if not agent.fits(waiting.skills, waiting.locale[:2]):
                continue
            outcome = self.agents.reserve(call, agent.id)
            if outcome == "reserved":
                self.ring(agent, waiting)
                return agent.id
            if outcome == "caller_taken":
                return None
        return None

    def caller_gone(self, call: str) -> None:
        """The caller hung up: leave the waiting list; an agent being rung for them is stopped and freed."""
        waiting, agent_id = self.agents.caller_left(call, ttl_s=self.talk_ttl_s)
        if agent_id is None:
            if waiting is not None:
                self.note(call, "abandoned", queue=waiting.queue, waited=round(self.clock() - waiting.at))
            return
        presence = self.agents.presence(agent_id)
        if presence["state"] == "ringing" and presence.get("call") == call:
            self.agents.release(call, agent_id)
            self.agents.set_state(agent_id, "available", self.clock())  # not the agent's fault: ready again
            self.agents.publish(agent_id, {"type": "caller_gone", "call": call})
            self.note(call, "abandoned", queue=waiting.queue if waiting else None, agent=agent_id, while_ringing=True)
            try:
                self.telephony.hang_up(presence.get("leg", ""))
            except Exception:
                log.exception("call %s: the ringing leg of agent %s could not be stopped", call, agent_id)
            self.route_agent(agent_id)

    # --- agents ---------------------------------------------------------------------------------------------
    def set_available(self, agent_id: str) -> None:
        self.agents.set_state(agent_id, "available", self.clock())
        self.route_agent(agent_id)

    def route_agent(self, agent_id: str) -> str | None:
        """An agent became free: ring them for the first waiting caller they fit (priority, then the longest wait)."""
        agent = self.agents.agent(agent_id)
        if agent is None:
            return None
        for waiting in self.agents.all_waiting():
            if not agent.fits(waiting.skills, waiting.locale[:2]):
                continue
            outcome = self.agents.reserve(waiting.call, agent_id)
            if outcome == "reserved":
                self.ring(agent, waiting)
                return waiting.call
            if outcome == "agent_taken":
                return None
        return self.callback_for(agent)

    def callback_for(self, agent: Agent) -> str | None:
        """Nobody waiting fits the agent: the oldest due call-back they can take. The agent's leg rings first and
        hears the context; the customer is dialled into the conference once the agent is on the line."""
        now = self.clock()
        for request in self.conversations.store.callbacks():
            if request.not_before > now or not agent.fits(self.skills_of(request.queue, request.locale),
                                                          request.locale[:2]):
                continue
            outcome = self.agents.reserve(request.call, agent.id)
            if outcome == "reserved":
                self.ring_for(agent, request.call, locale=request.locale, queue=request.queue, callback=True)
                return request.call
            if outcome == "agent_taken":
                return None
        return None

    def skills_of(self, queue: str | None, locale: str) -> tuple[str, ...]:
        definition = self.conversations.grammar(locale).queues.get(queue or "")
        return tuple(definition.skills) if definition and definition.skills else ((queue,) if queue else ())

    def ring(self, agent: Agent, waiting: Waiting) -> None:
        self.ring_for(agent, waiting.call, locale=waiting.locale, queue=waiting.queue)

    def ring_for(self, agent: Agent, call: str, *, locale: str, queue: str | None, callback: bool = False,
                 transfer_from: str = "") -> None:
        """Place the agent's leg; if Twilio refuses, free the pairing (the sweep tries again)."""
        now = self.clock()
        extra = {"transfer_from": transfer_from} if transfer_from else {}
        self.agents.set_state(agent.id, "ringing", now, call=call, **extra)
        query = {"call": call, "agent": agent.id, "locale": locale, **({"callback": "1"} if callback else {}),
                 **({"transfer": "1"} if transfer_from else {})}
        try:
            leg = self.telephony.ring(agent.contact or f"client:{agent.id}", url=self.url("/voice/agent-join", query),
                                      status_callback=self.url("/voice/agent-status", query),
                                      timeout_s=self.ring_timeout_s)
        except Exception:
            log.exception("call %s: could not ring agent %s", call, agent.id)
            self.agents.release(f"{call}:transfer" if transfer_from else call, agent.id)
            self.agents.set_state(agent.id, "available", now)
            if transfer_from:
                self.telephony.hold(call, call, on=False, hold_url="")
                self.agents.publish(transfer_from, {"type": "transfer_failed", "call": call})
            return
        self.agents.set_state(agent.id, "ringing", now, call=call, leg=leg, **extra)
        self.agents.assign(agent.id, call, ttl_s=self.talk_ttl_s)
        self.agents.publish(agent.id, {"type": "ringing", "call": call, "callback": callback})
        self.note(call, "agent_ringing", agent=agent.id, queue=queue, callback=callback)

    def answered(self, call: str, agent_id: str, *, callback: bool = False, transfer: bool = False) -> bool:
        """The agent picked up: whether their caller is still theirs (else the agent is told the caller has gone)."""
        if transfer:
            return self.agents.reserved_call(agent_id) == f"{call}:transfer"
        still_there = self.conversations.store.callback(call) if callback else self.agents.waiting(call)
        return self.agents.reserved_call(agent_id) == call and still_there is not None

    def dial_customer(self, call: str, agent_id: str) -> bool:
        """A call-back's agent is on the line: dial the customer into the conference."""
        request = self.conversations.store.callback(call)
        if request is None or self.agents.reserved_call(agent_id) != call:
            return False
        query = {"call": call, "agent": agent_id, "locale": request.locale}
        try:
            self.telephony.ring(request.number, url=self.url("/voice/customer-join", query),
                                status_callback=self.url("/voice/callback-status", query), timeout_s=30)
        except Exception:
            log.exception("call-back %s: could not dial the customer", call)
            self.callback_ended(call, agent_id, "failed")
            return False
        self.conversations.store.add_callback(replace(request, attempts=request.attempts + 1))
        self.agents.extend(call, agent_id, self.talk_ttl_s)
        self.agents.set_state(agent_id, "busy", self.clock(), call=call,
                              leg=self.agents.presence(agent_id).get("leg", ""))
        self.agents.publish(agent_id, {"type": "connected", "call": call, "callback": True})
        self.note(call, "callback_dialled", agent=agent_id, attempt=request.attempts + 1)
        return True

    def callback_ended(self, call: str, agent_id: str, status: str) -> None:
        """The customer's leg of a call-back ended: answered (done), or not (dialled again later, up to the limit).
        An agent waiting alone in the conference is released."""
        request = self.conversations.store.callback(call)
        if request is None:
            return
        now = self.clock()
        if status == "completed":
            self.conversations.store.remove_callback(call)
            self.note(call, "callback_succeeded", agent=agent_id, attempts=request.attempts)
            return
        if request.attempts >= self.callback_attempts:
            self.conversations.store.remove_callback(call)
            self.note(call, "callback_failed", agent=agent_id, attempts=request.attempts, status=status)
        else:
            self.conversations.store.add_callback(replace(request, not_before=now + self.callback_retry_s))
            self.note(call, "callback_missed", agent=agent_id, attempts=request.attempts, status=status)
        self.hang_up(self.agents.presence(agent_id).get("leg", ""))  # its status callback brings wrap-up

    def bridge(self, call: str, agent_id: str) -> bool:
        """After the whisper: move the caller out of the queue into the conference the agent is joining."""
        waiting = self.agents.waiting(call)
        if waiting is None or self.agents.reserved_call(agent_id) != call:
            return False
        try:
            self.telephony.redirect_queued(waiting.queue_sid, call, url=self.url("/voice/caller-join", {"call": call}))
        except Exception:
            log.exception("call %s: could not be taken out of queue %s", call, waiting.queue)
            return False
        try:  # the caller is on the way to the conference: the agent must join it, whatever the bookkeeping does
            now = self.clock()
            self.agents.remove_waiting(call)
            self.agents.extend(call, agent_id, self.talk_ttl_s)
            self.agents.set_state(agent_id, "busy", now, call=call, leg=self.agents.presence(agent_id).get("leg", ""))
            self.agents.publish(agent_id, {"type": "connected", "call": call})
            self.conversations.left_queue(call, queue=waiting.queue, result="bridged", waited_s=round(now - waiting.at))
            self.note(call, "connected", agent=agent_id, queue=waiting.queue, waited=round(now - waiting.at))
        except Exception:
            log.exception("call %s: bridged to %s, but the store could not record it", call, agent_id)
        return True

    def leg_ended(self, call: str, agent_id: str, status: str, *, locale: str = "en-US") -> None:
        """The agent's leg ended. After a conversation: wrap-up. Unanswered, declined or failed: the agent is marked
        missed (not ready) and the next agent is rung while the caller keeps their place in the queue."""
        presence, now = self.agents.presence(agent_id), self.clock()
        if presence.get("call") != call:
            return  # a late or repeated callback for an earlier call
        self.agents.release(call, agent_id)
        if presence["state"] == "busy":
            self.agents.set_state(agent_id, "wrap_up", now, call=call)
            self.agents.publish(agent_id, {"type": "ended", "call": call})
            self.note(call, "agent_left", agent=agent_id)
            if not self.agents.caller_gone(call):  # never leave a caller alone in a silent conference
                try:
                    self.telephony.redirect_call(call, url=self.url("/voice/agent-left", {"locale": locale}))
                except Exception:  # the caller hung up at the same moment
                    log.info("call %s: the caller had left too", call)
            return
        if presence["state"] == "ringing":
            self.agents.set_state(agent_id, "missed", now, call=call)
            self.agents.publish(agent_id, {"type": "missed", "call": call})
            self.note(call, "missed", agent=agent_id, status=status)
            self.route_caller(call)

    def set_unavailable(self, agent_id: str) -> None:
        """The agent steps away; a call that is ringing them goes to the next agent."""
        presence = self.agents.presence(agent_id)
        if presence["state"] == "busy":
            raise ValueError("finish the call first")
        self.agents.set_state(agent_id, "offline", self.clock())
        if presence["state"] == "ringing" and presence.get("call"):
            self.agents.release(presence["call"], agent_id)
            self.route_caller(presence["call"])

    def wrap_up(self, agent_id: str, call: str, *, disposition: str, note: str, right_intent: str | None) -> None:
        """After the call: the outcome, a note for whoever handles the caller next, and whether the bot routed right
        ("the right intent was …" feeds the admins' review of missed utterances)."""
        self.add_note(agent_id, call, note)
        if right_intent:
            self.report_misroute(call, right_intent)
        self.note(call, "wrap_up", agent=agent_id, disposition=disposition, note=bool(note),
                  misrouted=bool(right_intent), right_intent=right_intent)
        if self.agents.presence(agent_id)["state"] in ("wrap_up", "missed"):
            self.set_available(agent_id)

    # --- transfers ------------------------------------------------------------------------------------------
    def transfer_to_queue(self, agent_id: str, call: str, *, queue: str, locale: str, note: str) -> None:
        """Cold: the caller goes back to a queue (their context and this note travel with them), the agent is free
        to wrap up."""
        if self.agents.reserved_call(agent_id) != call:
            raise PermissionError("not your call")
        self.add_note(agent_id, call, note)
        leg = self.agents.presence(agent_id).get("leg", "")
        self.agents.release(call, agent_id)
        self.agents.set_state(agent_id, "wrap_up", self.clock(), call=call)
        self.telephony.redirect_call(call, url=self.url("/voice/requeue", {"queue": queue, "locale": locale}))
        self.note(call, "transferred", agent=agent_id, to_queue=queue, mode="cold")
        self.hang_up(leg)

    def transfer_to_agent(self, agent_id: str, call: str, *, to_agent: str, locale: str, note: str) -> bool:
        """Warm: the caller is held (with music) while the second agent is rung, whispered and joins; the two talk,
        then the first completes (and leaves) or cancels. False when the second agent is not free."""
        if self.agents.reserved_call(agent_id) != call:
            raise PermissionError("not your call")
        target = self.agents.agent(to_agent)
        if target is None or self.agents.reserve(f"{call}:transfer", to_agent) != "reserved":
            return False
        self.add_note(agent_id, call, note)
        self.telephony.hold(call, call, on=True, hold_url=self.url("/voice/hold-music.wav", {}))
        self.ring_for(target, call, locale=locale, queue=None, transfer_from=agent_id)
        self.note(call, "transfer_ringing", agent=agent_id, to_agent=to_agent, mode="warm")
        return True

    def join_transfer(self, call: str, agent_id: str) -> bool:
        """The second agent heard the whisper: into the conference, where the first agent waits."""
        if self.agents.reserved_call(agent_id) != f"{call}:transfer":
            return False
        presence = self.agents.presence(agent_id)
        self.agents.set_state(agent_id, "busy", self.clock(), call=call, leg=presence.get("leg", ""),
                              transfer_from=presence.get("transfer_from", ""))
        self.agents.publish(agent_id, {"type": "connected", "call": call})
        self.agents.publish(presence.get("transfer_from", ""), {"type": "transfer_answered", "call": call,
                                                                  "agent": agent_id})
        return True

    def complete_transfer(self, agent_id: str, call: str) -> str:
        """The first agent hands the caller over and leaves; returns who has the call now."""
        second = self.transfer_target(agent_id, call)
        self.agents.hand_over(call, agent_id, second, self.talk_ttl_s)
        leg = self.agents.presence(agent_id).get("leg", "")
        self.agents.set_state(agent_id, "wrap_up", self.clock(), call=call)
        self.telephony.hold(call, call, on=False, hold_url="")
        self.note(call, "transferred", agent=agent_id, to_agent=second, mode="warm")
        self.hang_up(leg)
        return second

    def cancel_transfer(self, agent_id: str, call: str) -> None:
        """The first agent keeps the caller: the second agent's leg ends and they are free again."""
        second = self.transfer_target(agent_id, call)
        leg = self.agents.presence(second).get("leg", "")
        self.agents.release(f"{call}:transfer", second)
        self.agents.set_state(second, "available", self.clock())
        self.telephony.hold(call, call, on=False, hold_url="")
        self.note(call, "transfer_cancelled", agent=agent_id, to_agent=second)
        self.hang_up(leg)

    def transfer_target(self, agent_id: str, call: str) -> str:
        if self.agents.reserved_call(agent_id) != call:
            raise PermissionError("not your call")
        for agent in self.agents.agents():
            presence = self.agents.presence(agent.id)
            if presence.get("call") == call and presence.get("transfer_from") == agent_id:
                return agent.id
        raise LookupError("no transfer in progress")

    def transfer_leg_ended(self, call: str, agent_id: str, status: str) -> None:
        """The second agent's leg ended before the hand-over: not answered (the first agent keeps the caller), or
        after it (then it is this agent's call like any other)."""
        presence = self.agents.presence(agent_id)
        if presence.get("call") != call or self.agents.reserved_call(agent_id) != f"{call}:transfer":
            return self.leg_ended(call, agent_id, status)
        self.agents.release(f"{call}:transfer", agent_id)
        self.agents.set_state(agent_id, "missed" if presence["state"] == "ringing" else "available", self.clock())
        self.telephony.hold(call, call, on=False, hold_url="")
        self.agents.publish(presence.get("transfer_from", ""), {"type": "transfer_failed", "call": call})
        self.note(call, "transfer_failed", agent=presence.get("transfer_from"), to_agent=agent_id, status=status)

    def add_note(self, agent_id: str, call: str, note: str) -> None:
        if note.strip():
            self.conversations.store.add_note(call, {"agent": agent_id, "text": note.strip()[:2000],
                                                     "at": self.clock()})

    def hang_up(self, leg: str) -> None:
        try:
            if leg:
                self.telephony.hang_up(leg)
        except Exception:
            log.exception("agent leg %s could not be ended", leg)

    def report_misroute(self, call: str, right_intent: str) -> None:
        """The agent says the bot routed wrong: the caller's request goes to the admins' inbox with the right intent."""
        context, inbox = self.conversations.context(call), self.conversations.inbox
        request = next((t["text"] for t in context.transcript if t.get("speaker") == "caller"), "") if context else ""
        if context and inbox is not None and request:
            inbox.add(context.locale, request, reason="misrouted", intent=right_intent, now=self.clock())

    def screen_pop(self, agent_id: str, call: str) -> dict | None:
        """Everything the caller already told the bot, for the agent's screen; None when the call is not theirs."""
        if not self.agents.was_assigned(agent_id, call):
            return None
        context = self.conversations.context(call)
        waiting = self.agents.waiting(call)
        grammar = self.conversations.grammar(context.locale if context else None)
        pop: dict = {"call": call, "context": context.to_dict() if context else None,
                     "labels": {name: intent.label for name, intent in grammar.intents.items()},
                     "history": self.conversations.history(context.caller, before=call) if context else [],
                     "notes": self.conversations.store.notes(call),
                     "queued_at": waiting.at if waiting else None, "now": self.clock()}
        if context and context.slots.get("account_number"):
            number = context.slots["account_number"]
            pop["context"]["slots"]["account_number"] = "•" * (len(number) - 3) + number[-3:]
        return pop

    def sweep(self) -> int:
        """Every few seconds, on every worker (reservations make that safe): widen the skills of callers past their
        queue's overflow time, ring agents for callers nobody is ringing (after a failed ring or a lost status
        callback), and give idle agents the call-backs that are due. Returns how many agents it rang."""
        now, rung = self.clock(), 0
        for waiting in self.agents.all_waiting():
            definition = self.conversations.grammar(waiting.locale).queues.get(waiting.queue)
            if (definition and definition.overflow and definition.overflow_after_s
                    and now - waiting.at >= definition.overflow_after_s and not waiting.data.get("overflowed")):
                wider = tuple(sorted(set(self.skills_of(definition.overflow, waiting.locale))))
                self.agents.update_waiting(replace(waiting, skills=wider, data={**waiting.data, "overflowed": True}))
                self.note(waiting.call, "overflow", queue=waiting.queue, to=definition.overflow)
            rung += self.route_caller(waiting.call) is not None
        for agent in self.agents.idle():
            rung += self.callback_for(agent) is not None
        return rung

    def run_sweeps(self, *, interval_s: float = 5.0) -> threading.Event:
        """The sweep in a background thread; set the returned event to stop it."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval_s):
                try:
                    self.sweep()
                except Exception:
                    log.exception("agent sweep failed (next one in %.0f s)", interval_s)

        threading.Thread(target=loop, daemon=True, name="agent-sweep").start()
        return stop

    # --- helpers --------------------------------------------------------------------------------------------
    def url(self, path: str, query: dict[str, str]) -> str:
        return f"{self.public_url.rstrip('/')}{path}?{urlencode(query)}"

    def note(self, call: str, kind: str, **data) -> None:
        self.conversations.note(CallEvent(call, kind, self.clock(), data))
