"""Chapter 4 — The mathematics: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exercises import Case, Exercise
from ..mathutils import SGD, Quadratic, run_optimizer, softmax


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
BOWL = Quadratic.ill_conditioned()  # the tilted bowl of section 4.5
START = np.array([-4.0, 3.0])
STEPS, TARGET = 50, 0.01


def learning_rate() -> float:
    """A learning rate just below 2 / (largest curvature) = 2 / 20: fast and still stable."""
    return 0.09


def final_loss(lr: float) -> float:
    """The bowl's loss after ``STEPS`` gradient-descent steps from ``START`` (inf if it diverged)."""
    path = run_optimizer(BOWL.grad, START, SGD(lr), STEPS)
    return float(BOWL.loss(path[-1])) if np.all(np.isfinite(path[-1])) else float("inf")


def reaches_target(got: Any, expected: Any) -> bool:
    """The check for exercise 3: gradient descent with ``got`` reaches the target loss."""
    if callable(got):  # the reference solution itself (as the tests pass it)
        got = got()
    try:
        lr = float(got)
    except (TypeError, ValueError):
        return False
    return lr > 0 and final_loss(lr) < TARGET


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
                "Try a few values with `bowl.loss(run_optimizer(bowl.grad, START, SGD(lr), 50)[-1])`.",
                "Gradient descent diverges when lr > 2 / (largest eigenvalue of bowl.H); "
                "`np.linalg.eigvalsh(bowl.H)` gives the eigenvalues.",
                "The flat direction (eigenvalue 1) shrinks by (1 - lr) per step: you want lr as large "
                "as stability allows, a little below the limit.",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs (nothing)."""
    return {}
