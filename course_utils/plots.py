"""Figures the chapters share: training curves, confusion matrices, ROC curves.

Every function draws with matplotlib's object API, labels its axes, sets a title and returns
the `Figure` (Jupyter shows it; a script can `fig.savefig(...)`). The backend is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .evaluation import confusion, roc

__all__ = ["plot_confusion_matrix", "plot_history", "plot_roc"]


def _rows(history: Any) -> tuple[list[dict], list[dict]]:
    """(per-step rows, per-evaluation rows) from a `History`, its dict, or a pair of lists."""
    if hasattr(history, "steps"):
        return list(history.steps), list(history.evals)
    if isinstance(history, Mapping):
        return list(history.get("steps", [])), list(history.get("evals", []))
    steps, evals = history
    return list(steps), list(evals)


def plot_history(
    history: Any,
    metrics: Sequence[str] | None = None,
    title: str = "Training history",
    smooth: int = 1,
) -> Figure:
    """Loss curves (train per step, validation per evaluation) and validation metric curves.

    Introduced in chapter 2. `history` is a `course_utils.training.History` (or its
    `to_dict()`). `metrics` defaults to every score recorded at evaluation (accuracy, F1, ...).
    `smooth` > 1 draws a running mean of the training loss over that many steps.
    """
    steps, evals = _rows(history)
    if metrics is None:
        skip = {"step", "epoch", "loss"}
        metrics = [k for k in (evals[0] if evals else {}) if k not in skip]
    ncols = 2 if metrics else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    if steps:
        x = np.array([r["step"] for r in steps])
        y = np.array([r["loss"] for r in steps], dtype=float)
        ax.plot(x, y, color="tab:blue", alpha=0.35 if smooth > 1 else 1.0, label="train")
        if smooth > 1 and len(y) >= smooth:
            kernel = np.ones(smooth) / smooth
            ax.plot(
                x[smooth - 1 :],
                np.convolve(y, kernel, mode="valid"),
                color="tab:blue",
                label=f"train (mean of {smooth})",
            )
    if evals:
        ax.plot(
            [r["step"] for r in evals],
            [r["loss"] for r in evals],
            "o-",
            color="tab:orange",
            label="validation",
        )
    ax.set(xlabel="optimizer step", ylabel="cross-entropy loss", title="Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if metrics:
        ax = axes[0, 1]
        for name in metrics:
            ax.plot([r["step"] for r in evals], [r[name] for r in evals], "o-", label=name)
        ax.set(xlabel="optimizer step", ylabel="score", title="Validation metrics")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    labels: np.ndarray,
    logits_or_probs: np.ndarray,
    class_names: Sequence[str] = ("negative", "positive"),
    normalize: str | None = None,
    title: str = "Confusion matrix",
) -> Figure:
    """A confusion-matrix heat map with the count (or share) written in each cell.

    Introduced in chapter 5. Rows are the true classes, columns the predicted ones;
    `normalize="true"` shows each row as shares (per-class recall on the diagonal). Drawn by
    scikit-learn's `ConfusionMatrixDisplay`.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = confusion(labels, logits_or_probs, normalize=normalize)
    n = matrix.shape[0]
    names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.2 * n + 2))
    display = ConfusionMatrixDisplay(matrix, display_labels=names)
    display.plot(ax=ax, cmap="Blues", values_format=".2f" if normalize else "d", colorbar=True)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.tight_layout()
    return fig


def plot_roc(
    labels: np.ndarray,
    scores: np.ndarray | Mapping[str, np.ndarray],
    title: str = "ROC curve",
) -> Figure:
    """ROC curve(s) of binary classifiers, with the AUC in the legend and the chance diagonal.

    Introduced in chapter 5. `scores` is one model's logits / probabilities, or a dict
    `{model name: logits}` to compare several models on the same labels. Drawn by
    scikit-learn's `RocCurveDisplay`.
    """
    from sklearn.metrics import RocCurveDisplay

    curves = scores if isinstance(scores, Mapping) else {"model": scores}
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, values in curves.items():
        fpr, tpr, auc = roc(labels, values)
        display = RocCurveDisplay(fpr=fpr, tpr=tpr, roc_auc=auc, name=name).plot(ax=ax)
        display.line_.set_label(f"{name} (AUC = {auc:.3f})")  # 3 decimals: close models differ
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance (AUC = 0.5)")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
