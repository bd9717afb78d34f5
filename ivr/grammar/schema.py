"""The hotline definition as pydantic models: what admins may write in a grammar file, checked field by field."""
from __future__ import annotations

import string
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.grammar.hours import check_region, check_timezone, closed_all_day, is_open, parse_hours, spoken_hours
from ivr.grammar.vocabulary import vocabulary

AGENT_INTENT = "speak_to_agent"  # by convention: the intent of callers who ask for a person


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Strict):
    queue: str | None = None
    skills: list[str] = []
    action: str | None = None  # a registered self-service action; `queue` is then its fallback

    @model_validator(mode="after")
    def _one_target(self) -> Route:
        if not self.queue and not self.action:
            raise ValueError("a route needs a queue or an action")
        return self


class Intent(_Strict):
    label: str
    phrases: list[str] = Field(min_length=3)
    route: Route
    slots: list[str] = []
    confirm: Literal["auto", "always", "never"] = "auto"
    dtmf: str | None = Field(default=None, pattern=r"^[1-9]$")
    priority: int = Field(default=0, ge=-5, le=5)  # each step up is served as if queued a minute earlier


class Slot(_Strict):
    type: Literal["digits", "yes_no"]
    prompt: str
    length: int | None = Field(default=None, ge=1, le=20)
    min_length: int | None = Field(default=None, ge=1, le=20)
    max_length: int | None = Field(default=None, ge=1, le=20)


class Queue(_Strict):
    label: str
    hours: str = "always"
    timezone: str = "UTC"
    skills: list[str] = []  # what an agent needs to take this queue's calls; empty: a skill named like the queue
    overflow: str | None = None  # after `overflow_after_s` in this queue, agents of that queue may take the caller too
    overflow_after_s: int = Field(default=0, ge=0)  # 0: never
    holidays: str | None = None  # closed on this region's public holidays: "US-NY", "DE-BY"
    closed_on: dict[date, str] = {}  # special closures: {2026-12-24: Heiligabend}
    max_wait_before_callback: int = 300

    @field_validator("hours")
    @classmethod
    def _hours(cls, spec: str) -> str:
        parse_hours(spec)
        return spec

    _timezone = field_validator("timezone")(check_timezone)
    _holidays = field_validator("holidays")(check_region)

    def closed_today(self, now: float, locale: str) -> str | None:
        """The holiday or special closure that shuts this queue all day at `now`, else None."""
        return closed_all_day(self.holidays, self.closed_on, self.timezone, now, locale[:2])

    def is_open(self, now: float, locale: str) -> bool:
        return self.closed_today(now, locale) is None and is_open(self.hours, self.timezone, now)


class Thresholds(_Strict):
    out_of_scope: float | Literal["auto"] = "auto"  # auto: chosen from the grammar's phrases at build time
    confirm: float = Field(default=0.6, ge=0, le=1)
    disambiguate_margin: float = Field(default=0.12, ge=0, le=1)

    @field_validator("out_of_scope")
    @classmethod
    def _share(cls, value: float | str) -> float | str:
        if value != "auto" and not 0 <= float(value) <= 1:
            raise ValueError("use a number from 0 to 1, or auto")
        return value


class NoInput(_Strict):
    """Seconds to wait for the caller to start, per kind of question."""

    intent: int = Field(default=5, ge=1, le=30)
    yes_no: int = Field(default=5, ge=1, le=30)
    choice: int = Field(default=5, ge=1, le=30)
    digits: int = Field(default=8, ge=1, le=30)


class EndSilence(_Strict):
    """Milliseconds of trailing silence that end the caller's turn (stream mode), per kind of question."""

    intent: int = Field(default=800, ge=200, le=5000)
    yes_no: int = Field(default=600, ge=200, le=5000)
    choice: int = Field(default=700, ge=200, le=5000)
    digits: int = Field(default=1200, ge=200, le=5000)


class Timing(_Strict):
    no_input_s: NoInput = NoInput()
    end_silence_ms: EndSilence = EndSilence()


class Prompts(_Strict):
    greeting: str
    no_input: list[str] = Field(min_length=1)
    no_match: list[str] = Field(min_length=1)
    out_of_scope: str  # a request the hotline does not handle: say what it does handle
    confirm: str  # {label}
    disambiguate: str  # {first} {second}
    slot_retry: str
    didnt_hear: str  # before asking a question again after silence
    keypad_hint: str  # after the second miss at a question, before asking it once more
    understood: str  # {label}: said before asking for details ("About your invoice:")
    also_mentioned: str  # {label}: the next of several needs named in one sentence
    silent_goodbye: str  # a line that stayed silent through every reprompt
    silent_callback_offer: str  # before that, when the caller ID is known: a key for a call back
    callback_offer: str  # after `closed`, and again when the answer was not understood
    transfer: str  # {queue}
    agent: str
    closed: str  # {queue} {hours} (spoken: "Monday to Friday from 8 AM to 8 PM")
    closed_today: str  # {queue} {day} {hours}: a public holiday or special closure
    callback_confirm: str
    anything_else: str
    another: str
    menu_option: str  # {label} {key}
    goodbye: str
    menu: str  # spoken DTMF menu; {options}
    wait: str  # {position} {minutes}
    hold_comfort: str  # between the hold music
    hold_callback: str  # offered on hold after the queue's max_wait_before_callback
    callback_queued: str
    callback_intro: str  # the customer answers a call-back: who is calling, before the agent joins
    whisper: str  # {summary}
    error: str


PLACEHOLDERS: dict[str, set[str]] = {  # prompt → the placeholders it is formatted with; others have none
    name: set() for name in Prompts.model_fields
} | {"confirm": {"label"}, "disambiguate": {"first", "second"}, "transfer": {"queue"}, "agent": {"queue"},
     "closed": {"queue", "hours"}, "closed_today": {"queue", "day", "hours"}, "menu_option": {"label", "key"},
     "menu": {"options"}, "wait": {"position", "minutes"}, "whisper": {"summary"}, "understood": {"label"},
     "also_mentioned": {"label"}}


class Grammar(_Strict):
    locale: str = Field(pattern=r"^[a-z]{2}-[A-Z]{2}$")
    name: str
    default_queue: str
    max_retries: int = Field(default=2, ge=0, le=5)
    agent_words: list[str] = Field(min_length=1)
    thresholds: Thresholds = Thresholds()
    timing: Timing = Timing()
    uninterruptible: list[str] = ["greeting"]  # prompts callers cannot barge into (e.g. the legal disclosure)
    prompts: Prompts
    intents: dict[str, Intent] = Field(min_length=2)
    out_of_scope_examples: list[str] = []  # things callers say that this hotline does not handle
    slots: dict[str, Slot] = {}
    queues: dict[str, Queue] = Field(min_length=1)

    @field_validator("intents")
    @classmethod
    def _unique_dtmf(cls, intents: dict[str, Intent]) -> dict[str, Intent]:
        seen: dict[str, str] = {}
        for name, intent in intents.items():
            if intent.dtmf and intent.dtmf in seen:
                raise ValueError(f"dtmf key {intent.dtmf} used by both {seen[intent.dtmf]} and {name}")
            if intent.dtmf:
                seen[intent.dtmf] = name
        return intents

    def menu(self) -> str:
        """The spoken keypad menu: every intent that has a key, then the agent option."""
        p = self.prompts
        options = " ".join(p.menu_option.format(label=i.label, key=i.dtmf) for i in self.intents.values() if i.dtmf)
        return p.menu.format(options=options)

    def static_prompts(self) -> list[str]:
        """Every prompt text known without a caller's data, for pre-rendering."""
        p = self.prompts
        texts = [p.greeting, *p.no_input, *p.no_match, p.out_of_scope, p.slot_retry, p.didnt_hear, p.keypad_hint,
                 p.silent_goodbye, p.silent_callback_offer, p.callback_offer, p.hold_comfort, p.anything_else,
                 p.another, p.goodbye, p.callback_confirm, p.callback_intro, p.error,
                 *(s.prompt for s in self.slots.values()), self.menu(),
                 *(f"{variants[-1]} {self.menu()}" for variants in (p.no_input, p.no_match))]  # the last reprompt
        for queue in self.queues.values():
            texts += [p.transfer.format(queue=queue.label), p.agent.format(queue=queue.label)]
        for intent in self.intents.values():
            texts.append(p.confirm.format(label=intent.label))
            texts += [f"{p.understood.format(label=intent.label)} {self.slots[s].prompt}" for s in intent.slots[:1]]
        return texts

    def prompt_samples(self) -> list[tuple[tuple, str]]:
        """Every prompt as callers hear it, the run-time placeholders filled with sample values: (where in the file,
        text) pairs for a dry run of the speech engine."""
        german = self.locale.startswith("de")
        intents, queue = list(self.intents.values()), next(iter(self.queues.values()))
        hours = spoken_hours(queue.hours, queue.timezone, self.locale, vocabulary(self.locale).days)
        sample = {"label": intents[0].label, "first": intents[0].label, "second": intents[-1].label,
                  "queue": queue.label, "hours": hours, "day": "einem Feiertag" if german else "a public holiday",
                  "key": "1", "options": "", "position": 3, "minutes": 5, "summary": intents[0].label}
        samples = []
        for name in Prompts.model_fields:
            value = getattr(self.prompts, name)
            for index, text in enumerate(value if isinstance(value, list) else [value]):
                where = ("prompts", name, index) if isinstance(value, list) else ("prompts", name)
                samples.append((where, self.menu() if name == "menu" else text.format(**sample)))
        return samples + [(("slots", name, "prompt"), slot.prompt) for name, slot in self.slots.items()]

    def placeholder_problems(self) -> list[tuple[tuple, str]]:
        """Prompts whose {placeholders} are not the ones they are given at run time (or do not parse)."""
        problems = []
        for field, allowed in PLACEHOLDERS.items():
            value = getattr(self.prompts, field)
            for index, text in enumerate(value if isinstance(value, list) else [value]):
                path = ("prompts", field, index) if isinstance(value, list) else ("prompts", field)
                try:
                    names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
                except ValueError as exc:
                    problems.append((path, f"cannot read the placeholders: {exc}"))
                    continue
                unknown = sorted(names - allowed)
                if unknown:
                    known = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
                    problems.append((path, f"unknown placeholder {{{unknown[0]}}} (this prompt knows: {known})"))
        return problems

    def hints(self, limit: int = 100) -> tuple[str, ...]:
        """Short phrases for <Gather hints> and recogniser biasing: agent words and intent phrases."""
        phrases = list(self.agent_words)
        for intent in self.intents.values():
            phrases.extend(p for p in intent.phrases[:6] if len(p) <= 40)
        return tuple(dict.fromkeys(phrases))[:limit]

    def references(self) -> list[tuple[tuple, str]]:
        """Cross-references pydantic cannot see: (path, problem) pairs."""
        problems: list[tuple[tuple, str]] = list(self.placeholder_problems())
        seen: dict[str, str] = {}
        for name, intent in self.intents.items():
            for index, phrase in enumerate(intent.phrases):
                key = " ".join(phrase.lower().split())
                if key in seen and seen[key] != name:
                    problems.append((("intents", name, "phrases", index),
                                     f"{phrase!r} is also a phrase of intent {seen[key]!r} (a phrase trains one)"))
                seen.setdefault(key, name)
        problems += [(("uninterruptible",), f"unknown prompt {name!r}") for name in self.uninterruptible
                     if name not in Prompts.model_fields]
        problems += [(("queues", name, "overflow"), f"unknown queue {queue.overflow!r}")
                     for name, queue in self.queues.items() if queue.overflow and queue.overflow not in self.queues]
        if self.default_queue not in self.queues:
            problems.append((("default_queue",), f"unknown queue {self.default_queue!r}"))
        for name, intent in self.intents.items():
            if intent.route.queue and intent.route.queue not in self.queues:
                problems.append((("intents", name, "route", "queue"), f"unknown queue {intent.route.queue!r}"))
            for slot in intent.slots:
                if slot not in self.slots:
                    problems.append((("intents", name, "slots"), f"unknown slot {slot!r}"))
        return problems
