"""Chapter 10 — FAQ and further reading. Reference solutions and hidden cases."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..exercises import Case, Exercise, equal


# -- Exercise 1: where two learning curves cross -------------------------------------------------
def crossing_sizes(
    sizes: Sequence[int], acc_a: Sequence[float], acc_b: Sequence[float]
) -> list[float]:
    """Sizes where acc_b - acc_a changes sign, interpolated linearly in log2(size).

    Exact zeros between a positive and a negative difference put the crossing at the first
    size where the difference is zero.
    """
    logs = np.log2(np.asarray(sizes, dtype=float))
    diff = np.asarray(acc_b, dtype=float) - np.asarray(acc_a, dtype=float)
    nonzero = [i for i in range(len(diff)) if diff[i] != 0]
    found = []
    for i, j in zip(nonzero, nonzero[1:], strict=False):
        if diff[i] * diff[j] > 0:
            continue  # same sign: no crossing between them
        if j > i + 1:  # zeros in between: the curves meet at the first of those sizes
            found.append(float(sizes[i + 1]))
        else:
            t = diff[i] / (diff[i] - diff[j])
            found.append(float(2 ** (logs[i] + t * (logs[j] - logs[i]))))
    return found


# -- Exercise 2: the Wilson score interval ------------------------------------------------------
def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion: `correct` successes out of `n`."""
    p = correct / n
    denominator = 1 + z**2 / n
    center = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return center - half, center + half


# -- Exercise 3: a point of the probe's learning curve -----------------------------------------
def probe_accuracy(train_x, y_train, test_x, y_test, indices, C: float) -> float:
    """Test accuracy of a logistic regression fitted on the training rows `indices`."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000).fit(train_x[indices], y_train[indices])
    return float((model.predict(test_x) == y_test).mean())


# -- Exercise 4: read the measurement -----------------------------------------------------------
def small_data_winner(probe_mean: float, finetune_mean: float) -> str:
    """The method with the higher mean test accuracy at the smallest fine-tuning size."""
    return "probe" if probe_mean >= finetune_mean else "fine-tuning"


CROSSING_CASES = [
    ([32, 64, 128], [0.60, 0.70, 0.80], [0.70, 0.72, 0.75]),  # b ahead, then behind: one crossing
    ([32, 64, 128, 256], [0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.6, 0.7]),  # never
    ([100, 200, 400, 800], [0.7, 0.7, 0.7, 0.7], [0.6, 0.8, 0.6, 0.8]),  # three crossings
    ([32, 64, 128], [0.6, 0.7, 0.8], [0.7, 0.7, 0.7]),  # touches at 64 and passes: at 64
    ([16, 1024], [0.55, 0.9], [0.75, 0.8]),  # two sizes: interpolate in log2
    ([8, 16, 32, 64], [0.5, 0.6, 0.6, 0.6], [0.5, 0.7, 0.7, 0.5]),  # a zero at the start
]
WILSON_CASES = [(85, 100, 1.96), (0, 10, 1.96), (10, 10, 1.96), (837, 984, 1.96), (1, 2, 1.0)]
PROBE_CASES = [(24, 0, 1.0), (48, 1, 10.0), (96, 2, 0.1)]


def _same_floats(got, expected) -> bool:
    try:
        return equal([float(v) for v in got], list(expected), rel_tol=1e-6, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def exercises(
    train_x: np.ndarray,
    y_train: np.ndarray,
    test_x: np.ndarray,
    y_test: np.ndarray,
    draw_indices: Callable[[int, int], np.ndarray],
    probe_mean: float,
    finetune_mean: float,
) -> dict[str, Exercise]:
    """Chapter 10's exercises, built from the notebook's probe features and its measurements."""
    probe_cases = [
        Case((train_x, y_train, test_x, y_test, draw_indices(n, seed), C),
             label=f"(train_x, y_train, test_x, y_test, draw_indices({n}, {seed}), C={C})")
        for n, seed, C in PROBE_CASES
    ]  # fmt: skip
    winner = small_data_winner(probe_mean, finetune_mean)
    return {
        "crossing_sizes": Exercise(
            "crossing_sizes",
            cases=[Case(args) for args in CROSSING_CASES],
            solution=crossing_sizes,
            compare=_same_floats,
            hints=[
                "Compute the differences d = acc_b - acc_a; a crossing lies between two "
                "consecutive sizes whose differences have opposite signs.",
                "Between sizes s0 and s1 with differences d0 and d1, the difference is zero at "
                "the fraction t = d0 / (d0 - d1) of the way, measured in log2(size).",
                "Convert back with 2 ** (log2(s0) + t * (log2(s1) - log2(s0))). Skip exact zeros "
                "when you look for sign changes, and report the first zero's size instead.",
            ],
        ),
        "wilson_interval": Exercise(
            "wilson_interval",
            cases=[Case(args) for args in WILSON_CASES],
            solution=wilson_interval,
            compare=_same_floats,
            hints=[
                "Start from p = correct / n. The interval's centre is not p but "
                "(p + z²/2n) / (1 + z²/n).",
                "Its half-width is z times a square root, divided by the same (1 + z²/n); under "
                "the root, the binomial variance p(1 − p)/n gets a small correction term that "
                "depends only on z and n (look up the Wilson score interval).",
                "Unlike p ± z·sqrt(p(1 − p)/n), it stays inside [0, 1] and is not empty at p = 0 "
                "or p = 1: check your result on (0, 10).",
            ],
        ),
        "probe_accuracy": Exercise(
            "probe_accuracy",
            cases=probe_cases,
            solution=probe_accuracy,
            compare=lambda got, expected: equal(float(got), expected, rel_tol=0, abs_tol=1e-3),
            hints=[
                "Select the rows: train_x[indices] and y_train[indices].",
                "Fit sklearn's LogisticRegression(C=C, max_iter=2000) on them.",
                "Accuracy is the mean of (predictions == y_test) over the test vectors.",
            ],
        ),
        "small_data_winner": Exercise(
            "small_data_winner",
            kind="value",
            cases=[Case(expected=winner)],
            solution=lambda: small_data_winner(probe_mean, finetune_mean),
            hints=[
                "Look at the learning-curve table of 10.1 (or the table of 10.2) at the smallest "
                "size of FT_SIZES.",
                "Compare the mean test accuracy of the probe and of full fine-tuning at that size; "
                "then read 10.2's printed noise before you call either a winner.",
            ],
        ),
    }


def test_context() -> dict:
    """Small synthetic stand-ins for the notebook's features and measurements."""
    rng = np.random.default_rng(0)
    n_train, n_test, dim = 200, 60, 8
    direction = rng.normal(size=dim)
    train_x, test_x = rng.normal(size=(n_train, dim)), rng.normal(size=(n_test, dim))
    y_train = (train_x @ direction > 0).astype(int)
    y_test = (test_x @ direction > 0).astype(int)

    def draw_indices(n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).permutation(n_train)[:n]

    return {"train_x": train_x, "y_train": y_train, "test_x": test_x, "y_test": y_test,
            "draw_indices": draw_indices, "probe_mean": 0.74, "finetune_mean": 0.61}  # fmt: skip
