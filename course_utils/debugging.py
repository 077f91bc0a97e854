"""Debugging a fine-tuning run by measurement, and recording what makes it reproducible.

Introduced in chapter 8. A training run that "works" can still be broken; these tools measure
what the loss curve does not show:

- `layer_group`: which layer a parameter belongs to (`embeddings`, `layer 3`, `pooler`, `head`);
- `GradNormRecorder`: the gradient norm of every layer at every optimizer step, read by hooks
  during backward (a `train` callback closes each step's row);
- `snapshot` and `parameter_change`: how far each layer's weights moved during training;
- `NonFiniteWatch`, `first_nonfinite_module` and `nonfinite_parameters`: where a NaN or an
  infinity first appears;
- `run_record`: what to store next to a run so that it can be repeated (versions, device,
  threads, seeds, settings, data fingerprints, the code's commit).
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "GradNormRecorder",
    "NonFiniteWatch",
    "first_nonfinite_module",
    "layer_group",
    "nonfinite_parameters",
    "parameter_change",
    "run_record",
    "snapshot",
]

_LAYER = re.compile(r"\.layers?\.(\d+)\.")
_HEADS = ("classifier", "score", "lm_head", "qa_outputs")


def layer_group(name: str) -> str:
    """The layer a parameter belongs to, from its name (chapter 8).

    `bert.embeddings.word_embeddings.weight` -> `embeddings`, `bert.encoder.layer.3.output.dense.weight`
    -> `layer 3`, `bert.pooler.dense.bias` -> `pooler`, `classifier.weight` -> `head`; Llama's
    `model.layers.3...` is `layer 3` too, `model.embed_tokens` is `embeddings`; anything else
    (a final norm) is `other`. Wrappers' prefixes (peft's `base_model.model.`, DDP's `module.`)
    do not matter.
    """
    match = _LAYER.search(name)
    if match:
        return f"layer {int(match.group(1))}"
    parts = name.split(".")
    if any("embed" in part for part in parts):
        return "embeddings"
    if "pooler" in parts:
        return "pooler"
    if any(part in _HEADS for part in parts):
        return "head"
    return "other"


_LAST = {"pooler": 0, "head": 1, "other": 2}


def _group_order(groups) -> list[str]:
    """Layer groups in the order the model applies them: embeddings, layers, pooler, head."""

    def key(group: str) -> tuple:
        if group == "embeddings":
            return (0, 0, "")
        if group.startswith("layer "):
            return (1, int(group.split()[1]), "")
        return (2, _LAST.get(group, 3), group)

    return sorted(set(groups), key=key)


class GradNormRecorder:
    """Per-layer gradient norms at every optimizer step, recorded during backward (chapter 8).

    A post-accumulate-grad hook on every trainable parameter reads the norm of its gradient as
    soon as backward has accumulated it (with gradient accumulation, the last micro-batch's call
    sees the step's full gradient, which is the one kept). Pass the recorder to
    `train(..., callbacks=[recorder])`: called after each optimizer step, it closes that step's
    row. A row holds the L2 norm of each layer group's gradient (the square root of the sum of
    its parameters' squared norms) and `total`, all *before* clipping; a group none of whose
    parameters train is NaN, so a frozen layer shows up as missing, not as zero.
    `to_dataframe()` returns the rows; `remove()` takes the hooks off.
    """

    def __init__(self, model: nn.Module, group: Callable[[str], str] = layer_group) -> None:
        self.group = group
        self.rows: list[dict[str, float]] = []
        self._squares: dict[str, float] = {}
        named = list(model.named_parameters())
        self.groups = _group_order(group(name) for name, _ in named)
        self._handles = [
            p.register_post_accumulate_grad_hook(self._hook(name))
            for name, p in named
            if p.requires_grad
        ]

    def _hook(self, name: str):
        def hook(param: torch.Tensor) -> None:
            self._squares[name] = float(param.grad.detach().float().pow(2).sum())

        return hook

    def __call__(self, step: int, history=None) -> None:
        sums: dict[str, float] = defaultdict(float)
        for name, square in self._squares.items():
            sums[self.group(name)] += square
        row: dict[str, float] = {"step": step}
        for group in self.groups:
            row[group] = math.sqrt(sums[group]) if group in sums else math.nan
        row["total"] = math.sqrt(sum(sums.values()))
        self.rows.append(row)
        self._squares.clear()

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("step") if self.rows else pd.DataFrame()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter (on the CPU), to compare with after training."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()}


def parameter_change(
    before: Mapping[str, torch.Tensor],
    model_or_after,
    group: Callable[[str], str] = layer_group,
) -> dict[str, float]:
    """How far each layer's weights moved: ‖θ_after − θ_before‖ / ‖θ_before‖ per layer group.

    Introduced in chapter 8. `model_or_after` is the trained model or a second `snapshot`.
    Fine-tuning moves every layer a little (10⁻³-ish); a layer at exactly 0 did not train.
    """
    after = model_or_after if isinstance(model_or_after, Mapping) else snapshot(model_or_after)
    moved: dict[str, float] = defaultdict(float)
    size: dict[str, float] = defaultdict(float)
    for name, old in before.items():
        new = after[name].to(old.device)
        moved[group(name)] += float((new.float() - old.float()).pow(2).sum())
        size[group(name)] += float(old.float().pow(2).sum())
    return {g: math.sqrt(moved[g]) / max(math.sqrt(size[g]), 1e-30) for g in _group_order(moved)}


def nonfinite_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters holding a NaN or an infinity."""
    return [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]


def _nonfinite_kind(output) -> str | None:
    """'nan' or 'inf' when a floating-point tensor in a module's output holds one, else None."""
    if torch.is_tensor(output):
        tensors = [output]
    elif isinstance(output, Mapping):  # a transformers ModelOutput
        tensors = list(output.values())
    elif isinstance(output, (tuple, list)):
        tensors = list(output)
    else:
        return None
    for tensor in tensors:
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            if torch.isnan(tensor).any():
                return "nan"
            if torch.isinf(tensor).any():
                return "inf"
    return None


class NonFiniteWatch:
    """Forward hooks that catch where a NaN or an infinity first appears (chapter 8).

    Every module's output is checked as the forward pass runs. Submodules finish before the
    modules that contain them, so the first module recorded is the innermost culprit; everything
    computed after it inherits the NaN. Pass the watch to `train(..., callbacks=[watch])` to
    know the optimizer step too. `first` is `None` or a dict with `step` (the optimizer step
    whose forward pass produced it), `module` and `value` (`"nan"` or `"inf"`).
    """

    def __init__(self, model: nn.Module) -> None:
        self.first: dict[str, Any] | None = None
        self.steps_done = 0
        self._handles = [
            m.register_forward_hook(self._hook(n)) for n, m in model.named_modules() if n
        ]

    def _hook(self, name: str):
        def hook(module, inputs, output) -> None:
            if self.first is None and (kind := _nonfinite_kind(output)):
                self.first = {"step": self.steps_done + 1, "module": name, "value": kind}

        return hook

    def __call__(self, step: int, history=None) -> None:
        self.steps_done = step

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def first_nonfinite_module(model: nn.Module, batch: Mapping[str, torch.Tensor]):
    """The first module of one forward pass on `batch` whose output is not finite (chapter 8).

    Returns `(module name, "nan" or "inf")`, or `None` when every output is finite (see
    `NonFiniteWatch`, which does the same during training).
    """
    watch = NonFiniteWatch(model)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        watch.remove()
    return (watch.first["module"], watch.first["value"]) if watch.first else None


def _git_commit(folder: Path) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()  # fmt: skip
        return {"commit": commit, "course_utils_modified": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "course_utils_modified": None}


def run_record(config: Mapping | None = None, data: Mapping | None = None, **extra) -> dict:
    """What to store with a run so that someone can repeat it (chapter 8).

    Library versions, Python, the machine, device, threads, the deterministic-algorithms flag,
    the code's git commit (and whether `course_utils` has uncommitted changes), the settings
    (`config`: a dict or a `TrainConfig`), and for each dataset in `data` its size and
    `datasets`' fingerprint (a hash of how it was made: the same data gives the same one).
    `extra` items are added as they are.
    """
    import accelerate
    import datasets
    import peft
    import transformers

    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    record: dict[str, Any] = {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "datasets": datasets.__version__,
                     "peft": peft.__version__, "accelerate": accelerate.__version__},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.version.cuda if torch.cuda.is_available() else None,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "code": _git_commit(Path(__file__).resolve().parent),
        "config": dict(config) if config is not None else None,
        "data": {name: {"rows": len(ds), "fingerprint": getattr(ds, "_fingerprint", None)}
                 for name, ds in (data or {}).items()},
    }  # fmt: skip
    record.update(extra)
    return record
