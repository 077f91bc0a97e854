"""The figures of `course_utils.plots`: what they draw (the data of each line, cell and label),
not only that a Figure comes back."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.plots import plot_confusion_matrix, plot_history, plot_roc
from course_utils.training import History

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {line.get_label(): (line.get_xdata(), line.get_ydata()) for line in ax.get_lines()}


def _history() -> History:
    return History(
        steps=[{"step": s, "epoch": s / 10, "loss": 1 / s, "lr": 1e-4} for s in range(1, 21)],
        evals=[
            {"step": s, "epoch": s / 10, "loss": 2 / s, "accuracy": 0.5 + s / 50, "f1": 0.6}
            for s in (10, 20)
        ],
    )


def test_plot_history_draws_the_losses_and_metrics():
    fig = plot_history(_history(), smooth=5)
    loss_ax, metric_ax = fig.axes
    assert fig.get_suptitle() == "Training history"
    assert (loss_ax.get_title(), loss_ax.get_xlabel()) == ("Loss", "optimizer step")
    lines = _lines(loss_ax)
    steps = np.arange(1, 21)
    np.testing.assert_allclose(lines["train"][0], steps)
    np.testing.assert_allclose(lines["train"][1], 1 / steps)
    x, y = lines["train (mean of 5)"]  # running mean over 5 steps, from step 5 on
    np.testing.assert_allclose(x, steps[4:])
    np.testing.assert_allclose(y, [np.mean(1 / steps[i - 4 : i + 1]) for i in range(4, 20)])
    np.testing.assert_allclose(lines["validation"][1], [0.2, 0.1])
    metrics = _lines(metric_ax)
    assert metric_ax.get_title() == "Validation metrics" and set(metrics) == {"accuracy", "f1"}
    np.testing.assert_allclose(metrics["accuracy"][0], [10, 20])
    np.testing.assert_allclose(metrics["accuracy"][1], [0.7, 0.9])
    np.testing.assert_allclose(metrics["f1"][1], [0.6, 0.6])


def test_plot_history_options():
    history = _history()
    only_loss = plot_history(history.to_dict(), metrics=[])
    assert len(only_loss.axes) == 1 and set(_lines(only_loss.axes[0])) == {"train", "validation"}
    chosen = plot_history(history, metrics=["f1"], title="Run 3")
    assert set(_lines(chosen.axes[1])) == {"f1"} and chosen.get_suptitle() == "Run 3"
    no_smoothing = plot_history(history)
    assert "train (mean of 1)" not in _lines(no_smoothing.axes[0])


def test_plot_confusion_matrix_cells():
    labels = np.array([0, 1, 1, 0, 0])
    logits = np.array([[2.0, 0], [0, 1], [1, 0], [1, 0], [0, 3]])  # predicted: 0, 1, 0, 0, 1
    counts = plot_confusion_matrix(labels, logits).axes[0]
    np.testing.assert_array_equal(counts.images[0].get_array(), [[2, 1], [1, 1]])
    cells = {(t.get_position(), t.get_text()) for t in counts.texts}
    assert cells == {((0, 0), "2"), ((1, 0), "1"), ((0, 1), "1"), ((1, 1), "1")}
    assert [t.get_text() for t in counts.get_xticklabels()] == ["negative", "positive"]
    assert (counts.get_xlabel(), counts.get_ylabel()) == ("predicted class", "true class")
    shares = plot_confusion_matrix(labels, logits, normalize="true").axes[0]
    np.testing.assert_allclose(shares.images[0].get_array(), [[2 / 3, 1 / 3], [0.5, 0.5]])
    assert sorted(t.get_text() for t in shares.texts) == ["0.33", "0.50", "0.50", "0.67"]


def test_plot_roc_draws_each_model_and_the_chance_line():
    labels = np.array([0, 0, 1, 1])
    perfect = np.array([-2.0, -1.0, 1.0, 2.0])  # logits
    ax = plot_roc(labels, {"perfect": perfect, "inverted": -perfect}).axes[0]
    lines = _lines(ax)
    assert set(lines) == {
        "perfect (AUC = 1.000)", "inverted (AUC = 0.000)", "chance (AUC = 0.5)",
    }  # fmt: skip
    fpr, tpr = lines["perfect (AUC = 1.000)"]
    assert tpr[fpr == 0].max() == 1.0  # reaches the top-left corner
    np.testing.assert_allclose(lines["chance (AUC = 0.5)"][1], [0, 1])
    assert ax.get_title() == "ROC curve" and ax.get_xlabel() == "false positive rate"
