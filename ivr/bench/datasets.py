"""Public intent datasets in ../shared/eval (BANKING77, CLINC150, xSID) as (texts, labels) splits."""
from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Split:
    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def banking77(eval_dir: Path) -> tuple[Split, Split]:
    def read(name: str) -> Split:
        with open(eval_dir / "banking77" / name, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return Split([r["text"] for r in rows], [r["category"] for r in rows])

    return read("train.csv"), read("test.csv")


def clinc150(eval_dir: Path) -> tuple[Split, Split, Split, Split]:
    """In-scope train/test and out-of-scope train/test (labels "oos")."""
    data = json.loads((eval_dir / "clinc150_oos" / "data_full.json").read_text(encoding="utf-8"))

    def split(key: str) -> Split:
        return Split([t for t, _ in data[key]], [label for _, label in data[key]])

    return split("train"), split("test"), split("oos_train"), split("oos_test")


def training_sentences(eval_dir: Path) -> list[str]:
    """Every English training sentence, without labels and without any test split: what `ivr encoder distill`
    distils the encoder on (BANKING77 train, CLINC150 train, val and its out-of-scope train and val, xSID-en valid)."""
    b_train, _ = banking77(eval_dir)
    data = json.loads((eval_dir / "clinc150_oos" / "data_full.json").read_text(encoding="utf-8"))
    clinc = [text for key in ("train", "val", "oos_train", "oos_val") for text, _ in data[key]]
    return [*b_train.texts, *clinc, *xsid(eval_dir, "en")[0].texts]


def xsid(eval_dir: Path, language: str) -> tuple[Split, Split]:
    """xSID has no German training set: train on its validation split, test on its test split."""

    def read(name: str) -> Split:
        texts, labels = [], []
        for block in (eval_dir / "xsid_de_en" / name).read_text(encoding="utf-8").split("\n\n"):
            comments = [line[2:] for line in block.splitlines() if line.startswith("# ") and " = " in line]
            fields = dict(c.split(" = ", 1) for c in comments)
            if "text" in fields and "intent" in fields:
                texts.append(fields["text"])
                labels.append(fields["intent"])
        return Split(texts, labels)

    return read(f"{language}.valid.conll"), read(f"{language}.test.conll")


def few_shot(split: Split, per_label: int, *, seed: int = 0) -> Split:
    """A fixed-seed sample of `per_label` examples of every label."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(split.texts, split.labels, strict=True):
        by_label[label].append(text)
    rng = random.Random(seed)
    texts, labels = [], []
    for label in sorted(by_label):
        for text in rng.sample(by_label[label], min(per_label, len(by_label[label]))):
            texts.append(text)
            labels.append(label)
    return Split(texts, labels)
