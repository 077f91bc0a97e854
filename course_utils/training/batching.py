"""From a dataset to batches: tokenising, keeping the model's columns, length buckets, collators.

Introduced in chapter 5 (length buckets, dynamic padding); the collators cover every task of the
course (classification, token labels, causal language modelling, pairs).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
)

__all__ = [
    "LengthBucketBatchSampler",
    "MicroBatchSampler",
    "count_items",
    "default_collator",
    "keep_model_columns",
    "lengths_of",
    "tokenize_dataset",
]


def tokenize_dataset(
    dataset,
    tokenizer,
    max_length: int | None = 128,
    padding: bool | str = False,
    text_column: str = "text",
    label_column: str = "label",
):
    """Tokenise a `datasets.Dataset` of texts and rename its label column to `labels`.

    Introduced in chapter 3. A dataset that already has `input_ids` is only renamed.
    `padding=False` leaves padding to the collator (dynamic padding); `padding="max_length"`
    pads every example to `max_length`. The text columns stay; `keep_model_columns` drops what
    the model does not take.
    """
    if "input_ids" not in dataset.column_names:
        if tokenizer is None:
            raise ValueError(
                f"the dataset has no input_ids, so train/predict need the tokenizer to tokenise "
                f"its {text_column!r} column: pass tokenizer=..."
            )
        if text_column not in dataset.column_names:
            raise ValueError(
                f"no {text_column!r} column to tokenise (columns: {dataset.column_names}); "
                "set text_column= or tokenise the dataset first"
            )
        dataset = dataset.map(
            lambda batch: tokenizer(
                batch[text_column],
                truncation=max_length is not None,
                max_length=max_length,
                padding=padding,
            ),
            batched=True,
            new_fingerprint=tokenized_fingerprint(
                dataset, tokenizer, text_column, max_length, padding
            ),
        )
    if label_column in dataset.column_names and "labels" not in dataset.column_names:
        dataset = dataset.rename_column(label_column, "labels")
    return dataset


def tokenized_fingerprint(dataset, tokenizer, *settings) -> str:
    """The fingerprint `datasets` gives a tokenised copy of `dataset`, from what decides it.

    Pass it as `dataset.map(..., new_fingerprint=...)` with every setting of the mapped function
    that changes its output (a task's own functions put their name first, so that two functions
    never share a fingerprint). Without it `datasets` pickles the whole tokenizer (with its
    vocabulary) to hash the mapped function: 0.1-0.35 s per call, paid by every `train`,
    `predict` and task tokenisation (chapters 3-10).
    """
    from datasets.fingerprint import Hasher

    tokenizer_settings = (
        type(tokenizer).__name__,
        getattr(tokenizer, "name_or_path", ""),
        len(tokenizer),
        getattr(tokenizer, "truncation_side", ""),
        getattr(tokenizer, "padding_side", ""),
        getattr(tokenizer, "model_max_length", None),
    )
    return Hasher.hash((dataset._fingerprint, *settings, *tokenizer_settings))


def keep_model_columns(dataset, model: torch.nn.Module):
    """The dataset with only the columns `model.forward` accepts (as Trainer's
    `remove_unused_columns`), so extra columns (texts, ids, offsets) may stay in the data."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper takes (*args, **kwargs)
    forward = model.get_base_model().forward if hasattr(model, "get_base_model") else model.forward
    accepted = set(inspect.signature(forward).parameters)
    keep = [c for c in dataset.column_names if c in accepted]
    if "input_ids" not in keep and "input_ids" in dataset.column_names:
        keep.append("input_ids")
    return dataset.select_columns(keep)


def lengths_of(dataset) -> list[int]:
    """Token count of each example (`input_ids`), used to bucket and sort batches."""
    return [len(ids) for ids in dataset["input_ids"]]


def default_collator(dataset, tokenizer, causal_lm: bool = False):
    """The padding collator a dataset needs (dynamic padding to the longest in the batch).

    Token-level labels (NER) -> `DataCollatorForTokenClassification`; a causal LM with labels
    (instruction tuning) -> `DataCollatorForSeq2Seq`; a causal LM without labels -> next-token
    labels from the inputs; anything else -> `DataCollatorWithPadding`. Labels are padded with
    -100, which every loss ignores.
    """
    has_labels = "labels" in dataset.column_names
    token_labels = has_labels and isinstance(dataset[0]["labels"], list)
    if causal_lm and not has_labels:
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    if causal_lm and token_labels:
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    if token_labels:
        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=-100)
    return DataCollatorWithPadding(tokenizer)


def count_items(batch: dict, causal_lm: bool = False) -> int:
    """How many things the batch's mean loss averages over: label tokens, or examples.

    Token-level labels count the positions that are not -100 (shifted by one for a causal LM,
    whose loss predicts token t+1 from position t); otherwise every example counts once. The
    course loop weights each micro-batch by this, so an optimizer step's gradient is the mean
    over all its items, whatever the micro-batch sizes.
    """
    labels = batch.get("labels")
    if labels is not None and labels.ndim > 1:
        return int((labels[:, 1:] if causal_lm else labels).ne(-100).sum())
    first = next(v for v in batch.values() if torch.is_tensor(v))
    return int(first.shape[0])


class LengthBucketBatchSampler:
    """The examples of each optimizer step, in a seeded order; similar lengths share a step.

    Used by `train` and `make_trainer`. One item per optimizer step: the indices of its *global* batch,
    `batch_size * grad_accum_steps * num_processes` examples (the loop splits them between
    processes and into micro-batches). Each epoch: shuffle all indices (seed + epoch), cut them
    into chunks of `bucket_batches` steps, sort each chunk by length (less padding), cut it into
    steps and shuffle the steps. Only the last chunk can leave a short step: it always comes
    last, so no optimizer step mixes two buckets. The order depends only on the seed and the
    epoch, which is what makes resuming a run exact. `skip(n)` drops the first `n` steps of the
    current epoch (a resumed run).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        grad_accum_steps: int = 1,
        num_processes: int = 1,
        shuffle: bool = True,
        group_by_length: bool = True,
        seed: int = 0,
        bucket_batches: int = 50,
    ):
        self.lengths = np.asarray(lengths)
        self.step_size = batch_size * grad_accum_steps * num_processes
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.seed = seed
        self.bucket_batches = bucket_batches
        self.epoch = 0
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order `__iter__` yields (and clear any `skip`)."""
        self.epoch, self.skipped = epoch, 0

    def skip(self, steps: int) -> None:
        """Start the current epoch after its first `steps` steps (resuming mid-epoch)."""
        self.skipped = steps

    def steps(self) -> list[list[int]]:
        """The global batch of every optimizer step of the current epoch, in order."""
        n, size = len(self.lengths), self.step_size
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if not self.group_by_length:
            return [order[i : i + size].tolist() for i in range(0, n, size)]
        chunk = size * self.bucket_batches  # a multiple of the step size
        steps = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            steps += [part[i : i + size] for i in range(0, len(part), size)]
        full, short = [s for s in steps if len(s) == size], [s for s in steps if len(s) < size]
        if self.shuffle:
            full = [full[i] for i in rng.permutation(len(full))]
        return [s.tolist() for s in full + short]  # at most one short step, at the end

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.steps()[self.skipped :]

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.step_size)


class MicroBatchSampler:
    """The same steps cut into micro-batches of `batch_size`, for `transformers.Trainer`.

    Used by `make_trainer`, which feeds Trainer from this, so Trainer and the course
    loop see the same examples in the same optimizer steps.
    """

    def __init__(self, steps: LengthBucketBatchSampler, batch_size: int):
        self.steps, self.batch_size = steps, batch_size

    def set_epoch(self, epoch: int) -> None:
        self.steps.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        for step in self.steps:
            yield from (step[i : i + self.batch_size] for i in range(0, len(step), self.batch_size))

    def __len__(self) -> int:
        full, rest = divmod(len(self.steps.lengths), self.steps.step_size)
        return full * math.ceil(self.steps.step_size / self.batch_size) + math.ceil(
            rest / self.batch_size
        )
