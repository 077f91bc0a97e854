"""The course's training engine: its own loop on `accelerate`, and the same job with `Trainer`.

Introduced in chapter 3. By concern:

- `config`: `TrainConfig` (every setting of a run), `History` (what happened), `RunState`
  (what a checkpoint keeps);
- `parameters`: counting parameters, freezing layers, LoRA adapters;
- `batching`: tokenising, length-bucketed optimizer steps, collators for every task;
- `loop`: `train`, its core `train_step` (chapter 3 shows it), `predict`, the device;
- `checkpoints`: atomic checkpoints and exact resume;
- `trainer`: `make_trainer`, the same job with `transformers.Trainer` (chapter 5).
"""

from .batching import (
    LengthBucketBatchSampler,
    MicroBatchSampler,
    count_items,
    default_collator,
    keep_model_columns,
    tokenize_dataset,
)
from .config import History, RunState, TrainConfig, greater_is_better
from .loop import make_accelerator, predict, seed_everything, train, train_step
from .parameters import apply_lora, count_parameters, freeze_layers, task_type, transformer_layers
from .trainer import CourseTrainer, make_trainer, training_arguments

__all__ = [
    "CourseTrainer",
    "History",
    "LengthBucketBatchSampler",
    "MicroBatchSampler",
    "RunState",
    "TrainConfig",
    "apply_lora",
    "count_items",
    "count_parameters",
    "default_collator",
    "freeze_layers",
    "greater_is_better",
    "keep_model_columns",
    "make_accelerator",
    "make_trainer",
    "predict",
    "seed_everything",
    "task_type",
    "tokenize_dataset",
    "train",
    "train_step",
    "training_arguments",
    "transformer_layers",
]
