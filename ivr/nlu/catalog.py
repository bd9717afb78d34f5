"""The live grammars, one per locale: reloaded when a file changes; a broken file never replaces a good one."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from ivr.grammar import Grammar, GrammarError, grammar_files, load_grammar
from ivr.nlu import Understanding, artifacts
from ivr.nlu.classifier import Encoder

log = logging.getLogger(__name__)


def threshold_report(understanding: Understanding) -> str:
    """The out-of-scope threshold in use, and for `auto` what it was chosen from."""
    if understanding.grammar.thresholds.out_of_scope != "auto":
        return f"out-of-scope threshold {understanding.oos_threshold:.2f} (pinned in the grammar)"
    if understanding.choice is None:
        return f"out-of-scope threshold {understanding.oos_threshold:.2f} (auto: too few intents to choose: default)"
    return f"out-of-scope threshold {understanding.oos_threshold:.2f} (auto: {understanding.choice.describe()})"


class GrammarCatalog:
    """Locale → trained Understanding. `refresh()` picks up edited files; errors are kept for the admin."""

    def __init__(self, grammar_dir: str | Path, *, default_locale: str, known_actions: Iterable[str],
                 encoder: Encoder | None = None, cache_dir: str | Path | None = None):
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir else None  # trained classifiers, shared by workers
        self.on_install: Callable[[Grammar], None] | None = None  # e.g. pre-render the prompts
        self.grammar_dir = Path(grammar_dir)
        self.default_locale = default_locale
        self.known_actions = set(known_actions)
        self._live: dict[str, Understanding] = {}
        self._mtimes: dict[Path, float] = {}
        self._trained: dict[str, tuple[tuple, Understanding]] = {}  # locale → (training data, understanding)
        self.errors: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def refresh(self) -> dict[str, list[str]]:
        """Load every new or changed grammar file; return the problems of files that were refused."""
        with self._lock:
            for locale, path in grammar_files(self.grammar_dir).items():
                mtime = path.stat().st_mtime
                if self._mtimes.get(path) == mtime:  # unchanged: a refused file is not re-read until edited
                    continue
                self._mtimes[path] = mtime
                self.install(locale, path)
            return dict(self.errors)

    def install(self, locale: str, path: Path) -> None:
        """Validate, train and format every prompt first; only a grammar that passed all of it replaces the live one."""
        try:
            grammar = load_grammar(path, known_actions=self.known_actions)
            understanding = self.build(grammar)
            grammar.static_prompts()  # formats every prompt the way run time will
        except GrammarError as exc:
            return self.refuse(locale, path, exc.problems)
        except Exception as exc:  # anything else that would break at run time
            return self.refuse(locale, path, [f"{path}:1: cannot be served: {exc!r}"])
        self._live[locale] = understanding
        self.errors.pop(locale, None)
        log.info("grammar %s loaded: %d intents; %s", path, len(grammar.intents), threshold_report(understanding))
        if self.on_install is not None:
            try:
                self.on_install(grammar)
            except Exception:  # pre-rendering is an optimisation: prompts render on demand too
                log.exception("grammar %s: prompts not pre-rendered", path)

    def refuse(self, locale: str, path: Path, problems: list[str]) -> None:
        self.errors[locale] = problems
        kept = "keeping the previous version" if locale in self._live else "locale not served"
        log.error("grammar %s refused (%s):\n  %s", path, kept, "\n  ".join(problems))

    def build(self, grammar: Grammar) -> Understanding:
        """Train a grammar's classifier, unless only prompts, routes or thresholds changed since the last one."""
        key = (tuple((n, tuple(i.phrases)) for n, i in grammar.intents.items()), tuple(grammar.out_of_scope_examples))
        last_key, trained = self._trained.get(grammar.locale, (None, None))
        if trained is None or last_key != key:
            trained = artifacts.build(grammar, encoder=self.encoder, cache_dir=self.cache_dir)
            self._trained[grammar.locale] = (key, trained)
        return trained.with_grammar(grammar)

    def watch(self, *, interval_s: float = 5.0) -> threading.Thread:
        """Re-read changed grammar files in the background, so retraining never delays a webhook."""

        def loop() -> None:
            while not self._stopped.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # a vanished folder, say: keep serving what is loaded
                    log.exception("grammar refresh failed")

        thread = threading.Thread(target=loop, daemon=True, name="grammar-watch")
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopped.set()

    def get(self, locale: str | None = None) -> Understanding:
        """The understanding for a locale, falling back to the default locale."""
        live = self._live
        if locale in live:
            return live[locale]
        if self.default_locale in live:
            return live[self.default_locale]
        if not live:
            raise LookupError(f"no valid grammar under {self.grammar_dir}: {self.errors}")
        return next(iter(live.values()))

    def locales(self) -> list[str]:
        return sorted(self._live)
