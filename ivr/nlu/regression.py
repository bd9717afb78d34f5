"""A grammar's regression set: labelled utterances (the seed file next to the grammar, plus real utterances admins
labelled) run through a trained grammar — accuracy, per-intent precision and recall, the most confused pairs and a
confusion matrix. Shared by the publish gate, the admin pages and `ivr grammar test`."""
from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ivr.nlu import Understanding
from ivr.types import Utterance

SEED_FILE = "regression.csv"  # text,intent — next to the grammar file in grammars/<locale>/
NOT_HANDLED = "out_of_scope"  # the label of an utterance the hotline should not route


def per_intent_report(gold: Sequence[str], predicted: Sequence[str]) -> tuple[dict[str, tuple[float, float, int]],
                                                                                list[tuple[str, str, int]]]:
    """Per intent (precision, recall, support), and the most confused (gold, predicted) pairs."""
    labels = sorted(set(gold) | set(predicted))
    pairs = Counter(zip(gold, predicted, strict=True))
    report = {}
    for label in labels:
        tp = pairs[(label, label)]
        predicted_n = sum(n for (_, p), n in pairs.items() if p == label)
        support = sum(n for (g, _), n in pairs.items() if g == label)
        report[label] = (tp / predicted_n if predicted_n else 0.0, tp / support if support else 0.0, support)
    confused = sorted(((g, p, n) for (g, p), n in pairs.items() if g != p), key=lambda x: -x[2])
    return report, confused[:10]


def read_labelled(path: str | Path) -> list[tuple[str, str]]:
    """(text, intent) rows of a CSV with the columns text,intent; ValueError names what is wrong."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"text", "intent"} <= set(rows[0]):
        raise ValueError(f"{path}: needs the columns text,intent (has {','.join(rows[0])})")
    return [(row["text"].strip(), row["intent"].strip()) for row in rows if row["text"].strip()]


def seed_labelled(grammar_dir: str | Path, locale: str) -> list[tuple[str, str]]:
    path = Path(grammar_dir) / locale / SEED_FILE
    return read_labelled(path) if path.exists() else []


def evaluate(understanding: Understanding, labelled: Sequence[tuple[str, str]]) -> dict:
    """The figures of one grammar on a labelled set, as plain data (stored with each published version)."""
    gold = [intent for _, intent in labelled]
    predicted = [understanding.interpret(Utterance(text)).intent or NOT_HANDLED for text, _ in labelled]
    report, confused = per_intent_report(gold, predicted)
    labels = sorted(set(gold) | set(predicted))
    pairs = Counter(zip(gold, predicted, strict=True))
    return {
        "n": len(labelled),
        "accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold), 3) if gold else None,
        "intents": {label: {"precision": round(p, 3), "recall": round(r, 3), "support": n}
                    for label, (p, r, n) in report.items()},
        "confused": [list(c) for c in confused],
        "matrix": {"labels": labels, "counts": [[pairs[(g, p)] for p in labels] for g in labels]},
        "misses": [{"text": text, "intent": g, "understood": p}
                   for (text, g), p in zip(labelled, predicted, strict=True) if g != p][:50],
    }
