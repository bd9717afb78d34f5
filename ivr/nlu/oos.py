"""The out-of-scope threshold, chosen from the grammar's own phrases at build time (no test data). The trained
classifier's calibration folds (every intent; each phrase scored by the fold that did not train on it) say how many
in-scope requests a threshold keeps accepted and correct: the threshold is the highest that keeps the configured
share (0.90). Leave-intents-out folds (trained without some intents, scoring those intents' phrases) say how many
near-domain out-of-scope requests it rejects. Leaving intents out only to measure the in-scope side would flatter it:
a fold that lacks a quarter of the intents confuses its phrases less than the full grammar confuses callers."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ivr.grammar import Grammar
from ivr.nlu.classifier import Encoder, IntentClassifier

OUT_OF_SCOPE = "__out_of_scope__"  # the class of the grammar's out_of_scope_examples


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    in_scope_kept: float  # phrases accepted and correct at the threshold, each scored by a fold not trained on it
    out_of_scope_rejected: float  # phrases of intents the fold had never seen, rejected at the threshold
    samples: tuple[int, int]  # (in-scope phrases, out-of-scope phrases) it was measured on
    held_out_accuracy: float = 1.0  # in-scope phrases classified right, each by a fold not trained on it
    keep: float = 0.90  # the share of held-out phrases to keep accepted and correct

    def describe(self) -> str:
        kept = f"{self.in_scope_kept:.0%} of held-out phrases accepted and correct"
        if self.held_out_accuracy < self.keep:
            kept += (f" ({self.keep:.0%} of the {self.held_out_accuracy:.0%} classified right: too few or too alike "
                     f"phrases for {self.keep:.0%})")
        return (f"{kept}, {self.out_of_scope_rejected:.0%} of left-out intents' phrases rejected "
                f"({self.samples[0]} + {self.samples[1]} phrases)")


def choose_threshold(grammar: Grammar, encoder: Encoder | None, *, trained: IntentClassifier, keep: float = 0.90,
                     folds: int = 4, seed: int = 0) -> ThresholdChoice | None:
    """None when the grammar is too small to leave intents out (fewer than three intents) or had too few phrases
    per intent to be calibrated. `trained` is the grammar's classifier."""
    phrases = {name: list(intent.phrases) for name, intent in grammar.intents.items()}
    return choose_threshold_for(phrases, list(grammar.out_of_scope_examples), encoder, trained=trained, keep=keep,
                                folds=folds, seed=seed)


def choose_threshold_for(phrases: dict[str, list[str]], out_of_scope_examples: list[str], encoder: Encoder | None,
                         *, trained: IntentClassifier, keep: float = 0.90, folds: int = 4,
                         seed: int = 0) -> ThresholdChoice | None:
    """The same from any labelled training data (intent → its phrases) and the classifier trained on it: `ivr bench
    nlu` chooses its threshold here from a benchmark's training split only."""
    intents = sorted(phrases)
    if len(intents) < 3 or trained.validation is None:
        return None
    probs, gold = trained.validation
    labels = np.array(trained.labels)
    asked_in_scope = labels[gold] != OUT_OF_SCOPE
    scored = _scores(probs, labels)
    scores = np.array([score for score, _ in scored])[asked_in_scope]
    correct = np.array([top == label for (_, top), label in zip(scored, labels[gold], strict=True)])[asked_in_scope]
    random.Random(seed).shuffle(intents)
    left_out = [intents[index::folds] for index in range(min(folds, len(intents)))]
    datasets = []
    for held_out in left_out:
        known = [name for name in intents if name not in held_out]
        datasets.append((list(out_of_scope_examples) + [p for name in known for p in phrases[name]],
                         [OUT_OF_SCOPE] * len(out_of_scope_examples) + [name for name in known for _ in phrases[name]]))
    models = IntentClassifier.train_many(datasets, encoder=encoder, temperature=trained.temperature,
                                         nearness=trained.nearness)
    out_scores: list[float] = []
    for model, held_out in zip(models, left_out, strict=True):
        out_scores += [score for score, _ in in_scope_scores(model, [p for n in held_out for p in phrases[n]])]
    outside = np.array(out_scores)
    # When fewer than `keep` of the held-out phrases are classified right at all (a small grammar, or n-grams on
    # phrases that share words), no threshold keeps that share: keep that share of the right ones instead, rather
    # than fall to 0 and reject nothing.
    accuracy = float(correct.mean())
    target = keep if accuracy >= keep else keep * accuracy
    threshold = 0.0
    for candidate in sorted(set(scores.tolist()), reverse=True):
        if ((scores >= candidate) & correct).mean() >= target:
            threshold = candidate
            break
    return ThresholdChoice(round(float(threshold), 4), float(((scores >= threshold) & correct).mean()),
                           float((outside < threshold).mean()), (len(scores), len(outside)), accuracy, keep)


def why_not_chosen(intents: int) -> str:
    """Why `choose_threshold` gave None, in words for logs and reports."""
    if intents < 3:
        return "too few intents to leave any out"
    return "too few phrases per intent to cross-validate the classifier"


def in_scope_scores(model: IntentClassifier, texts: list[str]) -> list[tuple[float, str | None]]:
    """Per text: the best in-scope intent's score (0 when the model puts the out-of-scope class first) and that
    intent, classified in one batch."""
    return _scores(model.predict_proba(texts), np.array(model.labels)) if texts else []


def _scores(probs: np.ndarray, labels: np.ndarray) -> list[tuple[float, str | None]]:
    in_scope = labels != OUT_OF_SCOPE
    out: list[tuple[float, str | None]] = []
    for row in probs:
        top = labels[row.argmax()]
        out.append((0.0, None) if top == OUT_OF_SCOPE else (float(row[in_scope].max()), str(top)))
    return out
