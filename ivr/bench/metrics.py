"""Metrics shared by `ivr bench nlu` and `ivr grammar test`: accuracy, out-of-scope detection, calibration,
per-intent precision/recall and confusions."""
from __future__ import annotations

import numpy as np

from ivr.nlu.regression import per_intent_report

__all__ = ["expected_calibration_error", "oos_at_operating_point", "per_intent_report"]


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15) -> float:
    """How far stated confidence is from observed accuracy, averaged over equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def oos_at_operating_point(in_scores: np.ndarray, in_correct: np.ndarray, oos_scores: np.ndarray,
                           *, keep: float = 0.90) -> tuple[float, float, float]:
    """The strictest threshold that still accepts-and-answers-correctly `keep` of in-scope requests;
    returns (threshold, out-of-scope recall, out-of-scope precision). Rejected means score < threshold."""
    candidates = np.unique(np.concatenate([in_scores[in_correct], [0.0]]))
    threshold = 0.0
    for t in candidates[::-1]:
        if ((in_scores >= t) & in_correct).mean() >= keep:
            threshold = float(t)
            break
    rejected_oos = (oos_scores < threshold).sum()
    rejected_in = (in_scores < threshold).sum()
    recall = rejected_oos / max(1, len(oos_scores))
    precision = rejected_oos / max(1, rejected_oos + rejected_in)
    return threshold, float(recall), float(precision)
