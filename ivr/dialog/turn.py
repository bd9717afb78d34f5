"""One dialog step over a private copy of the state: the output helpers every step handler shares (say, listen,
retry, transfer, goodbye). Pure: the grammar and the time are given, nothing is looked up or run."""
from __future__ import annotations

import copy

from ivr.dialog.state import DialogState, Step
from ivr.grammar import Grammar, spoken_hours, vocabulary
from ivr.types import Action, Expectation, Hangup, Listen, ListenKind, Say, Transfer, Turn

WITHHELD = frozenset({"+266696687", "+86282452253", "+8656696", "+2562533", "+7378742833"})


class DialogTurn:
    """Collects the actions of one step; `state` is a copy, so the caller's state is never changed."""

    def __init__(self, state: DialogState, grammar: Grammar, now: float):
        self.state = copy.deepcopy(state)
        self.grammar = grammar
        self.prompts = grammar.prompts
        self.now = now
        self.actions: list[Action] = []

    def say(self, text: str) -> None:
        protected = [getattr(self.prompts, name) for name in self.grammar.uninterruptible]
        barge_in = not any(text == p or (isinstance(p, list) and text in p) for p in protected)
        self.actions.append(Say(text, barge_in=barge_in))
        self.state.turns.append(Turn("ivr", text, self.now))

    def listen(self) -> None:
        """Ask for the answer the current step expects."""
        step, words = self.state.step, vocabulary(self.grammar.locale)
        if step == "intent":
            self.expect("intent", hints=self.grammar.hints())
        elif step in ("confirm", "anything_else"):
            self.expect("yes_no", hints=words.yes_no_hints)
        elif step == "disambiguate":
            self.expect("choice", hints=tuple(self.grammar.intents[c].label for c in self.state.choices))
        elif step == "slot":
            slot = self.grammar.slots[self.state.pending_slot or ""]
            self.expect("digits", hints=words.digit_words, max_digits=slot.length or slot.max_length or 20)
        elif step == "callback":
            self.expect("digits", hints=words.digit_words, max_digits=15)

    def expect(self, kind: ListenKind, *, hints: tuple[str, ...] = (), max_digits: int = 1) -> None:
        timing = self.grammar.timing
        self.actions.append(Listen(kind, hints=hints, max_digits=max_digits,
                                   timeout_s=getattr(timing.no_input_s, kind),
                                   end_silence_ms=getattr(timing.end_silence_ms, kind)))

    def goto(self, step: Step) -> None:
        self.state.step = step
        self.state.retries = 0

    def remember(self, intent: str, score: float, ranking) -> None:
        self.state.intent, self.state.score = intent, round(score, 4)
        self.state.ranking = [(name, round(s, 4)) for name, s in ranking[:4]]

    def ask_confirmation(self) -> None:
        self.say(self.prompts.confirm.format(label=self.grammar.intents[self.state.intent or ""].label))
        self.listen()

    def ask_disambiguation(self) -> None:
        first, second = (self.grammar.intents[c].label for c in self.state.choices)
        self.say(self.prompts.disambiguate.format(first=first, second=second))
        self.listen()

    def retry(self, *, reason: str) -> None:
        """Ask the current question again, saying what went wrong; past the grammar's retry limit, escalate."""
        self.state.retries += 1
        self.state.total_retries += 1
        step, heard_nothing = self.state.step, reason == "no_input"
        if step == "anything_else" and heard_nothing:
            return self.goodbye()
        if step == "callback" and heard_nothing and self.silent_line():
            return self.end_silent_line()
        if self.state.retries > self.grammar.max_retries:
            if step == "callback":
                return self.transfer(self.grammar.default_queue, [], reason="callback_failed", respect_hours=False)
            if step == "intent" and self.silent_line():
                return self.offer_callback_to_silent_line() if self.caller_id_known() else self.end_silent_line()
            return self.transfer_to_intent_queue(reason=reason)
        if step != "intent":
            self.say(self.prompts.didnt_hear if heard_nothing else self.prompts.slot_retry)
            if self.state.retries >= 2:  # the second miss: point to the keypad before asking once more
                self.say(self.prompts.keypad_hint)
            return self.ask_again()
        variants = self.prompts.no_input if heard_nothing else self.prompts.no_match
        if reason == "out_of_scope":  # say what the hotline does handle, then as for anything not understood
            variants = [self.prompts.out_of_scope, *self.prompts.no_match[1:]]
        text = variants[min(self.state.retries - 1, len(variants) - 1)]
        if self.state.retries == len(variants):
            text = f"{text} {self.grammar.menu()}"  # last try: offer the keypad menu
        self.say(text)
        self.listen()

    def ask_again(self) -> None:
        """The question of the current step, once more (after "Sorry, I didn't hear anything.")."""
        step = self.state.step
        if step == "confirm":
            return self.ask_confirmation()
        if step == "disambiguate":
            return self.ask_disambiguation()
        if step == "slot":
            self.say(self.grammar.slots[self.state.pending_slot or ""].prompt)
        elif step == "callback":
            self.say(self.prompts.callback_offer)
        self.listen()

    def silent_line(self) -> bool:
        """Nothing was said or keyed on this call: an open line nobody speaks on."""
        return all(t.text == "[no input]" for t in self.state.turns if t.speaker == "caller")

    def caller_id_known(self) -> bool:
        """A number we can call back: not withheld (Twilio's stand-ins for anonymous, blocked, unknown callers)."""
        number = self.state.caller
        return number.startswith("+") and len(number) >= 8 and number not in WITHHELD

    def offer_callback_to_silent_line(self) -> None:
        """The caller may hear us while we cannot hear them (a broken microphone): one key brings a call back."""
        self.goto("callback")
        self.say(self.prompts.silent_callback_offer)
        self.listen()

    def end_silent_line(self) -> None:
        """A silent line is ended politely, not queued to an agent."""
        self.state.outcome = "no_input"
        self.goto("done")
        self.say(self.prompts.silent_goodbye)
        self.actions.append(Hangup())

    def goodbye(self) -> None:
        self.state.outcome = self.state.outcome or "goodbye"
        self.goto("done")
        self.say(self.prompts.goodbye)
        self.actions.append(Hangup())

    def transfer_to_intent_queue(self, *, reason: str) -> None:
        """The queue of the caller's topic; a caller who asked for a person gets the default queue when the
        topic's team is closed and it is open (a person now beats the right team tomorrow)."""
        intent = self.grammar.intents.get(self.state.intent or "")
        queue, skills = (intent.route.queue, intent.route.skills) if intent and intent.route.queue else (None, [])
        default = self.grammar.default_queue
        if queue is None or (reason == "agent_requested" and not self.is_open(queue) and self.is_open(default)):
            queue, skills = default, []
        self.transfer(queue, skills, reason=reason)

    def is_open(self, queue_name: str) -> bool:
        return self.grammar.queues[queue_name].is_open(self.now, self.grammar.locale)

    def transfer(self, queue_name: str, skills: list[str], *, reason: str, respect_hours: bool = True,
                 announce: bool = True) -> None:
        """Queue the caller; a closed queue offers a call back instead, unless this is the last resort."""
        queue = self.grammar.queues[queue_name]
        if respect_hours and not self.is_open(queue_name):
            self.state.queue = queue_name
            self.goto("callback")
            words = vocabulary(self.grammar.locale)
            hours = spoken_hours(queue.hours, queue.timezone, self.grammar.locale, words.days)
            day = queue.closed_today(self.now, self.grammar.locale)
            closed = self.prompts.closed_today if day else self.prompts.closed
            self.say(closed.format(queue=queue.label, day=day, hours=hours))
            self.say(self.prompts.callback_offer)
            return self.listen()
        self.state.queue, self.state.skills, self.state.transfer_reason = queue_name, list(skills), reason
        self.state.outcome = "transfer"
        self.goto("done")
        template = self.prompts.agent if reason == "agent_requested" else self.prompts.transfer
        if announce:
            self.say(template.format(queue=queue.label))
        self.actions.append(Transfer(queue_name, tuple(skills), reason))


def expecting(state: DialogState) -> Expectation:
    """What the question the caller is answering expects, for the NLU."""
    step = state.step
    if step in ("confirm", "callback"):
        return Expectation("yes_no" if step == "confirm" else "digits", rank_intents=False)
    if step == "anything_else":
        return Expectation("yes_no", rank_intents=True)
    if step == "disambiguate":
        return Expectation("choice", rank_intents=True, choices=tuple(state.choices))
    if step == "slot":
        return Expectation("digits", rank_intents=False)
    return Expectation("intent")
