"""Intent classifier trained from grammar phrases: word and character n-grams (TF-IDF), plus sentence
embeddings when an encoder is available, into one linear SVM, whose margins get how near the text comes to each
intent's own phrases (`nearest`); margins → calibrated probabilities.

Scores are temperature-scaled on cross-validated margins, so a confidence threshold in the grammar means
"this likely to be right" whatever the number of intents or phrases.
"""
from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ivr.nlu.fitting import Fitted, fit, held_out_margins, run_all
from ivr.nlu.nearest import NearestPhrases

log = logging.getLogger(__name__)
_TEMPERATURES = np.geomspace(0.5, 60.0, 48)
PRIOR_TEMPERATURE = 10.0  # when nothing can be cross-validated (no class with two examples); logged
CALIBRATION_PHRASES = 1000  # held-out phrases enough to fit the temperature and choose the out-of-scope threshold
EMBEDDING_WEIGHT = 2.0  # dense block scaled against the two unit-length TF-IDF blocks (tuned on BANKING77 train)
EMBEDDING_DIMENSIONS = 128  # the embeddings' leading directions the SVM fits on, of 384 (see `Projection`)
NEARNESS_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # `NearestPhrases`' weight, chosen per grammar from these
PRIOR_NEARNESS = 1.0  # … when nothing can be cross-validated: the best single weight on BANKING77 and CLINC150


class Encoder(Protocol):
    def encode(self, texts: Sequence[str], *, remember: bool = False) -> np.ndarray: ...


def softmax(margins: np.ndarray, temperature: float) -> np.ndarray:
    z = margins * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(margins: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    return float(-np.log(softmax(margins, temperature)[np.arange(len(gold)), gold] + 1e-12).mean())


def fit_temperature(margins: np.ndarray, gold: np.ndarray) -> float:
    """The softmax temperature of the grid that minimises held-out negative log-likelihood. The likelihood is convex
    in the temperature, so a ternary search over the grid finds the same one in ~16 evaluations instead of 48 (a
    build compares six nearness weights this way)."""
    losses: dict[int, float] = {}

    def loss(index: int) -> float:
        if index not in losses:
            losses[index] = negative_log_likelihood(margins, gold, float(_TEMPERATURES[index]))
        return losses[index]

    low, high = 0, len(_TEMPERATURES) - 1
    while high - low > 2:
        third = (high - low) // 3
        if loss(low + third) <= loss(high - third):
            high -= third
        else:
            low += third
    return float(_TEMPERATURES[min(range(low, high + 1), key=loss)])


def stratified_folds(gold: np.ndarray, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, held-out rows) of each fold: every intent's phrases, shuffled, dealt round the folds in turn
    (an intent with fewer phrases than folds is missing from some folds' held-out rows). Not scikit-learn's
    StratifiedKFold: importing scikit-learn costs a serving process ~2 s, and with fitting workers it needs none."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(gold), dtype=int)
    dealt = 0
    for label in np.unique(gold):
        rows = rng.permutation(np.flatnonzero(gold == label))
        fold_of[rows] = (dealt + np.arange(len(rows))) % folds  # each intent starts where the last one stopped
        dealt += len(rows)
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]


class IntentClassifier:
    """Ranks intents for a text with probabilities calibrated on held-out phrases."""

    def __init__(self, scorer: LinearScorer, encoder: Encoder | None, labels: list[str], temperature: float,
                 validation: tuple[np.ndarray, np.ndarray] | None = None, *, nearest: NearestPhrases | None = None,
                 nearness: float = 0.0):
        self.scorer = scorer
        self.encoder = encoder
        self.labels = labels
        self.temperature = temperature
        # the phrases' embeddings, and how much being near an intent's phrases adds to its margin (`NearestPhrases`)
        self.nearest = nearest
        self.nearness = nearness if nearest is not None else 0.0
        # from calibration: held-out phrases' probabilities (each from the fold that did not train on it; all of a
        # grammar's phrases, or CALIBRATION_PHRASES of a big one), and their intents' indices; what the out-of-scope
        # threshold is chosen on
        self.validation = validation

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], *, encoder: Encoder | None = None,
              calibrate: bool = True, temperature: float | None = None,
              nearness: float = PRIOR_NEARNESS) -> IntentClassifier:
        """Fit on (text, intent) pairs; calibrate with stratified cross-validation when data allows (the temperature,
        and the weight of nearness to the intents' phrases), or take the `temperature` and `nearness` of a model
        trained on similar data (the out-of-scope folds: five fits fewer each). The model and its calibration folds
        are fitted side by side (`fitting.run_all`)."""
        names, gold, unit, dense, projection = cls._prepare(texts, labels, encoder)
        texts = list(texts)
        splits = cls._splits(texts, gold) if temperature is None and calibrate else []
        folds = [(held_out_margins, (texts, gold, dense, fit_rows, score_rows)) for fit_rows, score_rows in splits]
        fitted, *fold_results = run_all([(fit, (texts, gold, dense)), *folds], phrases=len(texts))
        validation = None
        if splits:
            temperature, nearness, validation = cls._calibrated(gold, len(names), splits, fold_results, unit)
        nearest = NearestPhrases(unit, gold, len(names)) if unit is not None else None
        return cls(LinearScorer.from_fitted(fitted, projection), encoder, names,
                   PRIOR_TEMPERATURE if temperature is None else temperature, validation, nearest=nearest,
                   nearness=nearness)

    @classmethod
    def train_many(cls, datasets: Sequence[tuple[Sequence[str], Sequence[str]]], *, encoder: Encoder | None,
                   temperature: float, nearness: float) -> list[IntentClassifier]:
        """Several classifiers with a known temperature and nearness (the out-of-scope folds), their fits side by
        side."""
        prepared = [(list(texts), *cls._prepare(texts, labels, encoder)) for texts, labels in datasets]
        fitted = run_all([(fit, (texts, gold, dense)) for texts, _, gold, _, dense, _ in prepared],
                         phrases=max((len(texts) for texts, *_ in prepared), default=0))
        return [cls(LinearScorer.from_fitted(model, projection), encoder, names, temperature,
                    nearest=NearestPhrases(unit, gold, len(names)) if unit is not None else None, nearness=nearness)
                for (_, names, gold, unit, _, projection), model in zip(prepared, fitted, strict=True)]

    @staticmethod
    def _prepare(texts: Sequence[str], labels: Sequence[str], encoder: Encoder | None
                 ) -> tuple[list[str], np.ndarray, np.ndarray | None, np.ndarray | None, Projection | None]:
        """Intent names, each phrase's intent index, the phrases' embeddings, and those (weighted) projected on
        their leading directions, with that projection."""
        names = sorted(set(labels))
        gold = np.array([names.index(label) for label in labels])
        if not encoder:
            return names, gold, None, None, None
        unit = encoder.encode(texts, remember=True)  # grammar phrases
        dense = unit * EMBEDDING_WEIGHT
        projection = Projection.fit(dense, EMBEDDING_DIMENSIONS)
        return names, gold, unit, projection(dense), projection

    @staticmethod
    def _splits(texts: Sequence[str], gold: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Stratified cross-validation folds (up to five), or none when there is too little to calibrate on."""
        counts = np.bincount(gold)
        if (counts >= 2).sum() < 2:
            log.warning("classifier not calibrated (fewer than two intents with two phrases): prior temperature %.0f, "
                        "nearness weight %.1f", PRIOR_TEMPERATURE, PRIOR_NEARNESS)
            return []
        folds = min(5, int(counts[counts >= 2].min()))
        splits = stratified_folds(gold, folds)
        # Each fold trains on 4/5 of the phrases whatever the grammar's size; a big grammar needs only some folds
        # scored to hold out CALIBRATION_PHRASES phrases (2 of 5 fits fewer for 100 intents x 20 phrases).
        return splits[:max(2, math.ceil(CALIBRATION_PHRASES / (len(texts) / folds)))]

    @staticmethod
    def _calibrated(gold: np.ndarray, classes: int, splits: list[tuple[np.ndarray, np.ndarray]],
                    fold_results: list[tuple[np.ndarray, np.ndarray]], unit: np.ndarray | None
                    ) -> tuple[float, float, tuple[np.ndarray, np.ndarray]]:
        """Temperature and nearness weight from the folds' held-out margins: the pair of least held-out negative
        log-likelihood. A class with a single example (one out-of-scope example) is missing from the fold that holds
        it out; its row then says nothing about the scale and is left out."""
        held_out = np.full((len(gold), classes), -10.0)
        near = np.zeros((len(gold), classes))
        seen = np.zeros(len(gold), dtype=bool)
        for (fit_idx, test_idx), (margins, fold_classes) in zip(splits, fold_results, strict=True):
            held_out[np.ix_(test_idx, fold_classes)] = margins
            if unit is not None:
                nearest = NearestPhrases(unit[fit_idx], gold[fit_idx], classes)
                near[np.ix_(test_idx, fold_classes)] = nearest.similarity(unit[test_idx])[:, fold_classes]
            seen[test_idx] = np.isin(gold[test_idx], fold_classes)
        scored = np.concatenate([test_idx for _, test_idx in splits])
        fits = []
        for weight in NEARNESS_WEIGHTS if unit is not None else (0.0,):
            blended = held_out + weight * near
            temperature = fit_temperature(blended[seen], gold[seen])
            fits.append((negative_log_likelihood(blended[seen], gold[seen], temperature), weight, temperature))
        _, nearness, temperature = min(fits)
        return temperature, nearness, (softmax((held_out + nearness * near)[scored], temperature), gold[scored])

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        if not self.encoder:
            return self.scorer.margins(texts, None)
        unit = self.encoder.encode(texts)
        margins = self.scorer.margins(texts, unit * EMBEDDING_WEIGHT)
        if self.nearness and self.nearest is not None:
            margins += self.nearness * self.nearest.similarity(unit)
        return margins

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.margins(texts), self.temperature)

    def rank(self, texts: Sequence[str], weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
        """Intents by probability; several texts (ASR n-best) are combined by averaging their margins with the given
        weights, i.e. a weighted geometric mean of their probabilities, renormalised: an intent must fit every
        alternative. On noisy held-out training phrases (BANKING77, CLINC150) that was 0.2–0.7 points more accurate
        than the weighted mean of the probabilities, at every weighting tried."""
        w = np.asarray(weights if weights is not None else np.ones(len(texts)), dtype=float)
        combined = softmax((self.margins(texts) * (w / w.sum())[:, None]).sum(axis=0, keepdims=True),
                           self.temperature)[0]
        order = np.argsort(-combined)
        return [(self.labels[i], float(combined[i])) for i in order]


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token pattern


def word_grams(text: str) -> list[str]:
    """What the "words" vectoriser counts (`ngram_features`): lowercased tokens of two or more word characters, and
    each pair of neighbours."""
    tokens = _TOKEN.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def char_grams(text: str) -> list[str]:
    """What the "chars" vectoriser counts (char_wb, 2 to 5): the pieces of each space-padded lowercased word; a word
    shorter than a length is counted whole, once."""
    grams: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(2, 6):
            grams += [padded[i:i + n] for i in range(max(1, len(padded) - n + 1))]
            if len(padded) <= n:
                break
    return grams


class Projection:
    """The embeddings' leading principal directions among a grammar's phrases, scaled to keep the block's mean
    length (so EMBEDDING_WEIGHT and the SVM's C mean what they meant). Fitting on 128 of MiniLM's 384 dimensions
    made each SVM fit ~35 % faster (a build with `auto` runs up to ten) and was as accurate on phrases of
    BANKING77's and CLINC150's training splits left out of training (10 and 20 phrases per intent: −0.2…+0.35
    points). It is folded back into the scorer's weights, so classifying costs the same."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray):
        self.mean = mean
        self.basis = basis  # one column per kept direction, scaled

    @classmethod
    def fit(cls, dense: np.ndarray, dimensions: int) -> Projection:
        mean = dense.mean(axis=0)
        centred = dense - mean
        _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
        basis = vectors[:, ::-1][:, :dimensions]
        kept = np.square(centred @ basis).sum(axis=1).mean()
        scale = math.sqrt(np.square(dense).sum(axis=1).mean() / kept) if kept > 0 else 1.0
        return cls(mean, basis * scale)

    def __call__(self, dense: np.ndarray) -> np.ndarray:
        return (dense - self.mean) @ self.basis


class LinearScorer:
    """The trained n-gram vocabularies and linear SVM as plain arrays: the same margins as scikit-learn's
    `svm.decision_function(ngrams.transform(…))` in a tenth of the time for one utterance (~0.3 ms, not ~2.5), and
    a cached classifier loads without importing scikit-learn (~1.5 s of a worker's start-up)."""

    ANALYZERS = (word_grams, char_grams)  # the order of `ngram_features`' blocks

    def __init__(self, vocabularies: Sequence[dict[str, int]], idfs: Sequence[np.ndarray], weights: np.ndarray,
                 intercept: np.ndarray):
        self.blocks = []
        offset = 0
        for analyzer, vocabulary, idf in zip(self.ANALYZERS, vocabularies, idfs, strict=True):
            self.blocks.append((analyzer, vocabulary, idf, offset))
            offset += len(vocabulary)
        self.weights = weights  # one row per feature: a text's features pick a few rows
        self.dense_from = offset
        self.intercept = intercept

    @classmethod
    def from_fitted(cls, fitted: Fitted, projection: Projection | None = None) -> LinearScorer:
        """The SVM's weights for the embeddings it was fitted on (`projection`'s) are turned into weights for whole
        embeddings: margins as the SVM gives them, from the encoder's output directly."""
        weights, intercept = fitted.weights, fitted.intercept
        if projection is not None:
            dense_from = sum(len(vocabulary) for vocabulary in fitted.vocabularies)
            dense = projection.basis @ weights[dense_from:]
            weights = np.vstack([weights[:dense_from], dense])
            intercept = intercept - projection.mean @ dense
        return cls(fitted.vocabularies, fitted.idfs, np.ascontiguousarray(weights), intercept)

    def __getstate__(self) -> dict:
        return {"vocabularies": [b[1] for b in self.blocks], "idfs": [b[2] for b in self.blocks],
                "weights": self.weights, "intercept": self.intercept}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def margins(self, texts: Sequence[str], dense: np.ndarray | None) -> np.ndarray:
        out = np.tile(self.intercept, (len(texts), 1))
        if dense is not None:
            out += dense @ self.weights[self.dense_from:]
        for row, text in enumerate(texts):
            columns, values = [], []
            for analyzer, vocabulary, idf, offset in self.blocks:
                found = [index for index in map(vocabulary.get, analyzer(text)) if index is not None]
                if not found:
                    continue
                counts = Counter(found)
                features = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tfidf = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * idf[features]
                columns.append(features + offset)
                values.append(tfidf / math.sqrt(tfidf @ tfidf))
            if columns:  # both blocks' rows of the weights in one gather and one product
                out[row] += np.concatenate(values) @ self.weights[np.concatenate(columns)]
        return out
