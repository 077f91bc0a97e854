"""Chapter 4 — The mathematics: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exercises import Case, Exercise
from ..mathutils import SGD, Adam, Quadratic, run_optimizer, softmax


# -- Exercise 1: the softmax-cross-entropy gradient ---------------------------------------------
def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of a batch and its gradient with respect to the logits, (P - Y) / N."""
    n, k = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)  # no overflow in exp
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), labels].mean()
    grad = (softmax(logits) - np.eye(k)[labels]) / n  # p - y, averaged over the batch
    return float(loss), grad


# -- Exercise 2: one backpropagation step ---------------------------------------------------------
def train_step(params: dict, X: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, dict]:
    """Forward, backward and one gradient-descent step of the two-layer ReLU network."""
    # forward
    A = X @ params["W1"] + params["b1"]
    h = np.maximum(A, 0)  # ReLU
    Z = h @ params["W2"] + params["b2"]
    loss, G_Z = softmax_cross_entropy(Z, y)
    # backward: the chain rule, from the loss to the first layer
    grads = {"W2": h.T @ G_Z, "b2": G_Z.sum(axis=0)}
    G_h = G_Z @ params["W2"].T
    G_A = G_h * (A > 0)  # ReLU'(a) = 1 where a > 0, else 0
    grads["W1"] = X.T @ G_A
    grads["b1"] = G_A.sum(axis=0)
    # update: a new dict, params unchanged
    new_params = {name: params[name] - lr * grads[name] for name in params}
    return loss, new_params


# -- Exercise 3: pick a learning rate -------------------------------------------------------------
# A valley the chapter does not show: curvatures 0.5 and 40, tilted by -50 degrees.
VALLEY = Quadratic.ill_conditioned(curvatures=(0.5, 40.0), angle_deg=-50.0)
START = np.array([3.0, 4.0])
STEPS, TARGET = 200, 1e-4


def learning_rate() -> float:
    """Just below the stability limit 2 / (largest curvature) = 2 / 40 = 0.05: the flat
    direction (curvature 0.5) then shrinks as fast as stability allows."""
    return 0.048


def final_loss(lr: float) -> float:
    """The valley's loss after ``STEPS`` gradient-descent steps from ``START`` (inf if it diverged)."""
    path = run_optimizer(VALLEY.grad, START, SGD(lr), STEPS)
    return float(VALLEY.loss(path[-1])) if np.all(np.isfinite(path[-1])) else float("inf")


def reaches_target(got: Any, expected: Any) -> bool:
    """The check for exercise 3: gradient descent with ``got`` reaches the target loss."""
    if callable(got):  # the reference solution itself (as the tests pass it)
        got = got()
    try:
        lr = float(got)
    except (TypeError, ValueError):
        return False
    return lr > 0 and final_loss(lr) < TARGET


# -- Exercise 4 (an experiment): an Adam rebuilt at every step ------------------------------------
BOWL = Quadratic.ill_conditioned()  # the tilted bowl of section 4.5
BOWL_START = np.array([-4.0, 3.0])
REBUILT_LR, REBUILT_STEPS = 0.05, 20
EXPLANATIONS = {
    "a": "the gradient shrinks near the minimum, so the steps shrink too",
    "b": "a fresh Adam's first step is lr * g / |g| = lr * sign(g): every coordinate moves by lr",
    "c": "rebuilding Adam changes nothing: its state is recomputed from the gradient anyway",
}


def rebuilt_adam_experiment() -> tuple[float, str]:
    """Run Adam(0.05) rebuilt before each of 20 steps on the bowl from (-4, 3); return the mean
    absolute change of a coordinate per step, and the letter of the explanation."""
    theta, path = BOWL_START.copy(), [BOWL_START.copy()]
    for _ in range(REBUILT_STEPS):
        theta = Adam(REBUILT_LR).step(theta, BOWL.grad(theta))  # a new optimiser every step
        path.append(theta)
    mean_step = float(np.abs(np.diff(np.array(path), axis=0)).mean())
    return mean_step, "b"


def experiment_matches(got: Any, expected: Any) -> bool:
    """The measured step within 1% of the reference run's, and the right explanation."""
    if callable(got):
        got = got()
    try:
        value, letter = got
        return bool(np.isclose(float(value), expected[0], rtol=1e-2)) and (
            str(letter).strip().lower() == expected[1]
        )
    except (TypeError, ValueError):
        return False


# -- the exercises ---------------------------------------------------------------------------------
def arrays_close(got: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Equality up to float rounding, for floats, arrays and tuples / dicts of them."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(arrays_close(got[k], expected[k], rtol, atol) for k in expected)
        )
    if isinstance(expected, tuple):
        return (isinstance(got, (tuple, list)) and len(got) == len(expected)
                and all(arrays_close(g, e, rtol, atol) for g, e in zip(got, expected, strict=True)))  # fmt: skip
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    expected_array = np.asarray(expected, dtype=np.float64)
    return got_array.shape == expected_array.shape and bool(
        np.allclose(got_array, expected_array, rtol=rtol, atol=atol)
    )


def _logit_cases() -> list[Case]:
    rng = np.random.default_rng(4)
    cases = []
    for n, k, scale in [(1, 2, 1.0), (4, 3, 1.0), (8, 5, 3.0), (16, 10, 0.1)]:
        logits, labels = rng.normal(size=(n, k)) * scale, rng.integers(0, k, size=n)
        _read_only(logits, labels)
        cases.append(
            Case((logits, labels), label=f"(logits of shape {(n, k)}, labels {labels.tolist()})")
        )
    huge = np.array([[1000.0, 0.0, -1000.0], [5.0, 1005.0, 1000.0]])  # exp(1000) overflows
    _read_only(huge)
    cases.append(
        Case(
            (huge, np.array([2, 1])),
            label="(logits [[1000, 0, -1000], [5, 1005, 1000]], labels [2, 1])",
        )
    )
    return cases


def _network_cases() -> list[Case]:
    rng = np.random.default_rng(44)
    cases = []
    for n, d, h, k, lr in [(4, 3, 5, 2, 0.1), (10, 6, 8, 3, 0.5), (32, 20, 16, 4, 0.01)]:
        params = {
            "W1": rng.normal(size=(d, h)) / np.sqrt(d),
            "b1": rng.normal(size=h) * 0.5,  # some hidden units start inactive: tests ReLU'
            "W2": rng.normal(size=(h, k)) / np.sqrt(h),
            "b2": rng.normal(size=k) * 0.1,
        }
        X, y = rng.normal(size=(n, d)), rng.integers(0, k, size=n)
        _read_only(X, y, *params.values())
        label = f"(params for a {d} → {h} → {k} network, X of shape {(n, d)}, y, lr={lr})"
        cases.append(Case((params, X, y, lr), label=label))
    return cases


def _read_only(*arrays: np.ndarray) -> None:
    """Hidden inputs cannot be changed in place (a learner's ``+=`` on them raises at once)."""
    for array in arrays:
        array.flags.writeable = False


def exercises() -> dict[str, Exercise]:
    """Chapter 4's exercises (they need nothing from the notebook)."""
    return {
        "softmax_cross_entropy": Exercise(
            "softmax_cross_entropy",
            cases=_logit_cases(),
            solution=softmax_cross_entropy,
            compare=arrays_close,
            hints=[
                "Subtract each row's maximum from the logits first: softmax and the loss do not change, "
                "and exp() can no longer overflow.",
                "Loss: log-probabilities are `shifted - log(sum(exp(shifted)))` per row; pick the "
                "label's column with `log_probs[np.arange(N), labels]` and average its negative.",
                "Gradient: `softmax(logits) - np.eye(K)[labels]` is p − y; divide by N because the "
                "loss is a mean. Return `(float(loss), grad)`.",
            ],
        ),
        "train_step": Exercise(
            "train_step",
            cases=_network_cases(),
            solution=train_step,
            compare=arrays_close,
            hints=[
                "Copy the forward pass of 4.4 and replace np.tanh by np.maximum(A, 0); keep A, h and Z.",
                "Backward as in 4.4, but the activation's derivative is `(A > 0)` instead of `1 - h**2`; "
                "G_Z is the gradient of exercise 1.",
                "Return `loss, {name: params[name] - lr * grads[name] for name in params}`, with the "
                "loss computed before the update.",
            ],
        ),
        "learning_rate": Exercise(
            "learning_rate",
            kind="value",
            cases=[
                Case(
                    expected=f"a learning rate with which {STEPS} steps reach a loss below {TARGET}"
                )
            ],
            solution=learning_rate,
            compare=reaches_target,
            hints=[
                "Try a few values with `valley.loss(run_optimizer(valley.grad, VALLEY_START, "
                "SGD(lr), 200)[-1])`.",
                "Gradient descent diverges when lr > 2 / (largest eigenvalue of valley.H); "
                "`np.linalg.eigvalsh(valley.H)` gives the eigenvalues.",
                "The flat direction shrinks by (1 - lr * smallest eigenvalue) per step: you want lr "
                "as large as stability allows.",
            ],
        ),
        "rebuilt_adam": Exercise(
            "rebuilt_adam",
            kind="value",
            cases=[Case(expected=rebuilt_adam_experiment())],
            solution=rebuilt_adam_experiment,
            compare=experiment_matches,
            hints=[
                "Start from `theta = START.copy()` and repeat 20 times: "
                "`theta = Adam(0.05).step(theta, bowl.grad(theta))`, keeping every theta.",
                "`np.abs(np.diff(np.array(path), axis=0)).mean()` is the mean change of a coordinate "
                "per step. Compare it with the learning rate.",
                "Work out a fresh Adam's first step from its formulas (m, v start at 0, then the bias "
                "correction): what is m_hat / sqrt(v_hat) for one gradient g?",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs (nothing)."""
    return {}
