"""The course's training loop on `accelerate`: `train`, its core `train_step`, and `predict`.

Introduced in chapter 3. The same code runs on a CPU, one GPU, Apple MPS, and under `torchrun` on
several processes (data parallelism): `accelerate.Accelerator` places the model, wraps it in
`DistributedDataParallel` when there are several processes, casts to bf16 on a GPU that has it,
and saves and restores the state. The loop itself stays visible:

    for each optimizer step:                         # train()
        micro-batches = this process's share of the step's examples
        train_step(...)                              # forward, loss, backward, clip, step
        log / evaluate / checkpoint / stop early
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import gather_object, send_to_device, set_seed
from torch import nn
from tqdm.auto import tqdm
from transformers import EvalPrediction, get_scheduler

from ..models import get_device
from .batching import (
    LengthBucketBatchSampler,
    count_items,
    default_collator,
    keep_model_columns,
    lengths_of,
    tokenize_dataset,
)
from .checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import History, RunState, TrainConfig
from .parameters import prepare_trainable, task_type

__all__ = ["make_accelerator", "predict", "seed_everything", "train", "train_step"]

# Mixed precision on CPU, measured for "auto" (2-core x86 CPU with AVX2 but no AVX-512/AMX,
# torch 2.13 CPU): one full fine-tuning step of all-MiniLM-L6-v2, batch 32 x 64 tokens, fused
# AdamW. fp32: forward 0.69 s, whole step 1.42-1.55 s. bf16 autocast: forward 3.35 s, whole step
# 36.4 s (about 24x slower: without native bf16 instructions the bf16 kernels are emulated).
# So "auto" picks bf16 only on a CUDA GPU that supports it, and fp32 everywhere else.


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) in one call (`accelerate.utils.set_seed`).

    Introduced in chapter 3.
    """
    set_seed(seed)


# --------------------------------------------------------------------------------------------
# The core: one optimizer step
# --------------------------------------------------------------------------------------------


def train_step(
    model: nn.Module,
    micro_batches: Sequence[dict],
    optimizer: torch.optim.Optimizer,
    scheduler,
    accelerator: Accelerator,
    max_grad_norm: float | None = 1.0,
    causal_lm: bool = False,
) -> tuple[torch.Tensor, int]:
    """One optimizer step: forward, loss and backward per micro-batch, then clip, step, schedule.

    Introduced in chapter 3. Each micro-batch's mean loss is weighted by its share of the step's
    items (examples, or label tokens), so the gradient is the mean over the whole step however
    it was cut into micro-batches and processes. Gradients are synchronised between processes
    only on the last micro-batch (`no_sync` before it). Returns this process's item-weighted
    loss sum (a tensor: no device sync here) and its number of items.
    """
    items = [count_items(batch, causal_lm) for batch in micro_batches]
    step_items = _sum_over_processes(accelerator, sum(items))  # all processes together
    loss_sum = torch.zeros((), device=accelerator.device)
    for i, (batch, n) in enumerate(zip(micro_batches, items, strict=True)):
        last = i == len(micro_batches) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            loss = model(**batch).loss  # forward
            weight = n * accelerator.num_processes / max(step_items, 1)  # DDP averages processes
            accelerator.backward(loss * weight)  # backward: gradients add up
        loss_sum += loss.detach().float() * n
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, sum(items)


def _sum_over_processes(accelerator: Accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    total = torch.tensor(float(value), dtype=torch.float64, device=accelerator.device)
    return float(accelerator.reduce(total, reduction="sum"))


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def train(
    model: nn.Module,
    train_dataset,
    eval_dataset=None,
    config: TrainConfig | None = None,
    tokenizer=None,
    compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
    callbacks: Sequence[Callable[[int, History], None]] = (),
    data_collator=None,
) -> History:
    """Fine-tune `model` in place with the course's loop; returns the `History`.

    Introduced in chapter 2. Datasets may hold raw texts (`config.text_column`,
    `config.label_column`; tokenised here with `tokenizer`) or be tokenised already; columns
    `model.forward` does not take are ignored. `data_collator` pads a list of examples into a
    batch (default: the one the task needs, see `default_collator`). `compute_metrics` receives
    an `EvalPrediction`, exactly as with `transformers.Trainer`. Each callback is called as
    `callback(step, history)` after every optimizer step. With `config.lora`, the trained
    `PeftModel` is `history.model`; otherwise that is `model`.
    """
    config = config or TrainConfig()
    set_seed(config.seed)
    model = prepare_trainable(model, config.lora, config.freeze, config.freeze_k)
    causal_lm = task_type(model) == "CAUSAL_LM"  # read before `prepare` wraps the model
    train_data = _model_data(train_dataset, model, tokenizer, config)
    eval_data = (
        _model_data(eval_dataset, model, tokenizer, config) if eval_dataset is not None else None
    )
    collator = data_collator or default_collator(train_data, tokenizer, causal_lm)

    accelerator = make_accelerator(config.device, config.mixed_precision)
    model, optimizer = accelerator.prepare(model, _make_optimizer(model, config))
    sampler = LengthBucketBatchSampler(
        lengths_of(train_data),
        config.batch_size,
        config.grad_accum_steps,
        accelerator.num_processes,
        group_by_length=config.group_by_length,
        seed=config.seed,
    )
    steps_per_epoch = len(sampler)
    total_steps = config.max_steps or config.num_epochs * steps_per_epoch
    scheduler = _make_scheduler(optimizer, config, total_steps)
    accelerator.register_for_checkpointing(scheduler)

    run = RunState(history=History(total_steps=total_steps, metric_for_best=config.metric_for_best))
    best_weights = None
    output_dir = Path(config.output_dir) if config.output_dir else None
    if config.resume and (checkpoint := latest_checkpoint(output_dir)):
        run, best_weights = load_checkpoint(accelerator, checkpoint, config.to_dict())
    resumed_finished = run.finished

    def evaluate_now() -> dict[str, float]:
        row = evaluate(model, eval_data, collator, config, accelerator, compute_metrics, causal_lm)
        row = {"step": run.step, "epoch": run.step / steps_per_epoch, **row}
        run.history.evals.append(row)
        return row

    show = config.progress and accelerator.is_local_main_process
    bar = tqdm(total=total_steps, initial=run.step, desc="train", disable=not show)
    start, eval_time = time.perf_counter() - run.history.train_time_s, 0.0
    running_loss, running_items = torch.zeros((), device=accelerator.device), 0
    model.train()
    while not run.finished:
        sampler.set_epoch(run.epoch)
        sampler.skip(run.epoch_step)
        for step_indices in sampler:
            micro = _micro_batches(
                train_data, step_indices, collator, config.batch_size, accelerator
            )
            lr = optimizer.param_groups[0]["lr"]  # the rate this step uses (as Trainer logs it)
            loss_sum, items = train_step(
                model, micro, optimizer, scheduler, accelerator, config.max_grad_norm, causal_lm
            )
            running_loss, running_items = running_loss + loss_sum, running_items + items
            run.history.train_samples += len(step_indices)
            run.step, run.epoch_step = run.step + 1, run.epoch_step + 1
            end_of_epoch = run.epoch_step == steps_per_epoch
            if end_of_epoch:
                run.epoch, run.epoch_step = run.epoch + 1, 0
            bar.update(1)

            if run.step % config.log_every == 0 or run.step == total_steps:
                loss = _sum_over_processes(accelerator, float(running_loss)) / max(
                    _sum_over_processes(accelerator, running_items), 1
                )
                run.history.steps.append(
                    {
                        "step": run.step,
                        "epoch": run.epoch + run.epoch_step / steps_per_epoch,
                        "loss": loss,
                        "lr": lr,
                        "time_s": time.perf_counter() - start - eval_time,
                    }
                )
                bar.set_postfix(loss=f"{loss:.4f}")
                running_loss, running_items = torch.zeros_like(running_loss), 0
            if eval_data is not None and _eval_due(config, run, end_of_epoch, total_steps):
                t0 = time.perf_counter()
                row = evaluate_now()
                best_weights = _track_best(run, row, config, accelerator, model, best_weights)
                eval_time += time.perf_counter() - t0
                if show:
                    bar.write(f"step {run.step}: " + ", ".join(
                        f"{k}={v:.4f}" for k, v in row.items() if k != "step"))  # fmt: skip
            run.history.train_time_s = time.perf_counter() - start - eval_time
            patience = config.early_stopping_patience
            run.history.stopped_early = patience is not None and run.bad_evals >= patience
            run.finished = run.step >= total_steps or run.history.stopped_early
            if config.checkpoint_every and run.step % config.checkpoint_every == 0:
                if not run.finished:  # the final checkpoint is written below, after the restore
                    save_checkpoint(accelerator, output_dir, run, best_weights, config.to_dict())
            for callback in callbacks:
                callback(run.step, run.history)
            if run.finished:
                break
    bar.close()

    if not resumed_finished:
        if best_weights is not None and run.history.best_step != run.step:
            accelerator.unwrap_model(model).load_state_dict(best_weights)  # keep the best
        if config.checkpoint_every:
            save_checkpoint(accelerator, output_dir, run, best_weights, config.to_dict())
    accelerator.wait_for_everyone()
    run.history.model = accelerator.unwrap_model(model)
    return run.history


def _model_data(dataset, model: nn.Module, tokenizer, config: TrainConfig):
    data = tokenize_dataset(
        dataset, tokenizer, config.max_length,
        text_column=config.text_column, label_column=config.label_column,
    )  # fmt: skip
    return keep_model_columns(data, model)


def _micro_batches(
    dataset, step_indices: list[int], collator, batch_size: int, accelerator: Accelerator
) -> list[dict]:
    """This process's share of one step's examples, padded into micro-batches on its device.

    Process r takes every r-th example of the (length-sorted) step, so processes get similar
    lengths. A process left with nothing (a last step smaller than the number of processes)
    repeats the step's first example, as accelerate's even batches do.
    """
    share = step_indices[accelerator.process_index :: accelerator.num_processes]
    share = share or step_indices[:1]
    batches = []
    for i in range(0, len(share), batch_size):
        examples = [dataset[int(j)] for j in share[i : i + batch_size]]
        batches.append(send_to_device(collator(examples), accelerator.device))
    return batches


def _eval_due(config: TrainConfig, run: RunState, end_of_epoch: bool, total_steps: int) -> bool:
    if config.eval_every == "epoch" and end_of_epoch:
        return True
    if isinstance(config.eval_every, int) and run.step % config.eval_every == 0:
        return True
    last_eval = run.history.evals[-1]["step"] if run.history.evals else None
    return run.step == total_steps and last_eval != run.step  # always evaluate the end


def _track_best(run: RunState, row: dict, config: TrainConfig, accelerator, model, best_weights):
    """Update the best evaluation and the early-stopping counter; returns the best weights."""
    value, best = row[config.metric_for_best], run.history.best_metric
    improved = best is None or (value > best if config.higher_is_better else value < best)
    if not improved:
        run.bad_evals += 1
        return best_weights
    run.history.best_metric, run.history.best_step, run.bad_evals = value, run.step, 0
    if config.early_stopping_patience is None:
        return None
    state = accelerator.unwrap_model(model).state_dict()
    return {k: v.detach().cpu().clone() for k, v in state.items()}


# --------------------------------------------------------------------------------------------
# Device, optimizer, scheduler
# --------------------------------------------------------------------------------------------


def _resolve_mixed_precision(choice: str, device: torch.device) -> str:
    if choice != "auto":
        return choice
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"  # CPU and MPS: fp32 (bf16 autocast measured 24x slower on CPU, see the top)


def make_accelerator(device: str = "auto", mixed_precision: str = "auto") -> Accelerator:
    """An `Accelerator` on the device `course_utils.models.get_device(device)` picks.

    Introduced in chapter 8. `device="cpu"` keeps a GPU machine on the CPU; under `torchrun`
    on CPUs it gives real data parallelism over gloo (`MULTI_CPU`; without `cpu=True` accelerate
    would run every process as an independent copy). accelerate keeps one global state per
    process: in a single process (a notebook) a new device or precision replaces the old one.
    """
    target = get_device(device)
    precision = _resolve_mixed_precision(mixed_precision, target)
    if PartialState._shared_state and PartialState().num_processes == 1:
        current = AcceleratorState._shared_state.get("_mixed_precision", precision)
        if PartialState().device.type != target.type or current != precision:
            AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=target.type == "cpu", mixed_precision=precision)


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D tensors), as `Trainer` does."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter of the model is frozen")
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    try:  # fused AdamW is 30-45% faster than the default (foreach) on CPU, see COURSE.md
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=config.lr)


def _make_scheduler(optimizer, config: TrainConfig, total_steps: int):
    """Warm-up then decay, stepped once per optimizer step (not prepared by accelerate)."""
    name = "constant_with_warmup" if config.scheduler == "constant" else config.scheduler
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=math.ceil(config.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )


# --------------------------------------------------------------------------------------------
# Evaluation and prediction
# --------------------------------------------------------------------------------------------


def _stack(arrays: list[np.ndarray], pad_value: float) -> np.ndarray:
    """Concatenate batches along axis 0, padding axis 1 to the widest (as Trainer does)."""
    if arrays[0].ndim == 1 or len({a.shape[1] for a in arrays}) == 1:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    pad = [[(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2) for a in arrays]
    return np.concatenate(
        [np.pad(a, p, constant_values=pad_value) for a, p in zip(arrays, pad, strict=True)]
    )


@torch.no_grad()
def model_outputs(
    model: nn.Module,
    dataset,
    collator,
    batch_size: int,
    device: torch.device,
    want_outputs: bool = True,
    causal_lm: bool = False,
    accelerator: Accelerator | None = None,
    autocast=contextlib.nullcontext,
):
    """Loss, outputs and labels of `model` on `dataset`, every example exactly once, in order.

    Batches are sorted by length (little padding). With several processes, each evaluates every
    n-th row and the pieces are gathered at the end: no example is duplicated or dropped.
    Returns `(mean loss or nan, outputs or None, labels or None)`; `outputs` is one array, or a
    tuple of arrays when the model returns several (e.g. QA's start and end logits).
    """
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    order = np.argsort(-np.asarray(lengths_of(dataset)), kind="stable")[rank::world]
    was_training = model.training
    model.eval()
    loss_sum, items, rows, outputs, labels = 0.0, 0, [], [], []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = send_to_device(collator([dataset[int(i)] for i in idx]), device)
        with autocast():
            out = model(**batch)
        if getattr(out, "loss", None) is not None:
            n = count_items(batch, causal_lm)
            loss_sum, items = loss_sum + float(out.loss) * n, items + n
        if want_outputs:
            tensors = [v for k, v in out.items() if k != "loss" and torch.is_tensor(v)]
            outputs.append([t.float().cpu().numpy() for t in tensors])
            if "labels" in batch:
                labels.append(batch["labels"].cpu().numpy())
        rows.append(idx)
    model.train(was_training)
    if world > 1:  # one gather at the end: [(rows, outputs, labels, loss, items)] per process
        pieces = gather_object([(rows, outputs, labels, loss_sum, items)])
        rows = [r for piece in pieces for r in piece[0]]
        outputs = [o for piece in pieces for o in piece[1]]
        labels = [y for piece in pieces for y in piece[2]]
        loss_sum, items = sum(p[3] for p in pieces), sum(p[4] for p in pieces)
    loss = loss_sum / items if items else float("nan")
    if not want_outputs or not outputs:
        return loss, None, None
    position = np.argsort(np.concatenate(rows), kind="stable")  # back to the dataset's order
    arrays = [_stack([o[k] for o in outputs], -100)[position] for k in range(len(outputs[0]))]
    label_array = _stack(labels, -100)[position] if labels else None
    return loss, (arrays[0] if len(arrays) == 1 else tuple(arrays)), label_array


def evaluate(
    model,
    dataset,
    collator,
    config: TrainConfig,
    accelerator,
    compute_metrics=None,
    causal_lm=False,
) -> dict[str, float]:
    """The loss (and `compute_metrics`) on `dataset`: one evaluation row of the `History`."""
    loss, outputs, labels = model_outputs(
        accelerator.unwrap_model(model),  # no DDP wrapper: no collective inside the forward
        dataset, collator, config.eval_batch_size, accelerator.device,
        want_outputs=compute_metrics is not None, causal_lm=causal_lm, accelerator=accelerator,
    )  # fmt: skip
    row = {"loss": loss}
    if compute_metrics is not None:
        metrics = compute_metrics(EvalPrediction(predictions=outputs, label_ids=labels))
        row.update({k: float(v) for k, v in metrics.items()})
    return row


def predict(
    model: nn.Module,
    dataset,
    tokenizer=None,
    batch_size: int = 64,
    max_length: int | None = 128,
    text_column: str = "text",
    data_collator=None,
    device: str = "auto",
    mixed_precision: str = "auto",
):
    """The model's outputs for every example of `dataset` (texts or tokenised), in order.

    Introduced in chapter 2. Returns a NumPy array (e.g. the logits), or a tuple of arrays when
    the model returns several (QA: start and end logits); sequence outputs of different lengths
    are padded with -100, as `Trainer.predict` does. Batches are sorted by length for speed and
    put back in the dataset's order. The model moves to `device` (`"auto"`: CUDA, MPS, CPU).
    """
    target = get_device(device)
    data = tokenize_dataset(dataset, tokenizer, max_length, text_column=text_column)
    data = keep_model_columns(data, model)
    if "labels" in data.column_names:
        data = data.remove_columns("labels")
    collator = data_collator or default_collator(data, tokenizer, causal_lm=False)
    model.to(target)
    bf16 = _resolve_mixed_precision(mixed_precision, target) == "bf16"
    autocast = (
        (lambda: torch.autocast(target.type, dtype=torch.bfloat16))
        if bf16
        else contextlib.nullcontext
    )
    _, outputs, _ = model_outputs(model, data, collator, batch_size, target, autocast=autocast)
    return outputs
