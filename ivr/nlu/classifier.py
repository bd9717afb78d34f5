"""Intent classifier trained from grammar phrases: sparse n-grams → linear SVM → calibrated probabilities.

Scores are temperature-scaled from cross-validated margins, so a confidence threshold in the grammar means
"this likely to be right" whatever the number of intents or phrases.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

_TEMPERATURES = np.geomspace(0.5, 60.0, 48)


def _features() -> FeatureUnion:
    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)),
    ])


def softmax(margins: np.ndarray, temperature: float) -> np.ndarray:
    z = margins * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(margins: np.ndarray, gold: np.ndarray) -> float:
    """The softmax temperature that minimises held-out negative log-likelihood."""
    rows = np.arange(len(gold))
    losses = [-np.log(softmax(margins, t)[rows, gold] + 1e-12).mean() for t in _TEMPERATURES]
    return float(_TEMPERATURES[int(np.argmin(losses))])


class IntentClassifier:
    """Ranks intents for a text with probabilities calibrated on held-out phrases."""

    def __init__(self, features: FeatureUnion, svm: LinearSVC, labels: list[str], temperature: float):
        self.features = features
        self.svm = svm
        self.labels = labels
        self.temperature = temperature

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], *, calibrate: bool = True) -> IntentClassifier:
        """Fit on (text, intent) pairs; calibrate with stratified cross-validation when data allows."""
        names = sorted(set(labels))
        gold = np.array([names.index(label) for label in labels])
        features, svm = cls._fit(texts, gold)
        temperature = 10.0
        folds = min(5, int(np.bincount(gold).min()))
        if calibrate and folds >= 2:
            held_out = np.zeros((len(texts), len(names)))
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
            for train_idx, test_idx in splitter.split(texts, gold):
                fold_features, fold_svm = cls._fit([texts[i] for i in train_idx], gold[train_idx])
                margins = fold_svm.decision_function(fold_features.transform([texts[i] for i in test_idx]))
                held_out[np.ix_(test_idx, fold_svm.classes_)] = margins
                held_out[np.ix_(test_idx, np.setdiff1d(np.arange(len(names)), fold_svm.classes_))] = -10
            temperature = fit_temperature(held_out, gold)
        return cls(features, svm, names, temperature)

    @staticmethod
    def _fit(texts: Sequence[str], gold: np.ndarray) -> tuple[FeatureUnion, LinearSVC]:
        features = _features()
        svm = LinearSVC(C=1.0, class_weight="balanced")
        svm.fit(features.fit_transform(texts), gold)
        return features, svm

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        margins = self.svm.decision_function(self.features.transform(texts))
        return margins if margins.ndim == 2 else np.column_stack([-margins, margins])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.margins(texts), self.temperature)

    def rank(self, texts: Sequence[str], weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
        """Intents by probability; several texts (ASR n-best) are averaged with the given weights."""
        probs = self.predict_proba(texts)
        w = np.asarray(weights if weights is not None else np.ones(len(texts)), dtype=float)
        combined = (probs * (w / w.sum())[:, None]).sum(axis=0)
        order = np.argsort(-combined)
        return [(self.labels[i], float(combined[i])) for i in order]
