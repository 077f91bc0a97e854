"""The same job with `transformers.Trainer`: `make_trainer` maps a `TrainConfig` onto it.

Introduced in chapter 5, which trains the same model with the course loop and with `Trainer`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn
from torch.utils.data import DataLoader
from transformers import EvalPrediction, Trainer

from ..models import get_device
from .batching import LengthBucketBatchSampler, MicroBatchSampler, default_collator, lengths_of
from .config import TrainConfig
from .loop import _model_data, _resolve_mixed_precision, make_accelerator
from .parameters import prepare_trainable, task_type

__all__ = ["CourseTrainer", "make_trainer", "training_arguments"]


class CourseTrainer(Trainer):
    """A `Trainer` whose training batches come from the course loop's sampler.

    Introduced in chapter 5. Same examples in the same optimizer steps as `train` (length
    buckets, seeded order), so the two can be compared like for like. Everything else is
    Trainer's own: its loop, logging, evaluation and `checkpoint-N` folders.
    """

    def __init__(self, *args, batch_sampler: MicroBatchSampler, **kwargs):
        super().__init__(*args, **kwargs)
        self.course_batch_sampler = batch_sampler
        # Trainer skips its `/ gradient_accumulation_steps` when a model's forward takes
        # **kwargs, trusting it to use `num_items_in_batch`; transformers 5's BERT heads take
        # **kwargs and ignore it, so with accumulation their gradient was the SUM of the
        # micro-batches' (found by tests/test_trainer_twin.py; transformers issue #47688).
        # Only the causal-LM loss uses `num_items_in_batch`.
        self.model_accepts_loss_kwargs = task_type(self.model) == "CAUSAL_LM"

    def get_train_dataloader(self) -> DataLoader:
        dataset = self._remove_unused_columns(self.train_dataset, description="Training")
        loader = DataLoader(
            dataset, batch_sampler=self.course_batch_sampler, collate_fn=self.data_collator
        )
        return self.accelerator.prepare(loader)


def training_arguments(config: TrainConfig, evaluate: bool, output_dir: str | Path):
    """`TrainingArguments` with the same meaning as `config` (lr, schedule, batches, clipping,
    warm-up, weight decay, fused AdamW, device and precision, evaluation, checkpoints, seed).

    Introduced in chapter 5. A chapter prints this to show the job Trainer is given.
    """
    from transformers import TrainingArguments

    if not evaluate:
        eval_strategy, eval_steps = "no", None
    elif config.eval_every == "epoch":
        eval_strategy, eval_steps = "epoch", None
    else:
        eval_strategy, eval_steps = "steps", config.eval_every
    early = config.early_stopping_patience is not None and evaluate
    if config.checkpoint_every:
        save_strategy, save_steps = "steps", config.checkpoint_every
    elif early:  # load_best_model_at_end needs checkpoints on the evaluation schedule
        save_strategy, save_steps = eval_strategy, eval_steps
    else:
        save_strategy, save_steps = "no", None
    device = get_device(config.device)
    if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:  # transformers 5
        # A float warmup in [0, 1) is a ratio of the total steps; the training order is ours, so
        # Trainer's own sampling is switched off and evaluation batches stay in dataset order.
        version_specific = dict(
            warmup_steps=config.warmup_ratio, train_sampling_strategy="sequential"
        )
    else:  # transformers 4.x
        version_specific = dict(warmup_ratio=config.warmup_ratio, group_by_length=False)
    return TrainingArguments(
        output_dir=str(output_dir),
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
        use_cpu=device.type == "cpu",
        bf16=_resolve_mixed_precision(config.mixed_precision, device) == "bf16",
        eval_strategy=eval_strategy,
        eval_steps=eval_steps,
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=1 if save_strategy != "no" else None,
        load_best_model_at_end=early,
        metric_for_best_model=config.metric_for_best if early else None,
        greater_is_better=config.higher_is_better if early else None,
        logging_steps=config.log_every,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        dataloader_pin_memory=device.type == "cuda",
        disable_tqdm=not config.progress,
        **version_specific,
    )


def make_trainer(
    model: nn.Module,
    train_dataset,
    eval_dataset=None,
    config: TrainConfig | None = None,
    tokenizer=None,
    compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
    data_collator=None,
    callbacks=None,
) -> CourseTrainer:
    """A `transformers.Trainer` set up for the same job as `train(...)` with this config.

    Introduced in chapter 5. Same data preparation, collator, batches and optimizer steps, learning
    rate schedule, clipping, device and precision; freezing and LoRA are applied to the model first;
    early stopping maps to `EarlyStoppingCallback` + `load_best_model_at_end`. Call `.train()` on
    the result. Trainer writes its own `checkpoint-N` folders into `config.output_dir` (default:
    `<runs>/trainer`), never into the course loop's checkpoints. `trainer.predict` keeps the
    dataset's order.
    """
    from transformers import EarlyStoppingCallback

    from ..experiments import config_key, runs_dir

    config = config or TrainConfig()
    make_accelerator(config.device, config.mixed_precision)  # a clean accelerate state
    model = prepare_trainable(model, config.lora, config.freeze, config.freeze_k)
    causal_lm = task_type(model) == "CAUSAL_LM"
    train_data = _model_data(train_dataset, model, tokenizer, config)
    eval_data = (
        _model_data(eval_dataset, model, tokenizer, config) if eval_dataset is not None else None
    )
    output_dir = config.output_dir or runs_dir() / "trainer" / config_key(config.to_dict())
    args = training_arguments(config, eval_data is not None, output_dir)
    steps = LengthBucketBatchSampler(
        lengths_of(train_data),
        config.batch_size,
        config.grad_accum_steps,
        args.world_size,
        group_by_length=config.group_by_length,
        seed=config.seed,
    )
    callbacks = list(callbacks or [])
    if args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
    return CourseTrainer(
        model=model,
        args=args,
        data_collator=data_collator or default_collator(train_data, tokenizer, causal_lm),
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        batch_sampler=MicroBatchSampler(steps, config.batch_size),
    )
