"""Chapter 5 — Project: fine-tuning a classifier end to end. Reference solutions and hidden cases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exercises import Case, Exercise, equal


# -- Exercise 1: choose max_length ---------------------------------------------------------------
def max_length_for(lengths: Sequence[int], coverage: float) -> int:
    """The smallest L such that at least a fraction `coverage` of the texts have length <= L."""
    ordered = sorted(lengths)
    needed = int(np.ceil(round(coverage * len(ordered), 9)))  # how many texts must fit
    return ordered[max(needed, 1) - 1]


# -- Exercise 2: precision, recall and F1 from a confusion matrix ---------------------------------
def prf_from_confusion(cm) -> tuple[float, float, float]:
    """(precision, recall, F1) of the positive class (index 1); rows = true, columns = predicted.

    A ratio whose denominator is 0 counts as 0 (as scikit-learn's `zero_division=0`).
    """
    (tn, fp), (fn, tp) = np.asarray(cm)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


# -- Exercise 3: a majority-vote ensemble --------------------------------------------------------
def majority_vote(predictions: Sequence[Sequence[int]]) -> list[int]:
    """The label most models predict for each example; a tie goes to the smallest label.

    `predictions[m][i]` is model m's label for example i.
    """
    votes = np.asarray(predictions)
    n_labels = int(votes.max()) + 1
    return [int(np.bincount(column, minlength=n_labels).argmax()) for column in votes.T]


LENGTH_CASES = [
    (list(range(1, 101)), 0.99),
    (list(range(1, 101)), 0.5),
    ([12, 7, 30, 7, 19], 0.6),
    ([12, 7, 30, 7, 19], 1.0),
    ([5, 5, 5, 5], 0.95),
    ([40, 3, 22, 8, 15, 61, 9, 27, 33, 18], 0.9),
    ([42], 0.5),
]

CONFUSION_CASES = [
    [[50, 10], [5, 35]],
    [[40, 0], [10, 50]],
    [[30, 20], [0, 0]],  # no positive examples, none predicted
    [[10, 0], [25, 0]],  # the model never says "positive"
    [[0, 7], [0, 13]],  # the model always says "positive"
    [[496, 42], [89, 399]],
]

VOTE_CASES = [
    [[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]],
    [[0, 0, 0], [1, 1, 1], [1, 0, 1]],
    [[1, 0], [0, 1]],  # two models disagree: ties go to the smallest label, 0
    [[2, 0, 1], [2, 1, 1], [0, 1, 2]],
    [[1, 1, 0, 0, 1]],
]


def _same_list(got, expected) -> bool:
    try:
        return equal([int(v) for v in np.asarray(got).ravel()], expected)
    except (TypeError, ValueError):
        return False


def exercises() -> dict[str, Exercise]:
    """Chapter 5's exercises (they need nothing from the notebook)."""
    return {
        "max_length_for": Exercise(
            "max_length_for",
            cases=[Case((lengths, coverage)) for lengths, coverage in LENGTH_CASES],
            solution=max_length_for,
            compare=lambda got, expected: equal(int(got), expected),
            hints=[
                "Sort the lengths. How many texts must fit untruncated? "
                "`ceil(coverage * len(lengths))` of them.",
                "If k texts must fit, L is the k-th smallest length: `sorted(lengths)[k - 1]`.",
                "Guard k = 0 (coverage 0 or one text): take at least the shortest length.",
            ],
        ),
        "prf_from_confusion": Exercise(
            "prf_from_confusion",
            cases=[Case((cm,)) for cm in CONFUSION_CASES],
            solution=prf_from_confusion,
            hints=[
                "Unpack the 2 x 2 matrix: `(tn, fp), (fn, tp) = cm` (rows: true class).",
                "precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = their harmonic mean "
                "2pr / (p + r).",
                "When a denominator is 0, return 0.0 for that ratio instead of dividing.",
            ],
        ),
        "majority_vote": Exercise(
            "majority_vote",
            cases=[Case((votes,)) for votes in VOTE_CASES],
            solution=majority_vote,
            compare=_same_list,
            hints=[
                "Look at one example at a time: the column `[p[i] for p in predictions]`.",
                "`np.bincount(column)` counts the votes per label; `.argmax()` picks the most "
                "voted one and, on a tie, the smallest label.",
                "Return a plain list of ints, one per example.",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs (nothing)."""
    return {}
