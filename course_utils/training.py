"""The course's training loop, built on `accelerate`, and its Trainer twin.

One readable file: a `TrainConfig`, the `train` loop (gradient accumulation and clipping, warm-up
and decay, evaluation during training, early stopping, atomic checkpoints and exact resume,
seeded determinism, length-bucketed batches, a tqdm bar), a `History` a notebook can plot,
layer freezing, LoRA, `predict`, and `make_trainer`, which sets up the same job with
`transformers.Trainer` so a chapter can show both.

Device and distributed plumbing is left to `accelerate.Accelerator`: the same code runs on a
CPU, one GPU, or under `accelerate launch` on several.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    EvalPrediction,
    get_scheduler,
)

__all__ = [
    "History",
    "LengthBucketBatchSampler",
    "TrainConfig",
    "apply_lora",
    "count_parameters",
    "freeze_layers",
    "make_trainer",
    "predict",
    "seed_everything",
    "tokenize_dataset",
    "train",
    "transformer_layers",
]

# Mixed precision on CPU, measured for "auto" (2-core x86 CPU with AVX2 but no AVX-512/AMX,
# torch 2.13 CPU): one full fine-tuning step of all-MiniLM-L6-v2, batch 32 x 64 tokens, fused
# AdamW. fp32: forward 0.69 s, whole step 1.42-1.55 s. bf16 autocast: forward 3.35 s, whole step
# 36.4 s (about 24x slower: without native bf16 instructions the bf16 kernels are emulated).
# So "auto" picks bf16 only on a CUDA GPU that supports it, and fp32 everywhere else.

_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")


# --------------------------------------------------------------------------------------------
# Configuration and history
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """All the settings of one training run (D2L names: `lr`, `num_epochs`, `batch_size`).

    Introduced in chapter 3.

    `eval_every` is `"epoch"` or a number of optimizer steps. `freeze` is `"none"` (train
    everything), `"head"` (train only the task head) or `"top-k"` (the head and the top
    `freeze_k` transformer layers). `lora` is `None` or a dict with any of `r`, `alpha`,
    `dropout`, `target_modules`; it wins over `freeze`. `mixed_precision="auto"` means bf16 on
    a CUDA GPU that supports it and fp32 elsewhere (bf16 autocast was measured slower on CPU).
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
    mixed_precision: Literal["no", "bf16", "auto"] = "auto"
    eval_every: str | int = "epoch"
    metric_for_best: str = "loss"
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
        if self.scheduler not in ("linear", "cosine", "constant"):
            raise ValueError(
                f"scheduler must be linear, cosine or constant, not {self.scheduler!r}"
            )
        if self.mixed_precision not in ("no", "bf16", "auto"):
            raise ValueError(
                f"mixed_precision must be no, bf16 or auto, not {self.mixed_precision!r}"
            )
        if self.freeze not in ("none", "head", "top-k"):
            raise ValueError(f"freeze must be none, head or top-k, not {self.freeze!r}")
        if self.eval_every != "epoch" and not (
            isinstance(self.eval_every, int) and self.eval_every > 0
        ):
            raise ValueError("eval_every must be 'epoch' or a positive number of steps")
        if self.resume and self.output_dir is None:
            raise ValueError("resume=True needs an output_dir to find the checkpoint in")
        if self.checkpoint_every and self.output_dir is None:
            raise ValueError("checkpoint_every needs an output_dir to write checkpoints to")

    @property
    def greater_is_better(self) -> bool:
        """Whether a larger `metric_for_best` is better (losses are minimised, scores maximised)."""
        return "loss" not in self.metric_for_best


@dataclass
class History:
    """What happened during `train`: per-step loss and lr, per-evaluation metrics, timing.

    Introduced in chapter 3. `steps` and `evals` are lists of dicts (one per logged optimizer
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
        names = {f.name for f in cls.__dataclass_fields__.values()} - {"model"}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dataframe(self, kind: Literal["train", "eval"] = "train"):
        """A pandas DataFrame of the per-step (`"train"`) or per-evaluation (`"eval"`) rows."""
        import pandas as pd

        return pd.DataFrame(self.steps if kind == "train" else self.evals)

    def save(self, path: str | os.PathLike) -> None:
        """Write `to_dict()` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


# --------------------------------------------------------------------------------------------
# Parameters: counting, freezing, LoRA
# --------------------------------------------------------------------------------------------


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once), optionally only the trainable ones.

    Introduced in chapter 2.
    """
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def transformer_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The stack of transformer blocks and its name (e.g. `bert.encoder.layer`), chapter 2."""
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and len({type(m) for m in mod}) == 1
    ]
    if n_layers is not None:
        matching = [c for c in candidates if len(c[1]) == n_layers]
        candidates = matching or candidates
    if not candidates:
        raise ValueError(f"could not find the transformer layers of {type(model).__name__}")
    return max(candidates, key=lambda c: count_parameters(c[1]))


def freeze_layers(model: nn.Module, mode: str = "head", k: int = 2) -> int:
    """Choose what trains: `"none"` (all), `"head"` (head only), `"top-k"` (head + top k layers).

    Introduced in chapter 3. The "head" is every parameter after the last transformer block:
    for `BertForSequenceClassification` the pooler and the classifier, for a causal LM the final
    norm (and the LM head unless it is tied to the embeddings). Returns the number of trainable
    parameters.
    """
    if mode not in ("none", "head", "top-k"):
        raise ValueError(f"mode must be none, head or top-k, not {mode!r}")
    for p in model.parameters():
        p.requires_grad_(mode == "none")
    if mode == "none":
        return count_parameters(model, trainable_only=True)

    layers_name, layers = transformer_layers(model)
    names = [name for name, _ in model.named_parameters()]
    last_layer = max(i for i, n in enumerate(names) if n.startswith(layers_name + "."))
    trainable = set(names[last_layer + 1 :])  # the head: everything after the last block
    if mode == "top-k":
        first = len(layers) - max(0, min(k, len(layers)))
        prefixes = tuple(f"{layers_name}.{i}." for i in range(first, len(layers)))
        trainable |= {n for n in names if n.startswith(prefixes)}
    for name, p in model.named_parameters():
        if name in trainable:
            p.requires_grad_(True)
    return count_parameters(model, trainable_only=True)


def _task_type(model: nn.Module) -> str | None:
    name = type(model).__name__
    for suffix, task in (
        ("ForSequenceClassification", "SEQ_CLS"),
        ("ForTokenClassification", "TOKEN_CLS"),
        ("ForQuestionAnswering", "QUESTION_ANS"),
        ("ForCausalLM", "CAUSAL_LM"),
    ):
        if name.endswith(suffix):
            return task
    return None


def apply_lora(
    model: nn.Module,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.1,
    target_modules: Sequence[str] | str | None = None,
    **kwargs: Any,
):
    """Wrap `model` with LoRA adapters via `peft.get_peft_model`; returns the `PeftModel`.

    Introduced in chapter 3. Only the adapters (and, for classification, the new head) train.
    `target_modules=None` lets peft pick the attention projections it knows for the
    architecture (`query`/`value` for BERT, `q_proj`/`v_proj` for Llama).
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules)
        if isinstance(target_modules, (list, tuple))
        else target_modules,
        task_type=_task_type(model),
        **kwargs,
    )
    return get_peft_model(model, config)


def _prepare_trainable(model: nn.Module, config: TrainConfig) -> nn.Module:
    if config.lora is not None:
        if hasattr(model, "peft_config"):
            return model  # already wrapped
        return apply_lora(model, **config.lora)
    if config.freeze != "none":
        freeze_layers(model, config.freeze, config.freeze_k)
    return model


# --------------------------------------------------------------------------------------------
# Data: tokenising, length buckets, collators
# --------------------------------------------------------------------------------------------


def tokenize_dataset(
    dataset,
    tokenizer,
    max_length: int | None = 128,
    padding: bool | str = False,
    text_column: str = "text",
    label_column: str = "label",
):
    """Tokenise a `datasets.Dataset` of texts; keep only the model inputs and `labels`.

    Introduced in chapter 5. A dataset that already has `input_ids` is returned with only the
    model's columns kept. `padding=False` leaves padding to the collator (dynamic padding);
    `padding="max_length"` pads every example to `max_length`.
    """
    if "input_ids" not in dataset.column_names:
        dataset = dataset.map(
            lambda batch: tokenizer(
                batch[text_column],
                truncation=max_length is not None,
                max_length=max_length,
                padding=padding,
            ),
            batched=True,
        )
    if label_column in dataset.column_names and "labels" not in dataset.column_names:
        dataset = dataset.rename_column(label_column, "labels")
    keep = [c for c in dataset.column_names if c in _MODEL_INPUTS]
    return dataset.select_columns(keep)


class LengthBucketBatchSampler:
    """Batches of similar length, in a shuffled, seeded order: less padding, faster steps.

    Introduced in chapter 5. Each epoch: shuffle all indices (seed + epoch), cut them into
    chunks of `bucket_batches` batches, sort each chunk by length, cut it into batches of
    `batch_size * grad_accum_steps` examples (one optimizer step; split into micro-batches of
    `batch_size`), and shuffle the order of the steps. The order depends only on the seed and
    the epoch, which is what makes resuming a run exact.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        grad_accum_steps: int = 1,
        shuffle: bool = True,
        group_by_length: bool = True,
        seed: int = 0,
        bucket_batches: int = 50,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.grad_accum_steps = grad_accum_steps
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.seed = seed
        self.bucket_batches = bucket_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order `__iter__` yields."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The micro-batches of the current epoch, in order."""
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        step_size = self.batch_size * self.grad_accum_steps
        steps: list[np.ndarray] = []
        if self.group_by_length:
            chunk = step_size * self.bucket_batches
            for start in range(0, n, chunk):
                part = order[start : start + chunk]
                part = part[np.argsort(-self.lengths[part], kind="stable")]
                steps += [part[i : i + step_size] for i in range(0, len(part), step_size)]
            if self.shuffle:
                steps = [steps[i] for i in rng.permutation(len(steps))]
        else:
            steps = [order[i : i + step_size] for i in range(0, n, step_size)]
        return [
            step[i : i + self.batch_size].tolist()
            for step in steps
            for i in range(0, len(step), self.batch_size)
        ]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        n, step_size = len(self.lengths), self.batch_size * self.grad_accum_steps
        chunk = step_size * self.bucket_batches if self.group_by_length else max(n, 1)
        count = 0
        for start in range(0, n, chunk):
            full_steps, rest = divmod(min(chunk, n - start), step_size)
            count += full_steps * self.grad_accum_steps + math.ceil(rest / self.batch_size)
        return count


def _is_seq_labels(dataset) -> bool:
    return "labels" in dataset.column_names and isinstance(dataset[0]["labels"], list)


def _collator(dataset, tokenizer, language_modeling: bool = False):
    if language_modeling and "labels" not in dataset.column_names:  # next-token prediction
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    if _is_seq_labels(dataset):  # token-level labels (causal LM, NER): pad them with -100
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    return DataCollatorWithPadding(tokenizer)


def _lengths(dataset) -> list[int]:
    return [len(ids) for ids in dataset["input_ids"]]


def _train_loader(
    dataset, tokenizer, config: TrainConfig
) -> tuple[DataLoader, LengthBucketBatchSampler]:
    sampler = LengthBucketBatchSampler(
        _lengths(dataset),
        config.batch_size,
        config.grad_accum_steps,
        shuffle=True,
        group_by_length=config.group_by_length,
        seed=config.seed,
    )
    # A private generator: building the loader's iterator must not draw from the global RNG,
    # or a resumed run would see different dropout masks than an uninterrupted one.
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=_collator(dataset, tokenizer, language_modeling=True),
        generator=torch.Generator().manual_seed(config.seed),
    )
    return loader, sampler


def _eval_loader(
    dataset, tokenizer, batch_size: int, language_modeling: bool = False
) -> tuple[DataLoader, np.ndarray]:
    """Batches sorted by length (fast); also returns the order to undo the sorting.

    With `language_modeling`, unlabelled text is scored on next-token prediction (labels = inputs).
    """
    order = np.argsort(-np.asarray(_lengths(dataset)), kind="stable")
    # A plain sequential loader over the sorted rows: accelerate shards it across processes and
    # `gather_for_metrics` drops the duplicates it pads the last batch with.
    loader = DataLoader(
        dataset.select(order),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=_collator(dataset, tokenizer, language_modeling),
    )
    return loader, order


# --------------------------------------------------------------------------------------------
# Accelerator, optimizer, scheduler
# --------------------------------------------------------------------------------------------


def _resolve_mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"  # CPU and MPS: fp32 (bf16 autocast measured 24x slower on CPU, see the top)


def _make_accelerator(mixed_precision: str, grad_accum_steps: int = 1) -> Accelerator:
    """An `Accelerator`; in a single process, a new precision may replace an earlier one."""
    try:
        return Accelerator(
            mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum_steps
        )
    except ValueError:
        # accelerate keeps one global state per process; a notebook that trains once in fp32
        # and once in bf16 is a single process, so resetting the state is safe there.
        if AcceleratorState().num_processes > 1:
            raise
        AcceleratorState._reset_state()
        return Accelerator(
            mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum_steps
        )


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D tensors), as `Trainer` does."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    try:  # fused AdamW is 30-45% faster than the default (foreach) on CPU, see COURSE.md
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=config.lr)


def _make_scheduler(optimizer, config: TrainConfig, total_steps: int, num_processes: int):
    # A prepared scheduler steps once per process per optimizer step (accelerate's convention).
    total = total_steps * num_processes
    name = "constant_with_warmup" if config.scheduler == "constant" else config.scheduler
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=math.ceil(config.warmup_ratio * total),
        num_training_steps=total,
    )


# --------------------------------------------------------------------------------------------
# Evaluation and prediction
# --------------------------------------------------------------------------------------------


def _pad_and_stack(arrays: list[np.ndarray], pad_value: float) -> np.ndarray:
    if arrays[0].ndim == 1 or len({a.shape[1] for a in arrays}) == 1:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    padded = [
        np.pad(
            a,
            [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2),
            constant_values=pad_value,
        )
        for a in arrays
    ]
    return np.concatenate(padded)


@torch.no_grad()
def _run_eval(model, loader, accelerator: Accelerator, want_outputs: bool, progress: bool = False):
    """Mean loss over the loader, plus (optionally) all logits and labels in loader order."""
    model.eval()
    total_loss, total_count = 0.0, 0
    logits_all, labels_all = [], []
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
        with accelerator.autocast():
            out = model(**batch)
        if "labels" in batch and out.loss is not None:
            n = batch["labels"].shape[0]
            loss = accelerator.gather_for_metrics(out.loss.detach().float().repeat(n))
            total_loss += loss.sum().item()
            total_count += loss.numel()
        if want_outputs:
            logits = accelerator.pad_across_processes(out.logits.float(), dim=1, pad_index=0)
            logits_all.append(accelerator.gather_for_metrics(logits).cpu().numpy())
            if "labels" in batch:
                labels = accelerator.pad_across_processes(batch["labels"], dim=1, pad_index=-100)
                labels_all.append(accelerator.gather_for_metrics(labels).cpu().numpy())
    model.train()
    logits = _pad_and_stack(logits_all, 0.0) if logits_all else None
    labels = _pad_and_stack(labels_all, -100) if labels_all else None
    loss = total_loss / total_count if total_count else float("nan")
    return loss, logits, labels


def predict(
    model: nn.Module,
    dataset,
    tokenizer=None,
    batch_size: int = 64,
    max_length: int | None = 128,
    text_column: str = "text",
) -> np.ndarray:
    """Logits for every example of `dataset` (texts or tokenised), as a NumPy array, in order.

    Introduced in chapter 5. Batches are sorted by length for speed and put back in the
    dataset's order before returning. Runs wherever `accelerate` puts the model.
    """
    data = tokenize_dataset(dataset, tokenizer, max_length, text_column=text_column)
    if "labels" in data.column_names:
        data = data.remove_columns("labels")
    accelerator = Accelerator()  # keeps the precision of an earlier `train` in this process
    loader, order = _eval_loader(data, tokenizer, batch_size)
    was_training = model.training
    model_p, loader = accelerator.prepare(model, loader)
    _, logits, _ = _run_eval(model_p, loader, accelerator, want_outputs=True)
    model.train(was_training)
    out = np.empty_like(logits)
    out[order] = logits
    return out


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _latest_checkpoint(output_dir: Path) -> Path | None:
    done = [p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, state: dict, best_weights) -> None:
    """Write a checkpoint to a temporary folder, then rename it: never a half-written one."""
    step = state["step"]
    tmp = output_dir / f".tmp-checkpoint-{step}"
    final = output_dir / f"checkpoint-{step}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # model, optimizer, scheduler, RNG states
    if accelerator.is_main_process:
        if best_weights is not None:
            torch.save(best_weights, tmp / "best_weights.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(state))  # the "complete" marker
        old = [p for p in output_dir.glob("checkpoint-*") if p != final]
        if final.exists():  # the same step saved again (the end of a run): swap, then delete
            os.replace(final, output_dir / f".old-checkpoint-{step}")
            old.append(output_dir / f".old-checkpoint-{step}")
        os.replace(tmp, final)
        for p in old:  # keep only the newest checkpoint
            shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()


# --------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------


def train(
    model: nn.Module,
    train_dataset,
    eval_dataset=None,
    config: TrainConfig | None = None,
    tokenizer=None,
    compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
    callbacks: Sequence[Callable[[int, History], None]] = (),
) -> History:
    """Fine-tune `model` in place with the course's loop; returns the `History`.

    Introduced in chapter 3. Datasets may hold raw texts (`config.text_column`,
    `config.label_column`; tokenised here with `tokenizer`) or be tokenised already.
    `compute_metrics` receives an `EvalPrediction`, exactly as with `transformers.Trainer`.
    Each callback is called as `callback(step, history)` after every optimizer step. With
    `config.lora`, the trained `PeftModel` is `history.model`; otherwise that is `model`.
    """
    config = config or TrainConfig()
    set_seed(config.seed)
    model = _prepare_trainable(model, config)
    train_data = tokenize_dataset(
        train_dataset,
        tokenizer,
        config.max_length,
        text_column=config.text_column,
        label_column=config.label_column,
    )
    eval_data = None
    if eval_dataset is not None:
        eval_data = tokenize_dataset(
            eval_dataset,
            tokenizer,
            config.max_length,
            text_column=config.text_column,
            label_column=config.label_column,
        )

    accelerator = _make_accelerator(
        _resolve_mixed_precision(config.mixed_precision), config.grad_accum_steps
    )
    train_loader, sampler = _train_loader(train_data, tokenizer, config)
    optimizer = _make_optimizer(model, config)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    batches_per_epoch = len(train_loader)  # micro-batches of this process
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum_steps)
    total_steps = config.max_steps or config.num_epochs * steps_per_epoch
    scheduler = _make_scheduler(optimizer, config, total_steps, accelerator.num_processes)
    scheduler = accelerator.prepare(scheduler)
    eval_loader = order = None
    if eval_data is not None:
        causal_lm = _task_type(model) == "CAUSAL_LM"
        eval_loader, order = _eval_loader(eval_data, tokenizer, config.eval_batch_size, causal_lm)
        eval_loader = accelerator.prepare(eval_loader)

    history = History(total_steps=total_steps, metric_for_best=config.metric_for_best)
    output_dir = Path(config.output_dir) if config.output_dir else None
    if output_dir is not None and accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    step, epoch, batches_done = 0, 0, 0  # optimizer steps; epoch; micro-batches done in epoch
    finished = False
    best_weights, bad_evals = None, 0

    if config.resume and output_dir is not None and (ckpt := _latest_checkpoint(output_dir)):
        accelerator.load_state(str(ckpt))
        saved = json.loads((ckpt / "trainer_state.json").read_text())
        step, epoch, batches_done = saved["step"], saved["epoch"], saved["batches_done"]
        bad_evals, finished = saved["bad_evals"], saved["finished"]
        history = History.from_dict(saved["history"])
        history.resumed_from_step = step
        if (ckpt / "best_weights.pt").exists():
            best_weights = torch.load(ckpt / "best_weights.pt", weights_only=True)

    def evaluate() -> dict[str, float]:
        nonlocal best_weights, bad_evals
        loss, logits, labels = _run_eval(
            model,
            eval_loader,
            accelerator,
            want_outputs=compute_metrics is not None,
        )
        row = {"step": step, "epoch": step / steps_per_epoch, "loss": loss}
        if compute_metrics is not None:
            unsorted_logits, unsorted_labels = np.empty_like(logits), np.empty_like(labels)
            unsorted_logits[order], unsorted_labels[order] = logits, labels
            metrics = compute_metrics(
                EvalPrediction(predictions=unsorted_logits, label_ids=unsorted_labels)
            )
            row.update({k: float(v) for k, v in metrics.items()})
        history.evals.append(row)
        value = row[config.metric_for_best]
        better = history.best_metric is None or (
            value > history.best_metric if config.greater_is_better else value < history.best_metric
        )
        if better:
            history.best_metric, history.best_step, bad_evals = value, step, 0
            if config.early_stopping_patience is not None:
                state = accelerator.unwrap_model(model).state_dict()
                best_weights = {k: v.detach().cpu().clone() for k, v in state.items()}
        else:
            bad_evals += 1
        return row

    def checkpoint(finished: bool = False) -> None:
        state = {
            "finished": finished,
            "step": step,
            "epoch": epoch,
            "batches_done": batches_done,
            "bad_evals": bad_evals,
            "history": history.to_dict(),
            "config": {k: str(v) for k, v in asdict(config).items()},
        }
        _save_checkpoint(accelerator, output_dir, state, best_weights)

    model.train()
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc="train",
        disable=not (config.progress and accelerator.is_local_main_process),
    )
    start = time.perf_counter() - history.train_time_s
    eval_time = 0.0
    running_loss, running_count = torch.zeros((), device=accelerator.device), 0
    stop = finished or step >= total_steps
    while not stop:
        # accelerate's loader passes its own epoch counter to our sampler when iterated: set both
        train_loader.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = train_loader
        if batches_done:
            loader = accelerator.skip_first_batches(train_loader, batches_done)
        for batch in loader:
            with accelerator.accumulate(model):
                out = model(**batch)
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            batches_done += 1
            running_loss += out.loss.detach().float()  # no .item(): no GPU sync per batch
            running_count += 1
            history.train_samples += batch["input_ids"].shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue

            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == total_steps:
                history.steps.append(
                    {
                        "step": step,
                        "epoch": epoch + batches_done / batches_per_epoch,
                        "loss": running_loss.item() / running_count,
                        "lr": scheduler.get_last_lr()[0],
                        "time_s": time.perf_counter() - start - eval_time,
                    }
                )
                bar.set_postfix(loss=f"{history.steps[-1]['loss']:.4f}")
                running_loss, running_count = torch.zeros_like(running_loss), 0
            end_of_epoch = batches_done == batches_per_epoch
            if end_of_epoch:
                epoch, batches_done = epoch + 1, 0
            if eval_loader is not None and (
                (config.eval_every == "epoch" and end_of_epoch)
                or (isinstance(config.eval_every, int) and step % config.eval_every == 0)
                or (
                    step == total_steps and (not history.evals or history.evals[-1]["step"] != step)
                )
            ):
                t0 = time.perf_counter()
                row = evaluate()
                eval_time += time.perf_counter() - t0
                if config.progress and accelerator.is_local_main_process:
                    bar.write(
                        f"step {step}: "
                        + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "step")
                    )
                if (
                    config.early_stopping_patience is not None
                    and bad_evals >= config.early_stopping_patience
                ):
                    history.stopped_early = stop = True
            history.train_time_s = time.perf_counter() - start - eval_time
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                checkpoint()
            for callback in callbacks:
                callback(step, history)
            if step >= total_steps or stop:
                stop = True
                break
        else:
            epoch, batches_done = (epoch + 1, 0) if batches_done else (epoch, 0)
    bar.close()
    history.train_time_s = time.perf_counter() - start - eval_time

    if best_weights is not None and history.best_step != step and not finished:
        accelerator.unwrap_model(model).load_state_dict(
            best_weights
        )  # early stopping: keep the best
    if config.checkpoint_every and not finished:
        checkpoint(finished=True)  # a resumed finished run just reloads this
    accelerator.wait_for_everyone()
    history.model = accelerator.unwrap_model(model)
    accelerator.free_memory()
    return history


# --------------------------------------------------------------------------------------------
# The same job with transformers.Trainer
# --------------------------------------------------------------------------------------------


def make_trainer(
    model: nn.Module,
    train_dataset,
    eval_dataset=None,
    config: TrainConfig | None = None,
    tokenizer=None,
    compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
):
    """A `transformers.Trainer` set up for the same job as `train(...)` with this config.

    Introduced in chapter 5. Maps lr, epochs, batch sizes, accumulation, clipping, warm-up,
    scheduler, weight decay, bf16, evaluation and checkpoint schedules, early stopping, seed,
    length grouping and fused AdamW onto `TrainingArguments`; freezing and LoRA are applied to
    the model first. Call `.train()` on the result.

    With `group_by_length` (the default) transformers 5 also length-groups the batches of
    `trainer.evaluate` / `trainer.predict`, so `predict`'s rows are not in the dataset's order
    (chapter 5 measures this trap); use the course's `predict` for logits in order.
    """
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    config = config or TrainConfig()
    set_seed(config.seed)
    model = _prepare_trainable(model, config)
    kw = dict(
        max_length=config.max_length,
        text_column=config.text_column,
        label_column=config.label_column,
    )
    train_data = tokenize_dataset(train_dataset, tokenizer, **kw)
    eval_data = (
        tokenize_dataset(eval_dataset, tokenizer, **kw) if eval_dataset is not None else None
    )

    if eval_data is None:
        eval_strategy, eval_steps = "no", None
    elif config.eval_every == "epoch":
        eval_strategy, eval_steps = "epoch", None
    else:
        eval_strategy, eval_steps = "steps", config.eval_every
    early = config.early_stopping_patience is not None and eval_data is not None
    if config.checkpoint_every:
        save_strategy, save_steps = "steps", config.checkpoint_every
    elif early:  # load_best_model_at_end needs checkpoints on the evaluation schedule
        save_strategy, save_steps = eval_strategy, eval_steps
    else:
        save_strategy, save_steps = "no", None
    mixed = _resolve_mixed_precision(config.mixed_precision)
    kwargs = dict(
        output_dir=str(config.output_dir or "runs/trainer"),
        learning_rate=config.lr,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum_steps,
        max_grad_norm=config.max_grad_norm or 0.0,
        lr_scheduler_type="constant_with_warmup"
        if config.scheduler == "constant"
        else config.scheduler,
        weight_decay=config.weight_decay,
        optim="adamw_torch_fused",
        bf16=mixed == "bf16",
        eval_strategy=eval_strategy,
        eval_steps=eval_steps,
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=1 if save_strategy != "no" else None,
        load_best_model_at_end=early,
        metric_for_best_model=config.metric_for_best if early else None,
        greater_is_better=config.greater_is_better if early else None,
        logging_steps=config.log_every,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=not config.progress,
    )
    if "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        # transformers 5: a float warmup_steps in [0, 1) is a ratio of the total steps
        kwargs.update(
            warmup_steps=config.warmup_ratio,
            train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        )
    else:  # transformers 4.x
        kwargs.update(warmup_ratio=config.warmup_ratio, group_by_length=config.group_by_length)
    args = TrainingArguments(**kwargs)
    callbacks = [EarlyStoppingCallback(config.early_stopping_patience)] if early else None
    return Trainer(
        model=model,
        args=args,
        data_collator=_collator(train_data, tokenizer),
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) in one call (`accelerate.utils.set_seed`).

    Introduced in chapter 8.
    """
    set_seed(seed)
