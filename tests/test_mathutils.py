"""course_utils.mathutils: the loss, the gradient check, the optimisers and the loss surfaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.mathutils import (
    SGD,
    Adam,
    Momentum,
    Quadratic,
    Rosenbrock,
    cross_entropy,
    numerical_gradient,
    relative_error,
    run_optimizer,
    softmax,
)

RNG = np.random.default_rng(0)


def test_softmax_is_a_distribution_and_stable():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]))
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1)
    assert np.allclose(p[0], [1, 0, 0])
    assert np.allclose(p[1], torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0).numpy())


def test_cross_entropy_matches_torch_and_survives_huge_logits():
    logits, labels = RNG.normal(size=(7, 4)) * 5, RNG.integers(0, 4, size=7)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels))
    assert cross_entropy(logits, labels) == pytest.approx(expected.item(), rel=1e-12)
    assert cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1])) == pytest.approx(2000.0)


def test_numerical_gradient_of_known_functions():
    x = RNG.normal(size=(3, 2))
    assert np.allclose(numerical_gradient(lambda v: float(np.sum(v**3)), x), 3 * x**2, atol=1e-8)
    before = x.copy()
    numerical_gradient(lambda v: float(np.sum(np.sin(v))), x)
    assert np.array_equal(x, before)  # the input is not modified


def test_softmax_cross_entropy_gradient_is_p_minus_y():
    logits, labels = RNG.normal(size=(5, 3)), RNG.integers(0, 3, size=5)
    analytic = (softmax(logits) - np.eye(3)[labels]) / 5
    numeric = numerical_gradient(lambda z: cross_entropy(z, labels), logits)
    assert relative_error(analytic, numeric) < 1e-6


def test_relative_error():
    a = np.array([1.0, -2.0, 3.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, -a) == pytest.approx(2.0)
    assert relative_error(a, a * (1 + 1e-9)) < 1e-8


@pytest.mark.parametrize(
    ("ours", "torch_class", "kwargs"),
    [
        (lambda: SGD(1e-3), torch.optim.SGD, {"lr": 1e-3}),
        (lambda: Momentum(1e-3, 0.9), torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
        (lambda: Adam(0.1), torch.optim.Adam, {"lr": 0.1}),
    ],
)
def test_optimisers_follow_torch(ours, torch_class, kwargs):
    surface, start = Rosenbrock(), np.array([-1.2, 1.0])
    steps = 30
    path = run_optimizer(surface.grad, start, ours(), steps)
    theta = torch.tensor(start, requires_grad=True)
    optimizer = torch_class([theta], **kwargs)
    for _ in range(steps):
        optimizer.zero_grad()
        x, y = theta
        ((1 - x) ** 2 + 100 * (y - x**2) ** 2).backward()
        optimizer.step()
    assert path.shape == (steps + 1, 2) and np.isfinite(path).all()
    assert np.allclose(path[-1], theta.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_run_optimizer_stops_when_it_diverges():
    bowl = Quadratic.ill_conditioned(curvatures=(1.0, 20.0))
    path = run_optimizer(bowl.grad, [1.0, 1.0], SGD(0.2), 200)  # above 2 / 20: diverges
    assert np.isnan(path[-1]).all() and np.isfinite(path[0]).all()
    good = run_optimizer(bowl.grad, [1.0, 1.0], SGD(0.09), 200)
    assert bowl.loss(good[-1]) < 1e-12


def test_surfaces_gradients_and_minima():
    bowl = Quadratic.ill_conditioned(curvatures=(2.0, 30.0), angle_deg=40)
    assert np.allclose(np.linalg.eigvalsh(bowl.H), [2.0, 30.0])
    for surface in (bowl, Rosenbrock()):
        point = RNG.normal(size=2)
        numeric = numerical_gradient(lambda v, s=surface: float(s.loss(v)), point)
        assert relative_error(surface.grad(point), numeric) < 1e-6
        assert surface.loss(surface.minimum) == pytest.approx(0.0)
        assert np.allclose(surface.grad(surface.minimum), 0.0)
    grid = np.zeros((4, 5, 2))
    assert bowl.loss(grid).shape == (4, 5)  # works on a grid, for contour plots
