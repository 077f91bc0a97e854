"""Metrics of `course_utils.evaluation` checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from transformers import EvalPrediction

from course_utils.evaluation import (
    classification_metrics,
    compute_metrics,
    confusion,
    roc,
    softmax,
    to_probabilities,
)

# 6 examples; predictions (argmax) are 1, 1, 0, 0, 1, 0
LABELS = np.array([1, 0, 1, 0, 1, 0])
LOGITS = np.array([[0.0, 2.0], [0.0, 1.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.5], [0.2, 0.1]])
# TP = 2 (ex. 0, 4), FP = 1 (ex. 1), FN = 1 (ex. 2), TN = 2 (ex. 3, 5)


def test_metrics_match_hand_computed_values():
    m = classification_metrics(LABELS, LOGITS)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC by hand = share of (positive, negative) pairs ranked correctly. Scores (logit margins):
    # positives 2, -1, 0.5; negatives 1, -3, -0.1. Positive 2 beats all 3 negatives, -1 beats 1
    # (-3), 0.5 beats 2 (-3, -0.1): 6 of 9 pairs.
    assert m["auc"] == pytest.approx(6 / 9)


def test_probabilities_and_binary_scores_give_the_same_metrics():
    probs = softmax(LOGITS)
    assert np.allclose(probs.sum(axis=1), 1)
    assert classification_metrics(LABELS, probs) == pytest.approx(
        classification_metrics(LABELS, LOGITS)
    )
    assert classification_metrics(LABELS, probs[:, 1], kind="probabilities") == pytest.approx(
        classification_metrics(LABELS, LOGITS)
    )
    assert np.allclose(to_probabilities(probs), probs)


def test_one_dimensional_scores_are_never_guessed():
    """1-D logits that happen to lie in [0, 1] are not mistaken for probabilities."""
    logits = np.array([0.2, 0.9, 0.4])
    with pytest.raises(ValueError, match="kind="):
        to_probabilities(logits)
    p = to_probabilities(logits, kind="logits")[:, 1]
    assert np.allclose(p, 1 / (1 + np.exp(-logits)))
    assert np.allclose(to_probabilities(logits, kind="probabilities")[:, 1], logits)
    wide = np.array([-2.0, 3.0])  # outside [0, 1]: can only be logits
    assert np.allclose(to_probabilities(wide)[:, 1], 1 / (1 + np.exp(-wide)))
    with pytest.raises(ValueError, match="kind must be"):
        to_probabilities(logits, kind="odds")


def test_compute_metrics_accepts_eval_prediction_and_pairs():
    a = compute_metrics(EvalPrediction(predictions=LOGITS, label_ids=LABELS))
    b = compute_metrics((LOGITS, LABELS))
    c = compute_metrics(EvalPrediction(predictions=(LOGITS, np.zeros(3)), label_ids=LABELS))
    assert a == b == c


def test_confusion_matrix():
    assert confusion(LABELS, LOGITS).tolist() == [[2, 1], [1, 2]]
    assert np.allclose(
        confusion(LABELS, LOGITS, normalize="true"), [[2 / 3, 1 / 3], [1 / 3, 2 / 3]]
    )


def test_roc_curve():
    fpr, tpr, auc = roc(LABELS, LOGITS)
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert auc == pytest.approx(6 / 9)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc)


def test_multiclass_uses_macro_averages():
    labels = np.array([0, 1, 2, 2])
    logits = np.eye(3)[[0, 1, 2, 1]] * 5
    m = classification_metrics(labels, logits)
    assert m["accuracy"] == pytest.approx(0.75)
    # per class: precision 1, 1/2, 1; recall 1, 1, 1/2 -> macro 5/6 each
    assert m["precision"] == pytest.approx(5 / 6) and m["recall"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError):
        roc(labels, logits)


def test_single_class_auc_is_nan():
    assert math.isnan(classification_metrics(np.ones(3), LOGITS[:3])["auc"])
