import numpy as np
import pytest

from ivr.nlu import nearest
from ivr.nlu.classifier import NEARNESS_WEIGHTS, IntentClassifier, softmax
from ivr.nlu.nearest import NearestPhrases
from tests.nlu.test_any_grammar_trains import HashedWords


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.normal(size=(count, 8)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("block", [1 << 21, 3 * 4 * 4, 1])  # all texts at once, 3 at a time, one by one
def test_each_intent_scores_the_mean_cosine_of_its_two_nearest_phrases(monkeypatch, block):
    monkeypatch.setattr(nearest, "_BLOCK", block)
    rng = np.random.default_rng(0)
    phrases = unit_rows(rng, 9)
    classes = np.array([2, 0, 2, 0, 0, 3, 2, 0, 2])  # intent 1 has no phrase, intent 3 a single one
    texts = unit_rows(rng, 7)
    got = NearestPhrases(phrases, classes, 4).similarity(texts)
    cosines = texts @ phrases.T
    for intent, expected_of in [(0, lambda c: np.sort(c)[-2:].mean()), (2, lambda c: np.sort(c)[-2:].mean()),
                                (3, lambda c: c.max()), (1, lambda c: 0.0)]:
        expected = [expected_of(row[classes == intent]) for row in cosines]
        assert np.allclose(got[:, intent], expected, atol=1e-6)


def test_nearness_to_the_phrases_is_added_to_the_margins_with_the_weight_the_held_out_phrases_chose():
    texts = [f"{w} thing {i}" for w in ("apple", "pear", "plum") for i in range(6)]
    labels = [t.split()[0] for t in texts]
    encoder = HashedWords()
    trained = IntentClassifier.train(texts, labels, encoder=encoder)
    assert trained.nearness in NEARNESS_WEIGHTS
    said = ["a pear thing please", "plum"]
    unit = encoder.encode(said)
    svm_only = trained.scorer.margins(said, unit * 2.0)
    expected = svm_only + trained.nearness * trained.nearest.similarity(unit)
    assert np.allclose(trained.margins(said), expected)
    assert np.allclose(trained.predict_proba(said), softmax(expected, trained.temperature))


def test_without_embeddings_there_is_no_nearness():
    texts = [f"{w} thing {i}" for w in ("apple", "pear", "plum") for i in range(6)]
    trained = IntentClassifier.train(texts, [t.split()[0] for t in texts])
    assert trained.nearest is None and trained.nearness == 0.0
