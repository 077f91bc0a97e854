"""The figures of `course_utils.plots`: they return a Figure with titles and labelled axes."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from course_utils.plots import plot_confusion_matrix, plot_history, plot_roc
from course_utils.training import History

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_backend_is_not_forced():
    import course_utils.plots  # noqa: F401

    assert matplotlib.get_backend()  # importing plots does not call matplotlib.use


def test_plot_history():
    history = History(
        steps=[{"step": s, "epoch": s / 10, "loss": 1 / s, "lr": 1e-4} for s in range(1, 21)],
        evals=[
            {"step": s, "epoch": s / 10, "loss": 2 / s, "accuracy": 0.5 + s / 50, "f1": 0.6}
            for s in (10, 20)
        ],
    )
    fig = plot_history(history, smooth=5)
    loss_ax, metric_ax = fig.axes
    assert fig.get_suptitle() == "Training history"
    assert loss_ax.get_title() == "Loss" and loss_ax.get_xlabel() and loss_ax.get_ylabel()
    assert metric_ax.get_title() == "Validation metrics"
    assert {t.get_text() for t in metric_ax.get_legend().get_texts()} == {"accuracy", "f1"}
    assert plot_history(history.to_dict(), metrics=[]).axes[0].get_title() == "Loss"


def test_plot_confusion_matrix():
    labels = np.array([0, 1, 1, 0])
    logits = np.array([[2.0, 0], [0, 1], [1, 0], [1, 0]])
    fig = plot_confusion_matrix(labels, logits, normalize="true")
    ax = fig.axes[0]
    assert ax.get_title() == "Confusion matrix"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert sorted(t.get_text() for t in ax.texts) == ["0.00", "0.50", "0.50", "1.00"]


def test_plot_roc_compares_models():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    fig = plot_roc(labels, {"good": labels + rng.normal(0, 0.5, 50), "random": rng.normal(size=50)})
    ax = fig.axes[0]
    assert ax.get_title() == "ROC curve" and ax.get_xlabel() == "false positive rate"
    assert len(ax.get_legend().get_texts()) == 3
