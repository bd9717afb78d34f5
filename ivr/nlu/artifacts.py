"""Trained classifiers cached on disk, keyed by a hash of what they were trained from (phrases, out-of-scope
examples, the encoder, the library versions): a restart or a second worker loads the grammar's classifier in about
a second instead of training it again, and workers starting together train it once (a file lock)."""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
from importlib.metadata import version
from pathlib import Path

from ivr.grammar import Grammar
from ivr.nlu import Understanding
from ivr.nlu.classifier import Encoder, IntentClassifier
from ivr.nlu.disk_cache import load_or_build

log = logging.getLogger(__name__)


def fingerprint(grammar: Grammar, encoder: Encoder | None) -> str:
    material = {
        "phrases": {name: intent.phrases for name, intent in grammar.intents.items()},
        "out_of_scope": grammar.out_of_scope_examples, "locale": grammar.locale,
        "encoder": getattr(encoder, "model_id", type(encoder).__name__) if encoder is not None else None,
        "versions": [version(package) for package in ("scikit-learn", "numpy", "scipy")],
        "auto_threshold": grammar.thresholds.out_of_scope == "auto",
        "format": 12,  # 5: single examples calibrate; 6: the scorer's arrays; 7: one multi-class SVM with embeddings;
        # 8: the n-gram SVM seeded, big grammars calibrated on CALIBRATION_PHRASES; 9: `auto` when few are right;
        # 10: the SVM fits the embeddings' leading directions; 11: its C 0.3; 12: nearness to the phrases
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


def build(grammar: Grammar, *, encoder: Encoder | None, cache_dir: Path | None) -> Understanding:
    """The grammar's understanding: from the cache when this exact training was done before, else trained (and
    cached). A cache that cannot be read or written only costs the training."""
    if cache_dir is None:
        return Understanding.build(grammar, encoder=encoder)
    path = cache_dir / f"classifier-{grammar.locale}-{fingerprint(grammar, encoder)}.pkl"
    return load_or_build(path, lambda found: _load(found, grammar, encoder), lambda: _train(grammar, encoder),
                         what="classifier")


def _load(path: Path, grammar: Grammar, encoder: Encoder | None) -> Understanding | None:
    if not path.exists():
        return None
    try:
        scorer, labels, temperature, with_encoder, nearest, nearness, choice = pickle.loads(path.read_bytes())  # ours
    except Exception as exc:
        log.warning("classifier cache %s unreadable (%s): training again", path, exc)
        return None
    log.info("grammar %s: classifier loaded from %s", grammar.locale, path)
    classifier = IntentClassifier(scorer, encoder if with_encoder else None, labels, temperature, nearest=nearest,
                                  nearness=nearness)
    return Understanding(grammar, classifier, choice)


def _train(grammar: Grammar, encoder: Encoder | None) -> tuple[Understanding, bytes]:
    understanding = Understanding.build(grammar, encoder=encoder)
    trained = understanding.classifier
    return understanding, pickle.dumps((trained.scorer, trained.labels, trained.temperature,
                                        trained.encoder is not None, trained.nearest, trained.nearness,
                                        understanding.choice))
