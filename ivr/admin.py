"""The admins' grammar workbench: a draft per locale edited as YAML or through forms (comments and order kept),
checked with the same schema as `ivr grammar check` plus warnings, measured on the regression set next to the
version in service, published as an immutable version every worker loads within seconds, rolled back by
re-publishing an earlier one; and the test console that shows what the NLU and the dialog would do with an
utterance. Every change goes to the audit log."""
from __future__ import annotations

import difflib
import hashlib
import io
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from ivr import dialog
from ivr.dialog import DialogState
from ivr.grammar import Grammar, GrammarError, grammar_files, parse_grammar
from ivr.nlu import Understanding, artifacts, understand
from ivr.nlu.catalog import GrammarCatalog, band_warning, threshold_description
from ivr.nlu.regression import evaluate, seed_labelled
from ivr.store.admins import AuditLog
from ivr.store.grammars import GrammarVersions
from ivr.types import Hangup, Listen, RunSelfService, Say, Transfer, Utterance

MIN_PHRASES = 5
SIMILAR = 0.8  # word overlap (Jaccard) above which two phrases of different intents are flagged


class DraftError(ValueError):
    """A form's edit cannot be made to the draft (it names nothing there, or the draft is not YAML)."""


class StaleDraft(Exception):
    """The draft changed since it was checked: check it again before publishing."""


@dataclass
class Check:
    """A draft's verdict: problems block publishing; warnings and figures are for the admin to weigh."""

    text: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    threshold: str = ""  # the out-of-scope threshold it would serve with, and for `auto` what it was chosen from
    figures: dict | None = None  # the draft on the regression set
    served_figures: dict | None = None  # the version in service on the same set

    @property
    def fingerprint(self) -> str:
        return text_hash(self.text)


@dataclass
class Trial:
    """What one grammar makes of one utterance: the NLU's reading and the dialog's next move."""

    target: str
    intent: str | None
    score: float
    ranking: list[tuple[str, float]]
    slots: dict[str, str]
    wants_agent: bool
    out_of_scope: bool
    says: list[str]
    does: str


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def words(phrase: str) -> frozenset[str]:
    return frozenset(re.findall(r"[\w']+", phrase.lower()))


def warnings_for(grammar: Grammar) -> list[str]:
    """Intents with too few phrases to learn from, and phrases of different intents that say the same thing."""
    out = [f"intent {name}: only {len(intent.phrases)} phrases (at least {MIN_PHRASES} recommended)"
           for name, intent in grammar.intents.items() if len(intent.phrases) < MIN_PHRASES]
    phrases = [(name, phrase, words(phrase)) for name, intent in grammar.intents.items() for phrase in intent.phrases]
    for (a, pa, wa), (b, pb, wb) in itertools.combinations(phrases, 2):
        if a != b and wa and wb and len(wa & wb) / len(wa | wb) >= SIMILAR:
            out.append(f"similar phrases in {a} and {b}: {pa!r} / {pb!r}")
    return out


def unified(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_name, new_name))


def describe(actions: list) -> tuple[list[str], str]:
    """The prompts the caller would hear, and where the call would go next."""
    says = [a.text for a in actions if isinstance(a, Say)]
    for action in actions:
        if isinstance(action, Transfer):
            return says, f"transfer to queue {action.queue} ({action.reason})"
        if isinstance(action, RunSelfService):
            return says, f"run self-service {action.name}"
        if isinstance(action, Hangup):
            return says, "hang up"
        if isinstance(action, Listen):
            return says, f"listen for {action.expect}"
    return says, "nothing"


class GrammarWorkbench:
    def __init__(self, versions: GrammarVersions, catalog: GrammarCatalog, audit: AuditLog,
                 clock: Callable[[], float]):
        self.versions = versions
        self.catalog = catalog
        self.audit = audit
        self.clock = clock
        self._trained: OrderedDict[str, Understanding] = OrderedDict()  # text hash → understanding (a few)

    # --- what is served, what is drafted -----------------------------------------------------------------
    def locales(self) -> list[str]:
        return sorted(set(grammar_files(self.catalog.grammar_dir)) | set(self.versions.published()))

    def served(self, locale: str) -> tuple[int, str]:
        """(version, YAML) in service: a published version, or the seed file (version 0)."""
        number = self.versions.in_service(locale)
        if number:
            return number, self.versions.text(locale, number)
        path = grammar_files(self.catalog.grammar_dir).get(locale)
        if path is None:
            raise LookupError(f"no grammar for {locale}")
        return 0, Path(path).read_text(encoding="utf-8")

    def draft(self, locale: str) -> dict:
        """The draft, or a fresh one from what is served: {"text", "by", "at", "base", "saved"}."""
        found = self.versions.draft(locale)
        if found:
            return {**found, "saved": True}
        number, text = self.served(locale)
        return {"text": text, "by": None, "at": None, "base": number, "saved": False}

    def save_draft(self, locale: str, text: str, *, by: str, what: str = "edited the draft") -> None:
        self.versions.save_draft(locale, text, by=by, now=self.clock(), base=self.draft(locale)["base"])
        self.audit.record(by, what, locale, now=self.clock())

    def discard_draft(self, locale: str, *, by: str) -> None:
        if self.versions.discard_draft(locale):
            self.audit.record(by, "discarded the draft", locale, now=self.clock())

    def edit(self, locale: str, change: Callable[[Any], None], *, by: str, what: str) -> None:
        """Change the draft's data (a form's edit) keeping the YAML's comments and order."""
        yaml = YAML()
        yaml.width = 4096  # never re-wrap a prompt
        yaml.indent(mapping=2, sequence=4, offset=2)  # the shipped files' style: "  - phrase" under its key
        yaml.preserve_quotes = True
        try:
            data = yaml.load(self.draft(locale)["text"])
        except YAMLError as exc:
            raise DraftError(f"the {locale} draft is not valid YAML ({exc}); mend it in the YAML view first") from None
        change(data)
        out = io.StringIO()
        yaml.dump(data, out)
        self.save_draft(locale, out.getvalue(), by=by, what=what)

    def add_phrase(self, locale: str, intent: str, phrase: str, *, by: str) -> None:
        def change(data: Any) -> None:
            if intent not in data.get("intents", {}):
                raise DraftError(f"no intent {intent} in the {locale} draft")
            phrases = data["intents"][intent].setdefault("phrases", [])
            if phrase not in phrases:
                phrases.append(phrase)

        self.edit(locale, change, by=by, what=f"added a phrase to {intent}: {phrase!r}")

    def add_out_of_scope(self, locale: str, phrase: str, *, by: str) -> None:
        def change(data: Any) -> None:
            examples = data.setdefault("out_of_scope_examples", [])
            if phrase not in examples:
                examples.append(phrase)

        self.edit(locale, change, by=by, what=f"marked out of scope: {phrase!r}")

    def update(self, locale: str, path: tuple[str, ...], fields: dict[str, Any], *, by: str, what: str) -> None:
        """Set fields of one part of the draft (an intent, a queue, the thresholds…): "route.queue" reaches into a
        nested map, an empty value removes the field (the check then says if it was required), an unchanged value
        is left as written (quotes, folding)."""

        def change(data: Any) -> None:
            node = data
            for key in path:
                if not hasattr(node, "get") or key not in node:
                    raise DraftError(f"no {'.'.join(path)} in the {locale} draft")
                node = node[key]
            for dotted, value in fields.items():
                *parents, key = dotted.split(".")
                target = node
                for parent in parents:
                    target = target.setdefault(parent, {})
                if value in (None, "", []):
                    target.pop(key, None)
                elif target.get(key) != value:
                    target[key] = value

        self.edit(locale, change, by=by, what=what)

    # --- checking and measuring ----------------------------------------------------------------------------
    def understanding(self, text: str, source: str) -> Understanding:
        """Parse and train (trained classifiers are cached in memory and on disk by content)."""
        key = text_hash(text)
        if key in self._trained:
            self._trained.move_to_end(key)
            return self._trained[key]
        grammar = parse_grammar(text, source, known_actions=self.catalog.known_actions)
        grammar.static_prompts()
        trained = artifacts.build(grammar, encoder=self.catalog.encoder, cache_dir=self.catalog.cache_dir)
        self._trained[key] = trained
        while len(self._trained) > 6:
            self._trained.popitem(last=False)
        return trained

    def draft_grammar(self, locale: str) -> Grammar:
        """The draft as a validated grammar (GrammarError while it has problems)."""
        return self.understanding(self.draft(locale)["text"], f"{locale} draft").grammar

    def labelled(self, locale: str) -> list[tuple[str, str]]:
        """The regression set: the seed file, then what admins labelled from real calls (a relabel wins)."""
        rows = dict(seed_labelled(self.catalog.grammar_dir, locale))
        rows.update(self.versions.labelled(locale))
        return list(rows.items())

    def check(self, locale: str, text: str | None = None) -> Check:
        text = self.draft(locale)["text"] if text is None else text
        verdict = Check(text)
        try:
            understanding = self.understanding(text, f"{locale} draft")
        except GrammarError as exc:
            verdict.problems = exc.problems
            return verdict
        except Exception as exc:
            verdict.problems = [f"{locale} draft:1: cannot be served: {exc!r}"]
            return verdict
        if understanding.grammar.locale != locale:
            verdict.problems = [f"{locale} draft:1: locale: says {understanding.grammar.locale}, not {locale}"]
            return verdict
        verdict.warnings = warnings_for(understanding.grammar) + band_warning(understanding)
        verdict.threshold = threshold_description(understanding)  # its warning is among the warnings
        labelled = self.labelled(locale)
        verdict.figures = evaluate(understanding, labelled)
        number, served_text = self.served(locale)
        try:
            verdict.served_figures = evaluate(self.understanding(served_text, f"{locale} version {number}"), labelled)
        except GrammarError:
            verdict.served_figures = None
        return verdict

    # --- publishing ----------------------------------------------------------------------------------------
    def publish(self, locale: str, *, by: str, note: str, checked: str) -> int:
        """Publish the draft that was checked (`checked` is its fingerprint); refused if it changed since or has
        problems. This worker installs it at once; the others on the channel's message."""
        verdict = self.check(locale)
        if verdict.fingerprint != checked:
            raise StaleDraft("the draft changed since it was checked; check it again")
        if verdict.problems:
            raise GrammarError(verdict.problems)
        if self.versions.in_service(locale) == 0:  # the seed file becomes version 1: rollback can go back to it
            path = grammar_files(self.catalog.grammar_dir)[locale]
            self.versions.publish(locale, self.served(locale)[1], by="seed", now=self.clock(), note=f"seed file {path}",
                                  figures=verdict.served_figures or {})
        number = self.versions.publish(locale, verdict.text, by=by, now=self.clock(), note=note,
                                       figures=verdict.figures or {})
        self.audit.record(by, f"published version {number}", f"{locale}: {note}" if note else locale,
                          now=self.clock())
        self.catalog.refresh()
        return number

    def rollback(self, locale: str, number: int, *, by: str) -> int:
        """Re-publish an earlier version as the newest one (it is checked again: actions may have gone since)."""
        record = self.versions.version(locale, number)
        if record is None:
            raise LookupError(f"no version {number} for {locale}")
        verdict = self.check(locale, record["text"])
        if verdict.problems:
            raise GrammarError(verdict.problems)
        new = self.versions.publish(locale, record["text"], by=by, now=self.clock(), note=f"rollback to {number}",
                                    figures=verdict.figures or {}, rollback_of=number)
        self.audit.record(by, f"rolled back to version {number} (as {new})", locale, now=self.clock())
        self.catalog.refresh()
        return new

    def changes(self, locale: str, text: str) -> str:
        """What a draft changes against the grammar in service."""
        number, served = self.served(locale)
        return unified(served, text, f"version {number}" if number else "seed file", "draft")

    def diff(self, locale: str, number: int) -> str:
        """What a version changed against the one before it (or the seed file)."""
        record = self.versions.version(locale, number)
        if record is None:
            raise LookupError(f"no version {number} for {locale}")
        before = self.versions.version(locale, number - 1)
        if before is not None:
            old, name = before["text"], f"version {number - 1}"
        else:
            path = grammar_files(self.catalog.grammar_dir).get(locale)
            old, name = (Path(path).read_text(encoding="utf-8") if path else ""), "seed file"
        return unified(old, record["text"], name, f"version {number}")

    # --- the test console ----------------------------------------------------------------------------------
    def trial(self, locale: str, utterance: str, target: str) -> Trial:
        """Run an utterance as a caller's first answer against the draft, the served grammar or version N."""
        if target == "draft":
            text, source = self.draft(locale)["text"], f"{locale} draft"
        elif target == "served":
            number, text = self.served(locale)
            source = f"{locale} version {number}" if number else f"{locale} seed file"
        else:
            record = self.versions.version(locale, int(target))
            if record is None:
                raise LookupError(f"no version {target} for {locale}")
            text, source = record["text"], f"{locale} version {target}"
        understanding = self.understanding(text, source)
        grammar, now = understanding.grammar, self.clock()
        state, _ = dialog.start(DialogState(call_sid="console", caller="", locale=locale, started_at=now), grammar,
                                now)
        reading = understand(Utterance(utterance), dialog.expecting(state), understanding)
        state, actions = dialog.decide(state, reading, grammar, now)
        says, does = describe(actions)
        return Trial(source, reading.intent, round(reading.score, 3),
                     [(name, round(score, 3)) for name, score in reading.ranking[:5]], dict(state.slots),
                     reading.wants_agent, reading.out_of_scope, says, does)
