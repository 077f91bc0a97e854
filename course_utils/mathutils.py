"""The mathematics of training in plain NumPy (chapter 4): read this file, it is meant to be read.

- ``softmax`` and ``cross_entropy``: the classifier's output and its loss, numerically stable;
- ``numerical_gradient`` and ``relative_error``: the *gradient check*, i.e. comparing a gradient
  derived by hand with central finite differences;
- ``SGD``, ``Momentum`` and ``Adam``: three optimisers written out as their update rules (the same
  updates as ``torch.optim.SGD``, ``SGD(momentum=...)`` and ``Adam``);
- ``Quadratic`` and ``Rosenbrock``: two-parameter loss surfaces small enough to draw, and
  ``run_optimizer``, which follows an optimiser across one and returns the path.

Everything works on float64 NumPy arrays; nothing here needs a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Adam",
    "Momentum",
    "Quadratic",
    "Rosenbrock",
    "SGD",
    "cross_entropy",
    "numerical_gradient",
    "relative_error",
    "run_optimizer",
    "softmax",
]


# -- the classifier's output and loss --------------------------------------------------------------
def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``; subtracting the max first avoids overflow."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean of ``-log softmax(logits)[label]`` over a batch (rows of ``logits``, integer labels).

    Computed as ``logsumexp(z) - z[label]``, which never takes the log of an underflowed 0.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


# -- gradient checking -----------------------------------------------------------------------------
def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """The gradient of ``f`` at ``x`` by central differences: ``(f(x + eps) - f(x - eps)) / 2eps``.

    One coordinate at a time, on a float64 copy of ``x`` (``x`` itself is not changed). The error
    is about ``eps**2`` (truncation) plus ``1e-16 / eps`` (rounding), so ``eps = 1e-6`` gives
    about 1e-10 in float64 — and nonsense in float32, whose rounding error is 1e-7.
    """
    x = np.array(x, dtype=np.float64)  # a copy
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        f_plus = f(x)
        x[i] = saved - eps
        f_minus = f(x)
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / max(||a||, ||b||)``: 0 for equal arrays, about 1 for unrelated ones.

    Relative to the size of the whole gradient, so coordinates that are nearly 0 do not blow it
    up. In float64 a correct hand-derived gradient agrees with finite differences to ~1e-9.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


# -- optimisers: each one is its update rule ---------------------------------------------------------
class SGD:
    """Plain gradient descent: ``theta <- theta - lr * grad`` (``torch.optim.SGD``)."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return theta - self.lr * grad


class Momentum:
    """Heavy-ball momentum as in ``torch.optim.SGD(momentum=beta)``.

    ``v <- beta * v + grad`` (a running sum of past gradients), then ``theta <- theta - lr * v``:
    directions where the gradient keeps its sign speed up, zig-zags cancel out.
    """

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        self.lr, self.beta = lr, beta
        self.velocity: np.ndarray | None = None

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.velocity = grad if self.velocity is None else self.beta * self.velocity + grad
        return theta - self.lr * self.velocity


class Adam:
    """Adam (Kingma & Ba, 2015), as in ``torch.optim.Adam``.

    ``m`` averages the gradient, ``v`` its square (both corrected for starting at 0); the step is
    ``lr * m / (sqrt(v) + eps)``: about ``lr`` in every coordinate, whatever the gradient's scale.
    """

    def __init__(
        self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m: np.ndarray | float = 0.0
        self.v: np.ndarray | float = 0.0
        self.t = 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def run_optimizer(
    grad_fn: Callable[[np.ndarray], np.ndarray], start, optimizer, steps: int
) -> np.ndarray:
    """Follow ``optimizer`` for ``steps`` steps from ``start``; returns the path, shape ``(steps + 1, d)``.

    Stops early (the rest of the path is ``nan``, which plots leave out) if the parameters blow up.
    """
    theta = np.asarray(start, dtype=np.float64)
    path = np.full((steps + 1, theta.size), np.nan)
    path[0] = theta
    for t in range(1, steps + 1):
        theta = optimizer.step(theta, grad_fn(theta))
        if not np.all(np.isfinite(theta)) or np.abs(theta).max() > 1e6:
            break
        path[t] = theta
    return path


# -- loss surfaces with two parameters ---------------------------------------------------------------
@dataclass(frozen=True)
class Quadratic:
    """``L(theta) = 1/2 (theta - minimum)^T H (theta - minimum)``, H symmetric positive definite.

    Near any minimum every smooth loss looks like this; H's eigenvalues are the curvatures along
    its axes. Gradient descent is stable for ``lr < 2 / largest eigenvalue`` and slow along the
    flattest axis: the ratio of the two (the *condition number*) decides how slow.
    """

    H: np.ndarray
    minimum: np.ndarray

    @classmethod
    def ill_conditioned(cls, curvatures=(1.0, 20.0), angle_deg: float = 30.0) -> Quadratic:
        """A long, narrow valley: curvatures along two axes rotated by ``angle_deg``."""
        a = np.deg2rad(angle_deg)
        rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        H = rotation @ np.diag(curvatures) @ rotation.T
        return cls(H=H, minimum=np.zeros(2))

    def loss(self, theta: np.ndarray) -> np.ndarray:
        """Works on one point ``(2,)`` or a grid ``(..., 2)`` (for contour plots)."""
        d = np.asarray(theta) - self.minimum
        return 0.5 * np.einsum("...i,ij,...j->...", d, self.H, d)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return (np.asarray(theta) - self.minimum) @ self.H


@dataclass(frozen=True)
class Rosenbrock:
    """``L(x, y) = (a - x)^2 + b (y - x^2)^2``: a curved, flat-bottomed valley, minimum at ``(a, a^2)``."""

    a: float = 1.0
    b: float = 100.0

    @property
    def minimum(self) -> np.ndarray:
        return np.array([self.a, self.a**2])

    def loss(self, theta: np.ndarray) -> np.ndarray:
        x, y = np.asarray(theta)[..., 0], np.asarray(theta)[..., 1]
        return (self.a - x) ** 2 + self.b * (y - x**2) ** 2

    def grad(self, theta: np.ndarray) -> np.ndarray:
        x, y = theta
        return np.array([-2 * (self.a - x) - 4 * self.b * x * (y - x**2), 2 * self.b * (y - x**2)])
