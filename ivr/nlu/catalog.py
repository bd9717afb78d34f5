"""The live grammars, one per locale: reloaded when a file changes; a broken file never replaces a good one."""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from ivr.grammar import Grammar, GrammarError, grammar_files, load_grammar, parse_grammar
from ivr.nlu import Understanding, artifacts, fitting
from ivr.nlu.classifier import Encoder
from ivr.nlu.oos import why_not_chosen

log = logging.getLogger(__name__)
WARM_UP_WAIT_S = 8.0  # a webhook that arrives while the process warms up waits this long (Twilio waits 15 s)


@functools.cache
def _workers_started_once() -> None:
    threading.Thread(target=fitting.start_workers, daemon=True, name="fitting-workers").start()


def threshold_report(understanding: Understanding) -> str:
    """The out-of-scope threshold in use, for `auto` what it was chosen from, and whether it leaves a confirm band."""
    return "; ".join([threshold_description(understanding), *band_warning(understanding)])


def threshold_description(understanding: Understanding) -> str:
    """The out-of-scope threshold in use, and for `auto` what it was chosen from."""
    if understanding.grammar.thresholds.out_of_scope != "auto":
        how = "pinned in the grammar"
    elif understanding.choice is None:
        how = f"auto: {why_not_chosen(len(understanding.grammar.intents))}: default"
    else:
        how = f"auto: {understanding.choice.describe()}"
    return f"out-of-scope threshold {understanding.oos_threshold:.2f} ({how})"


def band_warning(understanding: Understanding) -> list[str]:
    """A threshold above the confirm threshold leaves no answer to confirm: a doubtful one is refused instead."""
    confirm = understanding.grammar.thresholds.confirm
    if understanding.oos_threshold <= confirm:
        return []
    return [f"the out-of-scope threshold {understanding.oos_threshold:.2f} is above the confirm threshold "
            f"{confirm:.2f}: doubtful answers are refused, never confirmed"]


class PublishedGrammars(Protocol):
    """Where admins' published versions live (`ivr.store.grammars.GrammarVersions`)."""

    def published(self) -> dict[str, int]: ...

    def text(self, locale: str, number: int) -> str: ...


class GrammarCatalog:
    """Locale → trained Understanding. `refresh()` picks up edited files; errors are kept for the admin."""

    def __init__(self, grammar_dir: str | Path, *, default_locale: str, known_actions: Iterable[str],
                 encoder: Encoder | None = None, cache_dir: str | Path | None = None,
                 published: PublishedGrammars | None = None):
        self.encoder = encoder
        self.published = published  # the versions admins published: they replace the seed files
        self.versions: dict[str, int] = {}  # locale → published version in service (absent: the seed file)
        self.cache_dir = Path(cache_dir) if cache_dir else None  # trained classifiers, shared by workers
        self.on_install: Callable[[Grammar], None] | None = None  # e.g. pre-render the prompts
        self.grammar_dir = Path(grammar_dir)
        self.default_locale = default_locale
        self.known_actions = set(known_actions)
        self._live: dict[str, Understanding] = {}
        self._mtimes: dict[Path, float] = {}
        self._trained: dict[str, tuple[tuple, Understanding]] = {}  # locale → (training data, understanding)
        self.errors: dict[str, list[str]] = {}
        self._unknown_said: set[str] = set()
        self.ready = threading.Event()  # the first load is done (grammars in, or refused)
        self._lock = threading.Lock()
        self.stopped = threading.Event()
        self._watching = False  # a service's catalog, not a one-shot command's

    def refresh(self) -> dict[str, list[str]]:
        """Load every newly published version, and every new or changed seed file of a locale without one; return
        the problems of what was refused."""
        with self._lock:
            published = self.published_now()
            for locale, path in grammar_files(self.grammar_dir).items():
                mtime = path.stat().st_mtime
                if locale in published or self._mtimes.get(path) == mtime:  # a refused file waits for an edit
                    continue
                self._mtimes[path] = mtime
                self.install(locale, str(path), functools.partial(load_grammar, path, known_actions=self.known_actions))
            for locale, version in published.items():
                if self.versions.get(locale) != version:
                    self.install_published(locale, version)
            self.ready.set()
            return dict(self.errors)

    def published_now(self) -> dict[str, int]:
        if self.published is None:
            return {}
        try:
            return self.published.published()
        except Exception:  # the store is down: keep serving what is loaded
            log.warning("published grammars unavailable; serving what is loaded")
            return dict(self.versions)

    def install_published(self, locale: str, version: int) -> None:
        """A version is read once; one that cannot be read yet (the store went away) is tried again next time."""
        assert self.published is not None
        source = f"{locale} version {version}"
        try:
            text = self.published.text(locale, version)
        except Exception:
            log.warning("grammar %s not readable yet; trying again on the next refresh", source)
            return
        self.versions[locale] = version
        self.install(locale, source, functools.partial(parse_grammar, text, source, known_actions=self.known_actions))

    def install(self, locale: str, source: str, load: Callable[[], Grammar]) -> None:
        """Validate, train and format every prompt first; only a grammar that passed all of it replaces the live one."""
        try:
            grammar = load()
            understanding = self.build(grammar)
            grammar.static_prompts()  # formats every prompt the way run time will
        except GrammarError as exc:
            return self.refuse(locale, source, exc.problems)
        except Exception as exc:  # anything else that would break at run time
            return self.refuse(locale, source, [f"{source}:1: cannot be served: {exc!r}"])
        self._live[locale] = understanding
        self.errors.pop(locale, None)
        log.info("grammar %s loaded: %d intents; %s", source, len(grammar.intents), threshold_report(understanding))
        if self.on_install is not None:
            try:
                self.on_install(grammar)
            except Exception:  # pre-rendering is an optimisation: prompts render on demand too
                log.exception("grammar %s: prompts not pre-rendered", source)

    def refuse(self, locale: str, source: str, problems: list[str]) -> None:
        self.errors[locale] = problems
        kept = "keeping the previous version" if locale in self._live else "locale not served"
        log.error("grammar %s refused (%s):\n  %s", source, kept, "\n  ".join(problems))

    def build(self, grammar: Grammar) -> Understanding:
        """Train a grammar's classifier, unless only prompts, routes or thresholds changed since the last one."""
        key = (tuple((n, tuple(i.phrases)) for n, i in grammar.intents.items()), tuple(grammar.out_of_scope_examples))
        last_key, trained = self._trained.get(grammar.locale, (None, None))
        if trained is None or last_key != key:
            trained = artifacts.build(grammar, encoder=self.encoder, cache_dir=self.cache_dir)
            self._trained[grammar.locale] = (key, trained)
            self._have_workers_ready()
        return trained.with_grammar(grammar)

    def _have_workers_ready(self) -> None:
        """A service serving a big grammar starts the fitting workers' server, so that the next edit fits in workers
        that are ready (~2.5 s sooner). A one-shot command (`ivr grammar prepare`, `check`) does not: it would exit
        while the server starts, which multiprocessing reports as leaked semaphores and tracebacks."""
        phrases = (sum(len(p) for _, p in key[0]) for key, _ in self._trained.values())
        if self._watching and max(phrases, default=0) >= fitting.PARALLEL_FROM:
            _workers_started_once()

    def watch(self, *, interval_s: float = 5.0) -> threading.Thread:
        """Re-read changed grammar files in the background, so retraining never delays a webhook."""
        self._watching = True
        self._have_workers_ready()

        def loop() -> None:
            while not self.stopped.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # a vanished folder, say: keep serving what is loaded
                    log.exception("grammar refresh failed")

        thread = threading.Thread(target=loop, daemon=True, name="grammar-watch")
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopped.set()

    def get(self, locale: str | None = None) -> Understanding:
        """The understanding for a locale, falling back to the default locale (said once per locale)."""
        live, wanted = self._live, locale or self.default_locale
        if wanted in live:
            return live[wanted]
        if not live and not self.ready.is_set():  # still warming up: a webhook waits a little rather than fail
            self.ready.wait(WARM_UP_WAIT_S)
            live = self._live
        if wanted in live:
            return live[wanted]
        if not live:
            raise LookupError(f"no valid grammar under {self.grammar_dir}: {self.errors}")
        served = live.get(self.default_locale) or next(iter(live.values()))
        if wanted not in self._unknown_said:  # a webhook URL naming a hotline this service has no grammar for
            self._unknown_said.add(wanted)
            log.warning("no grammar for locale %r: serving %s instead", wanted, served.grammar.locale)
        return served

    def locales(self) -> list[str]:
        return sorted(self._live)
