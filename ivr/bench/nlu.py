"""`ivr bench nlu`: intent routing on public benchmarks, the production classifier against the baseline
(TF-IDF word+char n-grams + LinearSVC), in one run on this machine. Figures are printed, never asserted."""
from __future__ import annotations

import pickle
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivr.bench.datasets import Split, banking77, clinc150, few_shot, xsid
from ivr.bench.metrics import expected_calibration_error, oos_at_operating_point
from ivr.nlu import OUT_OF_SCOPE, fitting
from ivr.nlu.classifier import IntentClassifier
from ivr.nlu.encoder import SentenceEncoder
from ivr.nlu.oos import choose_threshold_for, in_scope_scores, why_not_chosen

FEW_SHOT_SEEDS = 5  # BANKING77 10-shot is sampled with seeds 0..4 and averaged: one sample varies by ±0.006
HOMOPHONES = {"to": "two", "for": "four", "their": "there", "there": "their", "write": "right", "know": "no",
              "hear": "here", "by": "buy", "new": "knew", "card": "cart", "won't": "want",
              "your": "you're",
              "account": "a count", "top": "stop", "pay": "page", "bill": "build", "two": "to", "four": "for"}
NUMBER_WORDS = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "10": "ten", "100": "one hundred"}


def corrupt(text: str, rng: random.Random) -> str:
    """Telephone-ASR-like noise: dropped short words, homophones, numbers as words, no punctuation or case."""
    words = re.findall(r"[\w']+", text.lower())
    out = []
    for word in words:
        if len(word) <= 3 and rng.random() < 0.15:
            continue
        if word in HOMOPHONES and rng.random() < 0.5:
            word = HOMOPHONES[word]
        out.append(NUMBER_WORDS.get(word, word))
    return " ".join(out) or text.lower()


@dataclass
class Model:
    name: str
    train: Callable[[Split], IntentClassifier]


@dataclass
class Row:
    task: str
    model: str
    accuracy: float
    ece: float
    oos_recall: float | None = None
    oos_precision: float | None = None
    noisy_accuracy: float | None = None
    nbest_accuracy: float | None = None


def models(encoder: SentenceEncoder | None) -> list[Model]:
    baseline = Model("baseline", lambda s: IntentClassifier.train(s.texts, s.labels, calibrate=False))
    production = Model("production", lambda s: IntentClassifier.train(s.texts, s.labels, encoder=encoder))
    return [baseline, production]


def evaluate(task: str, model: Model, train: Split, test: Split, *, oos: tuple[Split, Split] | None = None,
             noisy: bool = False) -> Row:
    if oos is not None and model.name != "baseline":
        train = Split(train.texts + oos[0].texts, train.labels + [OUT_OF_SCOPE] * len(oos[0]))
    classifier = model.train(train)
    probs = classifier.predict_proba(test.texts)
    labels = np.array(classifier.labels)
    gold = np.array(test.labels)
    correct = labels[probs.argmax(1)] == gold
    row = Row(task, model.name, float(correct.mean()), expected_calibration_error(probs.max(1), correct))
    if oos is not None:
        in_scope = labels != OUT_OF_SCOPE

        def scores(p: np.ndarray) -> np.ndarray:  # the best in-scope probability; zero when "none of these" wins
            return np.where(labels[p.argmax(1)] == OUT_OF_SCOPE, 0.0, p[:, in_scope].max(1))

        _, row.oos_recall, row.oos_precision = oos_at_operating_point(
            scores(probs), correct, scores(classifier.predict_proba(oos[1].texts)))
    if noisy:
        rng = random.Random(7)
        variants = [[corrupt(t, rng) for _ in range(3)] for t in test.texts]
        one_best = classifier.predict_proba([v[0] for v in variants])
        row.noisy_accuracy = float((labels[one_best.argmax(1)] == gold).mean())
        nbest_hits = [classifier.rank(v, [1.0, 0.5, 0.33])[0][0] == g for v, g in zip(variants, gold, strict=True)]
        row.nbest_accuracy = float(np.mean(nbest_hits))
    return row


def latency_ms(classifier: IntentClassifier, turns: list[list[str]]) -> tuple[float, float]:
    """p50/p99 of classifying one turn at a time: its utterance, or its n-best alternatives (unseen texts, so no
    embedding is cached)."""
    timings = []
    for texts in turns:
        start = time.perf_counter()
        classifier.rank(texts)
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


PARTS = ("accuracy", "oos", "calibration", "speed")


def run(eval_dir: Path, *, encoder: SentenceEncoder | None = None, noisy: bool = False, quick: bool = False,
        parts: tuple[str, ...] = PARTS, out=print) -> list[Row]:
    """Run the benchmarks (all `parts`, or some: the whole run takes ~40 minutes here) and print one table.
    `quick` uses small slices (for tests)."""
    out(f"encoder: {encoder.name + ' on onnxruntime' if encoder else 'none installed: n-grams only'}")
    cut = (lambda s, n: Split(s.texts[:n], s.labels[:n])) if quick else (lambda s, n: s)
    b_train, b_test = banking77(eval_dir)
    c_train, c_test, c_oos_train, c_oos_test = clinc150(eval_dir)
    if quick:
        b_train, c_train = few_shot(b_train, 3), few_shot(c_train, 3)
        b_test, c_test = few_shot(b_test, 1), few_shot(c_test, 1)
    seeds = 2 if quick else FEW_SHOT_SEEDS
    tasks: list[tuple[str, Split, Split, tuple[Split, Split] | None]] = [
        (f"BANKING77 10-shot seed {s}", few_shot(b_train, 10, seed=s), b_test, None) for s in range(seeds)]
    tasks += [
        ("BANKING77 full", b_train, b_test, None),
        ("CLINC150 full (+OOS)", c_train, c_test, (c_oos_train, cut(c_oos_test, 100))),
    ]
    for language in ("de", "en"):
        train, test = xsid(eval_dir, language)
        tasks.append((f"xSID {language} (train: valid)", train, cut(test, 60), None))
    rows: list[Row] = []
    for task, train, test, oos in tasks if "accuracy" in parts else []:
        for model in models(None if task.startswith("xSID de") else encoder):
            rows.append(evaluate(task, model, train, test, oos=oos, noisy=noisy))
            ratio = f"   ({rows[-1].accuracy / rows[-2].accuracy:.3f}× baseline)" if model.name != "baseline" else ""
            out(format_row(rows[-1]) + ratio)
    for name in ("baseline", "production") if rows else ():
        few = [r for r in rows if r.task.startswith("BANKING77 10-shot seed") and r.model == name]
        rows.append(mean_row(f"BANKING77 10-shot, mean of {len(few)}", few))
        spread = np.std([r.accuracy for r in few])
        out(f"{format_row(rows[-1])}   (accuracy ± {spread:.3f} over seeds)")
    if rows:
        out("(oracle: the out-of-scope figures of this table pick their threshold on the test set itself; the"
            " section below chooses it from the training split only)")
    if "oos" in parts:
        near_domain_out_of_scope(eval_dir, b_train, b_test, c_train, c_test, (c_oos_train, cut(c_oos_test, 100)),
                                 encoder, quick=quick, out=out)
    if "calibration" in parts:
        calibration_by_size(c_train, c_test, encoder, sizes=(5, 10) if quick else (10, 50, 150), out=out)
    if "speed" in parts:
        speed(c_train, c_test, encoder, quick=quick, out=out)
    return rows


def near_domain_out_of_scope(eval_dir: Path, b_train: Split, b_test: Split, c_train: Split, c_test: Split,
                             unrelated: tuple[Split, Split], encoder: SentenceEncoder | None, *, quick: bool,
                             out=print) -> None:
    """CLINC150 and a 30-shot BANKING77 with the encoder, German xSID with n-grams."""
    out_of_scope("CLINC150", c_train, c_test, unrelated, None if quick else encoder, out=out)
    if not quick:  # (the tests' slice runs the CLINC150 section with n-grams only, to stay quick)
        out_of_scope("BANKING77", few_shot(b_train, 30), b_test, unrelated, encoder, out=out)
    de_train, de_test = xsid(eval_dir, "de")  # German: n-grams (the encoder is English); no unrelated German set
    out_of_scope("xSID de", de_train, de_test, (Split([], []), Split([], [])), None, out=out)


HELD_OUT_SHARE, HELD_OUT_SEED = 0.25, 0  # a quarter of a dataset's intents, drawn with seed 0, never trained on


def held_out_intents(labels: list[str]) -> list[str]:
    """The fixed set of intents a benchmark leaves out of training and scores as near-domain out-of-scope."""
    intents = sorted(set(labels))
    return sorted(random.Random(HELD_OUT_SEED).sample(intents, round(len(intents) * HELD_OUT_SHARE)))


def out_of_scope(name: str, train: Split, test: Split, unrelated: tuple[Split, Split],
                 encoder: SentenceEncoder | None, *, keep: float = 0.90, out=print) -> dict[str, float]:
    """Near-domain out-of-scope: train on three quarters of the intents (plus unrelated out-of-scope examples),
    choose the threshold from that training split by leave-intents-out cross-validation (as a grammar does at
    build time), then on the test split: in-scope accepted and correct, and the share rejected of the left-out
    intents' requests (near-domain) and of unrelated requests. The oracle line picks the threshold on the test set."""
    held = set(held_out_intents(train.labels))
    known = [label for label in sorted(set(train.labels)) if label not in held]
    phrases: dict[str, list[str]] = {label: [] for label in known}
    for text, label in zip(train.texts, train.labels, strict=True):
        if label not in held:
            phrases[label].append(text)
    started = time.perf_counter()
    texts = [t for label in known for t in phrases[label]] + unrelated[0].texts
    labels = [label for label in known for _ in phrases[label]] + [OUT_OF_SCOPE] * len(unrelated[0])
    model = IntentClassifier.train(texts, labels, encoder=encoder)
    choice = choose_threshold_for(phrases, unrelated[0].texts, encoder, trained=model, keep=keep)
    threshold = choice.threshold if choice else 0.0
    build_s = time.perf_counter() - started
    in_scope = subset(test, known)
    scored = in_scope_scores(model, in_scope.texts)
    scores = np.array([score for score, _ in scored])
    correct = np.array([top == gold for (_, top), gold in zip(scored, in_scope.labels, strict=True)])
    near = np.array([score for score, _ in in_scope_scores(model, subset(test, sorted(held)).texts)])
    far = np.array([score for score, _ in in_scope_scores(model, unrelated[1].texts)])
    rejected_in = (scores < threshold).sum()

    def share(hits: np.ndarray) -> float:
        return float(hits.mean()) if hits.size else float("nan")

    figures = {"threshold": threshold, "kept": share((scores >= threshold) & correct),
               "near_recall": share(near < threshold), "unrelated_recall": share(far < threshold),
               "near_precision": float((near < threshold).sum() / max(1, (near < threshold).sum() + rejected_in))}
    model_name = "production" if encoder else "n-grams"
    out(f"{name} out-of-scope ({model_name}; {len(known)} intents trained, {len(held)} held out as near-domain, "
        f"seed {HELD_OUT_SEED}): threshold {threshold:.3f} from the training split "
        f"({choice.describe() if choice else why_not_chosen(len(known))}; {build_s:.0f} s)")
    unrelated_figure = (f"; unrelated recall {figures['unrelated_recall']:.3f} (≥ 0.90)" if len(unrelated[1])
                        else "; no unrelated set")
    out(f"  at it: in-scope accepted and correct {figures['kept']:.3f} (target ≥ {keep:.2f}); near-domain recall "
        f"{figures['near_recall']:.3f} (≥ 0.70), precision {figures['near_precision']:.3f}{unrelated_figure}")
    oracle, recall, precision = oos_at_operating_point(scores, correct, near, keep=keep)
    out(f"  oracle (threshold {oracle:.3f} picked on the test set): near-domain recall {recall:.3f}, "
        f"precision {precision:.3f}")
    return figures


def subset(split: Split, labels: list[str]) -> Split:
    keep = set(labels)
    pairs = [(t, lab) for t, lab in zip(split.texts, split.labels, strict=True) if lab in keep]
    return Split([t for t, _ in pairs], [lab for _, lab in pairs])


def calibration_by_size(train: Split, test: Split, encoder: SentenceEncoder | None, *, sizes: tuple[int, ...],
                        threshold: float = 0.55, out=print) -> None:
    """Does a confidence threshold mean the same in a small and a large grammar? Grammars of 20 phrases per
    intent with 10…150 intents: calibration error, and how often answers above the confirm threshold are right."""
    intents = sorted(set(train.labels))
    for size in sizes:
        grammar = few_shot(subset(train, intents[:size]), 20)
        held_out = subset(test, intents[:size])
        classifier = IntentClassifier.train(grammar.texts, grammar.labels, encoder=encoder)
        probs = classifier.predict_proba(held_out.texts)
        confidence = probs.max(1)
        correct = np.array(classifier.labels)[probs.argmax(1)] == np.array(held_out.labels)
        sure = confidence >= threshold
        out(f"calibration, {size:3d} intents x 20 phrases: ECE {expected_calibration_error(confidence, correct):.3f}"
            f"  mean confidence {confidence.mean():.3f} vs accuracy {correct.mean():.3f};  p >= {threshold}: "
            f"{sure.mean():.0%} of answers, {correct[sure].mean() if sure.any() else float('nan'):.3f} correct")


def mean_row(task: str, rows: list[Row]) -> Row:
    """The average of runs on different few-shot samples."""

    def mean(field: str) -> float | None:
        values = [getattr(r, field) for r in rows]
        return float(np.mean(values)) if None not in values else None

    return Row(task, rows[0].model, mean("accuracy") or 0.0, mean("ece") or 0.0,
               noisy_accuracy=mean("noisy_accuracy"), nbest_accuracy=mean("nbest_accuracy"))


def format_row(row: Row) -> str:
    def pct(x: float | None) -> str:
        return f"{x:6.3f}" if x is not None else "     -"

    return (f"{row.task:28s} {row.model:10s} acc {pct(row.accuracy)}  ece {pct(row.ece)}  oracle oos-recall "
            f"{pct(row.oos_recall)}  oos-prec {pct(row.oos_precision)}  noisy {pct(row.noisy_accuracy)}  "
            f"n-best {pct(row.nbest_accuracy)}")


def speed(train: Split, test: Split, encoder: SentenceEncoder | None, *, quick: bool, out=print) -> None:
    """Latency per utterance, build time for a 100-intent × 20-phrase grammar (cold: no embedding or classifier
    cached; the fitting workers running, as in a service), and model memory."""
    intents = sorted(set(train.labels))[:100]
    grammar = few_shot(Split([t for t, lab in zip(train.texts, train.labels, strict=True) if lab in intents],
                             [lab for lab in train.labels if lab in intents]), 20 if not quick else 3)
    probe = test.texts[:300 if not quick else 10]
    baseline_p99 = None
    runs: list[tuple[str, SentenceEncoder | None]] = [("baseline", None), ("production", encoder)]
    if encoder is not None and encoder.layers and not quick:  # all six layers, for the ratio
        runs.append(("6 layers", SentenceEncoder(encoder.model_dir, cache_dir=encoder.cache_dir)))
    if len(grammar) >= fitting.PARALLEL_FROM:  # running, as a service serving a big grammar keeps them (the first
        fitting.start_workers()  # build of a process would take ~2.5 s more)
    for name, enc in runs:
        if enc is not None:
            enc.forget()
        start = time.perf_counter()
        classifier = IntentClassifier.train(grammar.texts, grammar.labels, encoder=enc, calibrate=name != "baseline")
        build_s = time.perf_counter() - start
        p50, p99 = latency_ms(classifier, [[text] for text in probe])
        size_mb = len(pickle.dumps((classifier.scorer, classifier.nearest))) / 1e6 + (enc.nbytes / 1e6 if enc else 0)
        ratio = f"   (p99 {p99 / baseline_p99:.1f}× baseline)" if baseline_p99 else ""
        baseline_p99 = baseline_p99 or p99
        targets = "   (targets: build ≤ 5 s, p99 ≤ 5 ms)" if name == "production" else ""
        out(f"{name:10s} build {len(intents)}x{len(grammar) // max(1, len(intents))} grammar {build_s:6.2f} s   "
            f"classify p50 {p50:6.2f} ms  p99 {p99:6.2f} ms   model {size_mb:6.1f} MB{ratio}{targets}")
        rng = random.Random(7)
        p50, p99 = latency_ms(classifier, [[text] + [corrupt(text, rng) for _ in range(2)] for text in probe])
        out(f"{'':10s} a turn with 3 ASR alternatives (each encoded): p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        if name == "production" and not quick:
            out(f"{'':10s} the same build with every fit in this process, one after another: "
                f"{build_in_process(grammar, enc):6.2f} s")


def build_in_process(grammar: Split, encoder: SentenceEncoder | None) -> float:
    """Seconds to build without the fitting workers, as a grammar under fitting.PARALLEL_FROM phrases is."""
    parallel_from, fitting.PARALLEL_FROM = fitting.PARALLEL_FROM, 10**9
    try:
        if encoder is not None:
            encoder.forget()
        start = time.perf_counter()
        IntentClassifier.train(grammar.texts, grammar.labels, encoder=encoder)
        return time.perf_counter() - start
    finally:
        fitting.PARALLEL_FROM = parallel_from
