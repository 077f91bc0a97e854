"""Classification metrics with scikit-learn, usable from the course loop and from `Trainer`.

Every function accepts either logits (any real numbers, shape `(n, num_classes)`),
probabilities (rows summing to 1), or, for binary tasks, a 1-D array of positive-class scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from .mathutils import softmax

__all__ = [
    "classification_metrics",
    "compute_metrics",
    "confusion",
    "roc",
    "softmax",
    "to_probabilities",
]


def to_probabilities(logits_or_probs: np.ndarray, kind: str = "auto") -> np.ndarray:
    """Class probabilities `(n, num_classes)` from logits, probabilities or 1-D binary scores.

    Introduced in chapter 5. `kind` says what the input is: `"logits"`, `"probabilities"`, or
    `"auto"`. With `"auto"`, rows that are non-negative and sum to 1 are kept as probabilities and
    anything else is read as logits; a 1-D array (one score per example) is read as a binary
    logit when some value lies outside [0, 1] and is otherwise ambiguous (0.3 could be either),
    so it must be given a `kind`.
    """
    if kind not in ("auto", "logits", "probabilities"):
        raise ValueError(f"kind must be auto, logits or probabilities, not {kind!r}")
    x = np.asarray(logits_or_probs, dtype=np.float64)
    if x.ndim == 1:
        in_unit_interval = x.size and x.min() >= 0 and x.max() <= 1
        if kind == "auto" and in_unit_interval:
            raise ValueError(
                "a 1-D array of scores in [0, 1] may be probabilities or logits: pass "
                "kind='probabilities' (P(class 1)) or kind='logits' (one binary logit)"
            )
        p1 = x if kind == "probabilities" else 1.0 / (1.0 + np.exp(-x))
        return np.stack([1 - p1, p1], axis=1)
    if kind == "probabilities" or (
        kind == "auto" and x.min() >= 0 and np.allclose(x.sum(axis=1), 1.0, atol=1e-4)
    ):
        return x
    return softmax(x, axis=1)


def _unpack(eval_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels) from an `EvalPrediction` or a `(predictions, labels)` pair."""
    if hasattr(eval_pred, "predictions"):
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
    else:
        predictions, labels = eval_pred
    if isinstance(predictions, tuple):  # some models return (logits, hidden_states, ...)
        predictions = predictions[0]
    return np.asarray(predictions), np.asarray(labels)


def classification_metrics(
    labels: np.ndarray, logits_or_probs: np.ndarray, kind: str = "auto"
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and ROC AUC of a classifier.

    Introduced in chapter 3. Binary tasks: precision, recall and F1 of class 1 (the positive
    class). More classes: macro averages and one-vs-rest AUC. AUC is NaN when the labels hold
    only one class. `kind` says what the scores are (see `to_probabilities`).
    """
    y = np.asarray(labels).astype(int)
    probs = to_probabilities(logits_or_probs, kind)
    pred = probs.argmax(axis=1)
    binary = probs.shape[1] == 2
    average = "binary" if binary else "macro"
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y,
        pred,
        average=average,
        zero_division=0,
        labels=None if binary else list(range(probs.shape[1])),
    )
    if len(np.unique(y)) < 2:
        auc = float("nan")
    elif binary:
        auc = skm.roc_auc_score(y, probs[:, 1])
    else:
        auc = skm.roc_auc_score(y, probs, multi_class="ovr", labels=list(range(probs.shape[1])))
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc": float(auc),
    }


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """`classification_metrics` for an `EvalPrediction` (or a `(logits, labels)` pair).

    Introduced in chapter 2. Pass it as `compute_metrics=` to `transformers.Trainer` and to
    `course_utils.training.train` alike.
    """
    predictions, labels = _unpack(eval_pred)
    return classification_metrics(labels, predictions)


def confusion(
    labels: np.ndarray,
    logits_or_probs: np.ndarray,
    normalize: str | None = None,
    kind: str = "auto",
) -> np.ndarray:
    """Confusion matrix: row = true class, column = predicted class.

    Introduced in chapter 5. `normalize="true"` divides each row by its count (per-class
    recall on the diagonal); `"pred"` and `"all"` as in scikit-learn.
    """
    probs = to_probabilities(logits_or_probs, kind)
    return skm.confusion_matrix(
        np.asarray(labels).astype(int),
        probs.argmax(axis=1),
        labels=list(range(probs.shape[1])),
        normalize=normalize,
    )


def roc(
    labels: np.ndarray, logits_or_probs: np.ndarray, kind: str = "auto"
) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve of a binary classifier: `(false_positive_rate, true_positive_rate, auc)`.

    Used by `plots.plot_roc`. The score of each example is its probability of class 1.
    """
    probs = to_probabilities(logits_or_probs, kind)
    if probs.shape[1] != 2:
        raise ValueError("roc() is for binary tasks; use classification_metrics for the AUC")
    y = np.asarray(labels).astype(int)
    fpr, tpr, _ = skm.roc_curve(y, probs[:, 1])
    return fpr, tpr, float(skm.roc_auc_score(y, probs[:, 1]))
