"""Tools of chapter 8: TensorBoard logs for the course loop, profiler tables by category, FLOPs.

Introduced in chapter 8 ("Tools and resources"). By concern:

- TensorBoard: `TensorBoardLogger`, a `course_utils.training.train` callback that writes the
  run's `History` with `torch.utils.tensorboard.SummaryWriter` under the tag names Trainer's
  `report_to="tensorboard"` uses (`train/loss`, `train/learning_rate`, `eval/<metric>`), and
  `read_scalars`, which reads event files back into a table, offline;
- profiling: `op_category` sorts the operators of a `torch.profiler` run of a BERT-style model
  into what they compute (MLP matmuls, attention, dropout, optimizer...), `time_by_category` and
  `region_times` add up their time;
- FLOPs: `training_flops` counts the FLOPs of one forward + backward pass with
  `torch.utils.flop_counter.FlopCounterMode`, and `matmul_peak_flops` measures what this
  machine's matrix multiplication reaches (the denominator of model-FLOPs utilisation, MFU).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

__all__ = [
    "TensorBoardLogger",
    "matmul_peak_flops",
    "op_category",
    "read_scalars",
    "region_times",
    "time_by_category",
    "training_flops",
]


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------


class TensorBoardLogger:
    """A `train(..., callbacks=[logger])` callback writing the `History` to TensorBoard files.

    Introduced in chapter 8. The course loop calls it after every optimizer step; it writes the
    rows the loop added since the last call: `train/loss` and `train/learning_rate` for each
    logged step, `eval/<metric>` for each evaluation (the names Trainer's TensorBoard callback
    uses, so both runs plot alike). `config` (a dict) is stored as text. Call `close()` when
    training ends: event files are flushed then (and every `flush_secs` seconds before).
    """

    def __init__(self, log_dir: str | os.PathLike, config: Mapping | None = None,
                 flush_secs: int = 30) -> None:  # fmt: skip
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)
        if config is not None:
            self.writer.add_text("config", json.dumps(dict(config), indent=1, default=str))
        self._steps = 0
        self._evals = 0

    def __call__(self, step: int, history) -> None:
        for row in history.steps[self._steps :]:
            self.writer.add_scalar("train/loss", row["loss"], row["step"])
            self.writer.add_scalar("train/learning_rate", row["lr"], row["step"])
        for row in history.evals[self._evals :]:
            for name, value in row.items():
                if name not in ("step", "epoch"):
                    self.writer.add_scalar(f"eval/{name}", value, row["step"])
        self._steps, self._evals = len(history.steps), len(history.evals)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()


def read_scalars(log_dir: str | os.PathLike):
    """Every scalar in the TensorBoard event files under `log_dir`, as a pandas DataFrame.

    Introduced in chapter 8. Columns: `run` (the folder of the event file, relative to
    `log_dir`), `tag`, `step`, `value`, `wall_time`. Reads with TensorBoard's own
    `EventAccumulator`, which needs no server and no network. Raises `FileNotFoundError` when
    there is no event file, so a wrong folder is not mistaken for an empty run.
    """
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = Path(log_dir)
    folders = sorted({p.parent for p in root.rglob("events.out.tfevents.*")})
    if not folders:
        raise FileNotFoundError(
            f"no TensorBoard event files (events.out.tfevents.*) under {root}: is this the "
            "folder the run wrote to (SummaryWriter's log_dir / TENSORBOARD_LOGGING_DIR)?"
        )
    rows = []
    for folder in folders:
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        run = folder.relative_to(root).as_posix()
        for tag in events.Tags()["scalars"]:
            for event in events.Scalars(tag):
                rows.append({"run": run, "tag": tag, "step": event.step, "value": event.value,
                             "wall_time": event.wall_time})  # fmt: skip
    return pd.DataFrame(rows, columns=["run", "tag", "step", "value", "wall_time"])


# --------------------------------------------------------------------------------------------
# Profiling
# --------------------------------------------------------------------------------------------

_MATMULS = {"aten::mm", "aten::addmm", "aten::matmul", "aten::linear"}
_BATCHED_MATMULS = {"aten::bmm", "aten::baddbmm"}


def _dims(shapes) -> set[int]:
    found: set[int] = set()
    for shape in shapes or []:
        if isinstance(shape, (list, tuple)):
            found |= {d for d in shape if isinstance(d, int)}
    return found


def op_category(name: str, input_shapes=None, intermediate_size: int | None = None) -> str:
    """What a profiler operator of a BERT-style fine-tuning step computes (chapter 8).

    `name` is the operator (`aten::addmm`...), `input_shapes` its inputs' shapes (profile with
    `record_shapes=True`). A matrix product one of whose inputs has the feed-forward width
    (`intermediate_size`, 1,536 for MiniLM) belongs to the MLP; other 2-D matrix products are
    the attention projections (and the pooler and head, a small share); batched products and
    softmax are attention itself. Backward operators count with their forward ones, since their
    shapes are the same. One caveat: if the number of tokens in a batch equals
    `intermediate_size`, a projection cannot be told from the MLP by shape.
    """
    lower = name.lower()
    if name in _MATMULS:
        if intermediate_size is not None and intermediate_size in _dims(input_shapes):
            return "MLP matmuls"
        return "attention projections (Q, K, V, output) + pooler/head"
    if name in _BATCHED_MATMULS or "softmax" in lower or "scaled_dot_product" in lower:
        return "attention scores, softmax, weighted sum"
    if "bernoulli" in lower or "dropout" in lower:
        return "dropout (random masks)"
    if "gelu" in lower:
        return "GELU"
    if "layer_norm" in lower:
        return "layer norm"
    if "adam" in lower or "_foreach_" in lower:
        return "optimizer (AdamW)"
    if "embedding" in lower:
        return "embeddings"
    return "other (copies, additions, masks, loss...)"


def time_by_category(
    events: Iterable, intermediate_size: int | None = None, attribute: str = "self_cpu_time_total"
) -> dict[str, float]:
    """Self time in seconds per `op_category`, from `prof.key_averages(group_by_input_shape=True)`.

    Self time counts each microsecond once (an operator's own work, not the operators it
    calls), so the categories add up to the profiled total. User annotations
    (`record_function` regions) and `ProfilerStep` markers are skipped. On a GPU pass
    `attribute="self_device_time_total"` (the kernels' time, not the CPU's launch time).
    """
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if "::" not in event.key:
            continue  # a record_function region or a profiler marker, not an operator
        category = op_category(event.key, getattr(event, "input_shapes", None), intermediate_size)
        totals[category] += getattr(event, attribute) / 1e6
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def region_times(events: Iterable, regions: Iterable[str]) -> dict[str, float]:
    """Total CPU time in seconds of each `record_function(name)` region, in the order given."""
    wanted = list(regions)
    found = {event.key: event.cpu_time_total / 1e6 for event in events if event.key in wanted}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise KeyError(f"no profiled region named {missing}: wrap that code in "
                       "torch.profiler.record_function(name)")  # fmt: skip
    return {name: found[name] for name in wanted}


# --------------------------------------------------------------------------------------------
# FLOPs and the machine's peak
# --------------------------------------------------------------------------------------------


def training_flops(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict:
    """FLOPs of one forward + backward pass on `batch`, counted by `FlopCounterMode` (chapter 8).

    Returns `{"total": ..., "by_operator": {op: flops}}`. The counter counts every matrix
    product (attention's scores included) at 2 FLOPs per multiply-add; element-wise work and the
    optimizer are not counted, which is also what the 6 x parameters x tokens rule leaves out.
    The gradients are cleared afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)
    counts = counter.get_flop_counts().get("Global", {})
    by_operator = {str(op): int(flops) for op, flops in counts.items()}
    return {"total": int(counter.get_total_flops()), "by_operator": by_operator}


def matmul_peak_flops(n: int = 2048, reps: int = 10, device: str | torch.device = "cpu") -> float:
    """Best-of-`reps` FLOP/s of an n x n fp32 matrix product (2 n³ FLOPs) on `device`.

    Introduced in chapter 8: what this machine's matrix multiplication reaches in practice, the
    yardstick of model-FLOPs utilisation (a vendor's datasheet peak is usually higher).
    """
    device = torch.device(device)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.matmul(a, b)  # warm-up
    sync()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.matmul(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best
