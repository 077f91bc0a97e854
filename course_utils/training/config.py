"""What a training run is told (`TrainConfig`), what it reports (`History`), what it saves (`RunState`).

Introduced in chapter 3.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["History", "RunState", "TrainConfig", "greater_is_better"]

# Metrics whose direction is known; any other `metric_for_best` needs `greater_is_better` said.
LOWER_IS_BETTER = {"loss", "perplexity", "error", "wer", "cer"}
HIGHER_IS_BETTER = {
    "accuracy", "f1", "precision", "recall", "auc", "exact_match", "mrr", "spearman", "pearson",
    "rouge1", "rouge2", "rougeL", "bleu", "chrf",
}  # fmt: skip


def greater_is_better(metric: str, explicit: bool | None = None) -> bool:
    """Whether a larger value of `metric` is better: `explicit` if given, else known names.

    Used by `TrainConfig`. `loss`, `perplexity` (and any `*_loss`) are minimised; accuracy,
    F1, AUC, exact match, ROUGE, BLEU... are maximised; any other name must be told.
    """
    if explicit is not None:
        return explicit
    name = metric.removeprefix("eval_")
    if name in LOWER_IS_BETTER or name.endswith("loss"):
        return False
    if name in HIGHER_IS_BETTER or name.startswith(("recall@", "rouge", "f1_", "accuracy_")):
        return True
    raise ValueError(
        f"is a larger {metric!r} better or worse? Say so: TrainConfig(metric_for_best={metric!r}, "
        "greater_is_better=True) for a score, False for an error or a loss"
    )


@dataclass
class TrainConfig:
    """All the settings of one training run (D2L names: `lr`, `num_epochs`, `batch_size`).

    Introduced in chapter 2.

    - `batch_size` is the micro-batch of one forward pass on one process; one optimizer step sees
      `batch_size * grad_accum_steps * processes` examples (the *global* batch).
    - `eval_every` is `"epoch"` or a number of optimizer steps; the evaluation with the best
      `metric_for_best` is remembered (`greater_is_better` is inferred for common metric names and
      must be given for others); with `early_stopping_patience`, training stops after that many
      evaluations without improvement and the best weights are restored.
    - `freeze` is `"none"` (train everything), `"head"` (only the task head) or `"top-k"` (the head
      and the top `freeze_k` transformer layers). `lora` is `None` or a dict with any of `r`,
      `alpha`, `dropout`, `target_modules`; it wins over `freeze`.
    - `device` is `"auto"` (CUDA, then Apple MPS, then CPU), `"cpu"`, `"cuda"` or `"mps"`.
      `mixed_precision="auto"` means bf16 on a CUDA GPU that supports it and fp32 elsewhere
      (bf16 autocast was measured ~24x slower on this course's CPU).
    - `checkpoint_every` (steps) with `output_dir` writes checkpoints; `resume=True` continues
      from the newest one in `output_dir`.
    """

    lr: float = 5e-5
    num_epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 64
    grad_accum_steps: int = 1
    max_grad_norm: float | None = 1.0
    warmup_ratio: float = 0.1
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = 0.01
    device: str = "auto"
    mixed_precision: Literal["no", "bf16", "auto"] = "auto"
    eval_every: str | int = "epoch"
    metric_for_best: str = "loss"
    greater_is_better: bool | None = None
    early_stopping_patience: int | None = None
    checkpoint_every: int | None = None
    output_dir: str | os.PathLike | None = None
    resume: bool = False
    seed: int = 0
    max_steps: int | None = None
    freeze: Literal["none", "head", "top-k"] = "none"
    freeze_k: int = 2
    lora: dict[str, Any] | None = None
    max_length: int | None = 128
    text_column: str = "text"
    label_column: str = "label"
    group_by_length: bool = True
    log_every: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {
            "scheduler": ("linear", "cosine", "constant"),
            "mixed_precision": ("no", "bf16", "auto"),
            "freeze": ("none", "head", "top-k"),
            "device": ("auto", "cpu", "cuda", "mps"),
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed and not (name == "device" and str(value).startswith("cuda:")):
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.eval_every != "epoch" and not (
            isinstance(self.eval_every, int) and self.eval_every > 0
        ):
            raise ValueError("eval_every must be 'epoch' or a positive number of steps")
        for name in ("batch_size", "eval_batch_size", "grad_accum_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.resume and self.output_dir is None:
            raise ValueError("resume=True needs an output_dir to find the checkpoint in")
        if self.checkpoint_every and self.output_dir is None:
            raise ValueError("checkpoint_every needs an output_dir to write checkpoints to")
        greater_is_better(self.metric_for_best, self.greater_is_better)  # fails early if unknown

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger `metric_for_best` is better (see `greater_is_better`)."""
        return greater_is_better(self.metric_for_best, self.greater_is_better)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (paths as strings)."""
        return {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in vars(self).items()}


@dataclass
class History:
    """What happened during `train`: per-step loss and lr, per-evaluation metrics, timing.

    Introduced in chapter 5 (every chapter that trains gets one back from `train`). `steps` and `evals` are lists of dicts (one per logged optimizer
    step and per evaluation); `to_dataframe("train")` / `to_dataframe("eval")` turn them into
    pandas tables, and `course_utils.plots.plot_history` draws them.
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    total_steps: int = 0
    train_time_s: float = 0.0
    train_samples: int = 0
    best_step: int | None = None
    best_metric: float | None = None
    metric_for_best: str = "loss"
    stopped_early: bool = False
    resumed_from_step: int | None = None
    model: Any = field(default=None, repr=False, compare=False)

    @property
    def samples_per_second(self) -> float:
        """Training throughput over the whole run (evaluation time excluded)."""
        return self.train_samples / self.train_time_s if self.train_time_s else 0.0

    @property
    def final_metrics(self) -> dict[str, float]:
        """The metrics of the last evaluation (empty when there was none)."""
        return dict(self.evals[-1]) if self.evals else {}

    @property
    def best_metrics(self) -> dict[str, float]:
        """The metrics of the evaluation whose weights `train` kept (the best one)."""
        for row in self.evals:
            if row["step"] == self.best_step:
                return dict(row)
        return self.final_metrics

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of everything recorded (the model is left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        out["steps"] = [dict(row) for row in self.steps]  # copies, not views of the history
        out["evals"] = [dict(row) for row in self.evals]
        out["samples_per_second"] = self.samples_per_second
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Rebuild a `History` from `to_dict()` output."""
        names = {f.name for f in dataclasses.fields(cls)} - {"model"}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dataframe(self, kind: Literal["train", "eval"] = "train"):
        """A pandas DataFrame of the per-step (`"train"`) or per-evaluation (`"eval"`) rows."""
        import pandas as pd

        return pd.DataFrame(self.steps if kind == "train" else self.evals)

    def save(self, path: str | os.PathLike) -> None:
        """Write `to_dict()` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


@dataclass
class RunState:
    """Where a run is: everything besides weights, optimizer and RNG that a checkpoint must keep.

    Kept by `train`'s checkpoints. `epoch` counts finished epochs, `epoch_step` the optimizer steps
    done in the current one; `bad_evals` counts evaluations without improvement (early stopping).
    """

    step: int = 0
    epoch: int = 0
    epoch_step: int = 0
    bad_evals: int = 0
    finished: bool = False
    history: History = field(default_factory=History)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["history"] = self.history.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        names = {f.name for f in dataclasses.fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in names and k != "history"})
        state.history = History.from_dict(data["history"])
        return state
