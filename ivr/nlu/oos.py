"""The out-of-scope threshold, chosen from the grammar's own phrases at build time (no test data): leave-intents-out
cross-validation. Each fold trains without some intents and without a fifth of the other intents' phrases; the
held-out phrases of known intents say how many in-scope requests a threshold keeps (accepted and correct), the phrases
of the left-out intents how many near-domain out-of-scope requests it rejects. The threshold is the highest that still
keeps the configured share (0.90) of in-scope phrases accepted and correct."""
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
    in_scope_kept: float  # held-out phrases of known intents accepted and correct at the threshold
    out_of_scope_rejected: float  # phrases of intents the fold had never seen, rejected at the threshold
    samples: tuple[int, int]  # (in-scope phrases, out-of-scope phrases) it was measured on

    def describe(self) -> str:
        return (f"{self.in_scope_kept:.0%} of held-out phrases accepted and correct, {self.out_of_scope_rejected:.0%}"
                f" of left-out intents' phrases rejected ({self.samples[0]} + {self.samples[1]} phrases)")


def choose_threshold(grammar: Grammar, encoder: Encoder | None, *, temperature: float, keep: float = 0.90,
                     folds: int = 4, seed: int = 0) -> ThresholdChoice | None:
    """None when the grammar is too small to leave intents out (fewer than three intents). `temperature` is the
    grammar's trained classifier's: each fold's model scores on that scale."""
    phrases = {name: list(intent.phrases) for name, intent in grammar.intents.items()}
    return choose_threshold_for(phrases, list(grammar.out_of_scope_examples), encoder, temperature=temperature,
                                keep=keep, folds=folds, seed=seed)


def choose_threshold_for(phrases: dict[str, list[str]], out_of_scope_examples: list[str], encoder: Encoder | None,
                         *, temperature: float, keep: float = 0.90, folds: int = 4,
                         seed: int = 0) -> ThresholdChoice | None:
    """The same from any labelled training data (intent → its phrases): `ivr bench nlu` chooses its threshold here
    from a benchmark's training split only."""
    intents = sorted(phrases)
    if len(intents) < 3:
        return None
    random.Random(seed).shuffle(intents)
    groups = [intents[index::folds] for index in range(min(folds, len(intents)))]
    in_scores: list[float] = []
    in_correct: list[bool] = []
    out_scores: list[float] = []
    for held_out in groups:
        known = [name for name in intents if name not in held_out]
        texts = list(out_of_scope_examples)
        labels, probes = [OUT_OF_SCOPE] * len(texts), []
        for name in known:
            cut = max(1, len(phrases[name]) // 5)
            probes += [(phrase, name) for phrase in phrases[name][:cut]]
            texts += phrases[name][cut:]
            labels += [name] * (len(phrases[name]) - cut)
        model = IntentClassifier.train(texts, labels, encoder=encoder, temperature=temperature)
        for (score, top), (_, name) in zip(in_scope_scores(model, [p for p, _ in probes]), probes, strict=True):
            in_scores.append(score)
            in_correct.append(top == name)
        out_scores += [score for score, _ in in_scope_scores(model, [p for n in held_out for p in phrases[n]])]
    scores, correct, outside = np.array(in_scores), np.array(in_correct), np.array(out_scores)
    threshold = 0.0
    for candidate in sorted(set(scores.tolist()), reverse=True):
        if ((scores >= candidate) & correct).mean() >= keep:
            threshold = candidate
            break
    return ThresholdChoice(round(float(threshold), 4), float(((scores >= threshold) & correct).mean()),
                           float((outside < threshold).mean()), (len(scores), len(outside)))


def in_scope_scores(model: IntentClassifier, texts: list[str]) -> list[tuple[float, str | None]]:
    """Per text: the best in-scope intent's score (0 when the model puts the out-of-scope class first) and that
    intent, classified in one batch."""
    if not texts:
        return []
    probs = model.predict_proba(texts)
    labels = np.array(model.labels)
    in_scope = labels != OUT_OF_SCOPE
    out: list[tuple[float, str | None]] = []
    for row in probs:
        top = labels[row.argmax()]
        out.append((0.0, None) if top == OUT_OF_SCOPE else (float(row[in_scope].max()), str(top)))
    return out
