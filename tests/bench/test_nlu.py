"""The benchmark harness on a small slice of the real data (figures are printed, not asserted)."""
import csv
import json
import random

import numpy as np
import pytest

from ivr.bench.datasets import banking77, clinc150, few_shot, xsid
from ivr.bench.metrics import expected_calibration_error, oos_at_operating_point, per_intent_report
from ivr.bench.nlu import corrupt, run, subset
from ivr.cli import main
from tests.support import EVAL, requires_eval

pytestmark = requires_eval


@pytest.fixture
def small_eval_dir(tmp_path):
    """A slice of every dataset, in the original formats."""
    train, test = banking77(EVAL)
    some = sorted(set(train.labels))[:20]  # 20 of the 77 intents: the fits' cost grows with the intents
    (tmp_path / "banking77").mkdir()
    for name, split in (("train.csv", few_shot(subset(train, some), 4)), ("test.csv", few_shot(subset(test, some), 1))):
        with open(tmp_path / "banking77" / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows(zip(split.texts, split.labels, strict=True))
    data = json.loads((EVAL / "clinc150_oos" / "data_full.json").read_text())
    keep = sorted({label for _, label in data["train"]})[:12]
    small = {key: [pair for pair in data[key] if pair[1] in keep or pair[1] == "oos"][:200] for key in data}
    (tmp_path / "clinc150_oos").mkdir()
    (tmp_path / "clinc150_oos" / "data_full.json").write_text(json.dumps(small))
    (tmp_path / "xsid_de_en").mkdir()
    for source in (EVAL / "xsid_de_en").glob("*.conll"):  # the first 120 sentences of each split
        blocks = source.read_text(encoding="utf-8").split("\n\n")[:120]
        (tmp_path / "xsid_de_en" / source.name).write_text("\n\n".join(blocks), encoding="utf-8")
    return tmp_path


def test_loaders_read_the_published_splits():
    train, test = banking77(EVAL)
    assert (len(train), len(test), len(set(test.labels))) == (10003, 3080, 77)
    c_train, c_test, oos_train, oos_test = clinc150(EVAL)
    assert (len(c_train), len(c_test), len(oos_test), len(set(c_train.labels))) == (15000, 4500, 1000, 150)
    de_train, de_test = xsid(EVAL, "de")
    assert len(de_test) == 500 and de_test.texts[0] and len(set(de_test.labels)) >= 10


def test_few_shot_is_fixed_by_the_seed():
    train, _ = banking77(EVAL)
    assert few_shot(train, 10, seed=0).texts == few_shot(train, 10, seed=0).texts
    assert few_shot(train, 10, seed=0).texts != few_shot(train, 10, seed=1).texts
    assert len(few_shot(train, 10)) == 770


def test_the_quick_benchmark_prints_every_task_for_both_models(small_eval_dir, capsys, monkeypatch):
    """One run through the CLI (the n-gram models only, on a slice): every task, both models, the figures."""
    monkeypatch.setenv("IVR_NLU_ENCODER", "false")
    rows = []
    monkeypatch.setattr("ivr.bench.nlu.run", lambda *a, **k: rows.extend(run(*a, **k)) or rows)
    assert main(["bench", "nlu", "--quick", "--noisy", "--eval-dir", str(small_eval_dir)]) == 0
    out = capsys.readouterr().out
    assert len(rows) == 14 and {r.model for r in rows} == {"baseline", "production"}
    few = [r for r in rows if r.task.startswith("BANKING77 10-shot seed") and r.model == "baseline"]
    mean = next(r for r in rows if r.task.startswith("BANKING77 10-shot, mean") and r.model == "baseline")
    assert len(few) == 2 and mean.accuracy == pytest.approx((few[0].accuracy + few[1].accuracy) / 2)
    assert all(0 <= r.accuracy <= 1 and r.noisy_accuracy is not None for r in rows)
    assert all(r.oos_recall is not None for r in rows if r.task.startswith("CLINC"))
    assert "BANKING77 10-shot, mean of 2" in out and "classify p50" in out and "build" in out
    assert sum(line.startswith("calibration,") for line in out.splitlines()) == 2


def test_oos_operating_point_keeps_ninety_percent_of_in_scope():
    in_scores = np.linspace(0.5, 1.0, 100)
    correct = np.ones(100, dtype=bool)
    threshold, recall, precision = oos_at_operating_point(in_scores, correct, np.full(10, 0.1))
    assert ((in_scores >= threshold) & correct).mean() >= 0.9
    assert recall == 1.0 and precision == pytest.approx(10 / 20)


def test_calibration_error_is_zero_when_confidence_matches_accuracy():
    confidence = np.full(10, 0.7)
    correct = np.array([1] * 7 + [0] * 3, dtype=bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(10, 0.9), correct) == pytest.approx(0.2)


def test_per_intent_report_and_confusions():
    report, confused = per_intent_report(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert report["a"] == (1.0, 0.5, 2) and report["b"] == (pytest.approx(2 / 3), 1.0, 2)
    assert confused == [("a", "b", 1)]


def test_noise_is_seeded_and_phone_like():
    a = [corrupt("I want to pay 2 bills for my account", random.Random(1)) for _ in range(2)]
    assert a[0] == a[1] and a[0] == a[0].lower() and "2" not in a[0]


def test_grammar_test_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IVR_NLU_ENCODER", "false")  # the report is under test, not the encoder: n-grams suffice
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,intent\nmy internet keeps dropping out,internet_down\nwhere is my order,order_status\n"
                        "what's the weather like today,pay_bill\n")
    assert main(["grammar", "test", str(labelled)]) == 0
    out = capsys.readouterr().out
    assert "accuracy 0.667" in out and "pay_bill → out_of_scope: 1" in out
