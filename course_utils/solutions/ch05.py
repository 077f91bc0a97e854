"""Chapter 5 — Project: fine-tuning a classifier end to end. Reference solutions and hidden cases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data import normalize_text
from ..exercises import Case, Exercise, equal
from ..project import drop_negations, drop_random_words, is_negation


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


# -- Exercise 4: find the leaks -----------------------------------------------------------------
def find_leaks(train_texts: Sequence[str], test_texts: Sequence[str]) -> list[int]:
    """Indices of the test texts that are also training texts once normalised."""
    seen = {normalize_text(text) for text in train_texts}
    return [i for i, text in enumerate(test_texts) if normalize_text(text) in seen]


# -- Exercise 5 (an experiment): does the model read negations? ------------------------------------
def negation_experiment(texts: Sequence[str], classify) -> dict:
    """How often deleting a review's negations flips the model's label, against a control that
    deletes as many other words; `beyond_noise`: the difference exceeds twice its paired
    standard error."""
    texts = list(texts)
    before = np.asarray(classify(texts))
    negation = np.asarray(classify([drop_negations(t) for t in texts])) != before
    counts = [sum(is_negation(w) for w in t.split()) for t in texts]  # negations per review
    edited = [drop_random_words(t, counts[i], seed=i) for i, t in enumerate(texts)]
    control = np.asarray(classify(edited)) != before
    difference = negation.astype(float) - control.astype(float)  # per review: +1, 0 or -1
    se = difference.std(ddof=1) / np.sqrt(len(texts))
    return {"negation": float(negation.mean()), "control": float(control.mean()),
            "beyond_noise": bool(difference.mean() > 2 * se)}  # fmt: skip


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


LEAK_CASES = [
    (["A fine film.", "Dull."], ["Dull.", "Something new."]),
    (["A pretentious mess."], ["a  pretentious MESS", "a pretentious mess?", "pretentious"]),
    (["Ｇｒｅａｔ fun!"], ["great fun", "Great, fun.", "great fun indeed"]),
    (["one", "two"], ["three", "four"]),
    (["same", "same"], ["same", "SAME", "sam e"]),
    (["anything"], []),
]


def _same_list(got, expected) -> bool:
    try:
        return equal([int(v) for v in np.asarray(got).ravel()], expected)
    except (TypeError, ValueError):
        return False


def _same_result(got, expected, n_texts: int) -> bool:
    """The experiment's answer: both flip rates within one review, the same verdict."""
    if not isinstance(got, dict) or set(got) != set(expected):
        return False
    tolerance = 1.5 / max(n_texts, 1)  # a review on the decision boundary may tip either way
    return (
        equal(bool(got["beyond_noise"]), expected["beyond_noise"])
        and abs(float(got["negation"]) - expected["negation"]) <= tolerance
        and abs(float(got["control"]) - expected["control"]) <= tolerance
    )


def exercises(negated_texts=None, classify=None) -> dict[str, Exercise]:
    """Chapter 5's exercises; the experiment (exercise 5) runs `classify` (a list of texts ->
    labels, the notebook's main model) on `negated_texts` (the test reviews with a negation)."""

    def experiment_on_the_notebooks_model() -> dict:
        """The reference answer: `negation_experiment` on the notebook's reviews and model."""
        return negation_experiment(negated_texts, classify)

    n_texts = len(negated_texts) if negated_texts is not None else 0
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
        "find_leaks": Exercise(
            "find_leaks",
            cases=[Case(args) for args in LEAK_CASES],
            solution=find_leaks,
            compare=_same_list,
            hints=[
                "Two texts are the same review if they are equal once case, punctuation, spacing "
                "and full-width letters stop counting. One function of `course_utils.data` "
                "does exactly that to a text.",
                "Apply it to both sides. Comparing each test text with every training text "
                "works, but a set built once from the training side is far faster.",
            ],
        ),
        "negation_experiment": Exercise(
            "negation_experiment",
            kind="value",
            solution=experiment_on_the_notebooks_model,
            compare=lambda got, expected: _same_result(got, expected, n_texts),
            hints=[
                "Classify the reviews three times: as they are, after `drop_negations`, and "
                "after the control edit. A review 'flips' when its label differs from the "
                "unedited one; a flip rate is the mean of those booleans.",
                "The control must delete as many words as the negation edit did: count the "
                "negations of review i with `is_negation` and pass that count, and seed=i, to "
                "`drop_random_words`.",
                "For the verdict, work per review: (flipped by negation) minus (flipped by the "
                "control) is +1, 0 or -1. Its mean is the difference of the two rates; its "
                "standard error is the standard deviation of those values over sqrt(n).",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs, built without a model: a keyword classifier that reads
    negations (so the experiment has an answer) and a few reviews."""

    def classify(texts):
        def label(text: str) -> int:
            words = [w.strip(".,!?").lower() for w in text.split()]
            positive = any(w in ("good", "fun", "great") for w in words)
            return int(positive != any(is_negation(w) for w in words))

        return [label(t) for t in texts]

    texts = ["not good at all", "never fun", "it is not bad", "good, not great", "no plot",
             "isn't great but fun", "not a good film", "nothing good here"] * 3  # fmt: skip
    return {"negated_texts": texts, "classify": classify}
