# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Tools and resources
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/course-llm/finetuning-prompt-course/blob/main/chapters/08_tools.ipynb)
#
# The source article's §7 is a list: books, courses, IDEs, "debugging and performance analysis
# tools", frameworks and papers. A list does not tell you what a tool shows you, and several of
# its entries are wrong. This chapter uses each tool on the course's own model (MiniLM) and data
# (movie reviews) and measures what it shows, then gives a reading list whose every entry was
# checked.
#
# **In this chapter you will**
#
# - use the Hugging Face stack the way a real project does: `datasets` (`map`, batching,
#   `filter`, features, the cache), fast tokenizers (offsets, truncation, padding strategies, and
#   the padding waste measured), `Trainer` with its `TrainingArguments` spelled out and a callback
#   of your own, `peft` and `accelerate`;
# - log runs to **TensorBoard** from `Trainer` and from the course's own loop, read the event
#   files back in the notebook, plot them, and learn how to open TensorBoard in Jupyter and Colab;
# - **profile** one fine-tuning step with `torch.profiler`: where the time goes, the top
#   operators, a Chrome trace; count its FLOPs and compare with the 6·N·tokens rule; measure
#   throughput and the model-FLOPs utilisation (MFU) against this machine's measured peak;
# - **debug by measurement**: gradient norms per layer, a diverging learning rate caught by a
#   check, and two planted bugs (labels shuffled against their texts; a frozen model that
#   "trains") with the measurement that catches each;
# - see what **reproducibility** takes: the same seed gives the same numbers, and what breaks it;
# - train with **two processes** (`torchrun`) from the notebook and compare with one;
# - get a **verified reading list** for §7, with the article's wrong entries corrected;
# - solve four auto-checked exercises, one of them a small experiment.
#
# How long the full run takes on the course's 2-core CPU is in the parameters cell below.

# %% [markdown]
# ## Set-up
#
# The first cell installs the course when the notebook runs on Google Colab (it clones the
# repository, so the data files come too); on your own machine, where you installed the course with
# `bash scripts/setup.sh`, it does nothing.

# %%
import importlib.util
import os
import subprocess
import sys

COURSE_REPO = "https://github.com/course-llm/finetuning-prompt-course"
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB and importlib.util.find_spec("course_utils") is None:
    clone = ["git", "clone", "--depth", "1", COURSE_REPO, "/content/course"]
    subprocess.run(clone, check=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "-e", "/content/course"]
    subprocess.run(pip, check=True)
    sys.path.insert(0, "/content/course")
    os.chdir("/content/course/chapters")

# %% [markdown]
# The **parameters**: `SMOKE = True` runs tiny settings (how the tests run every notebook); the
# stored outputs come from a full run (`SMOKE = False`). `USE_CACHE = True` reuses the finished
# runs of the learning-rate sweep and of the planted bugs (small JSON files under
# `runs/cache/ch08`); everything else — the TensorBoard runs, the profile, the reproducibility
# runs and the two-process run — is measured afresh every time, since measuring is its point.

# %% tags=["parameters"]
# Run All runs the full experiment that produced the stored outputs: 6.4 min on 2 CPU cores, no GPU.
# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).
SMOKE = False
DEVICE = "auto"  # "auto", "cpu", "cuda" or "mps"
ENCODER = "minilm"  # a course model, a local folder or a Hub id
SEED = 0
USE_CACHE = True  # reuse the finished sweep and planted-bug runs

# %%
import dataclasses
import inspect
import json
import math
import shlex
import shutil
import time
import warnings
from pathlib import Path

import accelerate
import datasets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import peft
import torch
import transformers
from IPython.display import Markdown, display
from torch.profiler import ProfilerActivity, profile, record_function
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

from course_utils import data_parallel
from course_utils.applications import wilson_interval
from course_utils.bibliography import format_entry, load_bibliography, source_errata
from course_utils.data import load_movie_reviews
from course_utils.debugging import (
    GradNormRecorder,
    NonFiniteWatch,
    nonfinite_parameters,
    parameter_change,
    run_record,
    snapshot,
)
from course_utils.evaluation import compute_metrics
from course_utils.exercises import chapter_exercises
from course_utils.experiments import RunCache, runs_dir
from course_utils.models import get_device, load_classifier, load_tokenizer
from course_utils.pretraining import non_embedding_parameters
from course_utils.tools import (
    TensorBoardLogger,
    matmul_peak_flops,
    read_scalars,
    region_times,
    time_by_category,
    training_flops,
)
from course_utils.training import (
    LengthBucketBatchSampler,
    TrainConfig,
    count_parameters,
    keep_model_columns,
    make_accelerator,
    seed_everything,
    tokenize_dataset,
    train,
)

transformers.utils.logging.disable_progress_bar()  # keep the stored outputs short
transformers.utils.logging.set_verbosity_error()
datasets.disable_progress_bars()
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*TensorFloat32.*")
notebook_start = time.perf_counter()

N_TRAIN = 16 if SMOKE else 1024  # training reviews of the TensorBoard runs and the planted bugs
N_VAL = 16 if SMOKE else 500  # validation reviews that judge them
EPOCHS = 1 if SMOKE else 2
BATCH = 8 if SMOKE else 32  # SMOKE: still two steps an epoch
LR = 1e-4  # chapter 5's learning rate for full fine-tuning of MiniLM
LORA_LR = 1e-3  # chapter 3's learning rate for LoRA
MAX_LENGTH = 64  # covers every movie review but a handful (section 8.1)
LOG_EVERY = 1 if SMOKE else 4  # optimizer steps per logged training loss
N_MAP = 256 if SMOKE else None  # reviews for the datasets timings (None: the whole split)
N_TIME = 32 if SMOKE else 512  # reviews timed under each padding strategy
PROF_BATCH = 8 if SMOKE else 32  # the profiled step: PROF_BATCH reviews x MAX_LENGTH tokens
PROFILED_STEPS, TIMED_STEPS = (1, 2) if SMOKE else (3, 10)
PEAK_N = 1024 if SMOKE else 2048  # the matrix size of the peak measurement
LR_GRID = [1e-4, 1e3] if SMOKE else [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e3]
SWEEP_STEPS = 2 if SMOKE else 16  # optimizer steps per learning rate
REPRO_N, REPRO_STEPS = (32, 2) if SMOKE else (192, 12)
DDP_TRAIN, DDP_BATCH = (32, 16) if SMOKE else (512, 32)
device = get_device(DEVICE)
RUNS = runs_dir() / "ch08"
RUNS.mkdir(parents=True, exist_ok=True)
cache = RunCache(runs_dir() / "cache" / "ch08", enabled=USE_CACHE)
torch.manual_seed(SEED)
print(f"mode: {'SMOKE (tiny settings)' if SMOKE else 'full'}; device: {device}; "
      f"{torch.get_num_threads()} CPU threads; runs folder: {RUNS}")  # fmt: skip

# %% [markdown]
# ## 8.1 The Hugging Face stack in practice
#
# Five libraries do most of the work of every chapter, each with one job:
#
# | library | its job | in this course |
# | --- | --- | --- |
# | `datasets` | tables of examples on disk (Apache Arrow), `map`/`filter` with a cache | every split, every tokenisation |
# | `tokenizers` (behind `transformers`' fast tokenizers) | text → token ids, in Rust, with character offsets | MiniLM's WordPiece, SmolLM2's BPE |
# | `transformers` | the models, and `Trainer` | every model; `Trainer` in chapter 5 and below |
# | `peft` | parameter-efficient fine-tuning (LoRA, prompt tuning, ...) | chapters 3, 6, 7, 9 |
# | `accelerate` | one training loop for CPU, GPU, several GPUs and machines | the course's own loop |
#
# The versions this notebook ran with:

# %%
versions = {"torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "peft": peft.__version__,
            "accelerate": accelerate.__version__}  # fmt: skip
print(", ".join(f"{name} {version}" for name, version in versions.items()))

# %% [markdown]
# ### `datasets`: features, `map`, batching, `filter`, the cache
#
# A `Dataset` is a table with typed columns, its **features**. The label column is a
# `ClassLabel`: integers on disk, names attached, so `int2str` and `str2int` need no dictionary
# of your own.

# %%
reviews = load_movie_reviews()
train_split, val_split = reviews["train"], reviews["validation"]
print(reviews)
print(train_split.features)
label_feature = train_split.features["label"]
print(f"label names: {label_feature.names}; 1 -> {label_feature.int2str(1)!r}; "
      f"first row: {train_split[0]}")  # fmt: skip

# %% [markdown]
# `map` applies a function to every row and adds the columns it returns. Called with
# `batched=True`, the function receives a thousand rows at a time (a dict of lists), so a fast
# tokenizer tokenises them in one call instead of a thousand. Both give the same tokens; the
# cell measures the time (`load_from_cache_file=False`, so that nothing is read from an earlier
# run):

# %%
tokenizer = load_tokenizer(ENCODER)
map_set = train_split if N_MAP is None else train_split.select(range(N_MAP))


def tokenize_one(example):
    return tokenizer(example["text"], truncation=True, max_length=MAX_LENGTH)


def tokenize_batch(batch):
    return tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)


t0 = time.perf_counter()
one_by_one = map_set.map(tokenize_one, load_from_cache_file=False)
t_one = time.perf_counter() - t0
t0 = time.perf_counter()
batched = map_set.map(tokenize_batch, batched=True, load_from_cache_file=False)
t_batched = time.perf_counter() - t0
same_tokens = list(one_by_one["input_ids"]) == list(batched["input_ids"])
print(f"{len(map_set)} reviews: one at a time {t_one:.2f} s, batched {t_batched:.2f} s "
      f"({t_one / t_batched:.1f}x); identical tokens: {same_tokens}")  # fmt: skip
print(f"new columns: {[c for c in batched.column_names if c not in map_set.column_names]}")

# %% [markdown]
# Here batching gains little (the ratio printed above, one timing of each): the reviews are
# short, so each call's overhead matters less than `map`'s own per-row work of writing the
# new columns (an explanation, not measured here). Batching pays more for functions with a
# high cost per call.
#
# `filter` keeps the rows for which a function returns `True` (batched too). How many reviews
# are short, and how many does `max_length` cut?

# %%
with_lengths = batched.map(lambda b: {"n_tokens": [len(ids) for ids in b["input_ids"]]},
                           batched=True)  # fmt: skip
short = with_lengths.filter(lambda b: [n <= 16 for n in b["n_tokens"]], batched=True)
n_cut = int(sum(n >= MAX_LENGTH for n in with_lengths["n_tokens"]))
print(f"{len(short)} of {len(with_lengths)} reviews have at most 16 tokens; {n_cut} reach "
      f"max_length = {MAX_LENGTH} and are truncated")  # fmt: skip
as_tensors = with_lengths.select_columns(["input_ids", "label"]).with_format("torch")
print(f"with_format('torch'): {type(as_tensors[0]['input_ids']).__name__} "
      f"of shape {tuple(as_tensors[0]['input_ids'].shape)}, label {as_tensors[0]['label']!r}")  # fmt: skip

# %% [markdown]
# **The cache.** A dataset read from Arrow files on disk (`load_dataset`, `load_from_disk`)
# writes the result of every `map` next to them, under a name computed from a *fingerprint*:
# a hash of the input's fingerprint and of the function (its code and the objects it uses, the
# tokenizer and `max_length` included). Calling the same `map` again reads that file instead of
# recomputing; changing the function changes the fingerprint and recomputes. (The course's
# datasets are built in memory, where `map` has nowhere to write, so the cell saves one to disk
# first.)

# %%
cache_demo = RUNS / "datasets-cache-demo"
shutil.rmtree(cache_demo, ignore_errors=True)
map_set.save_to_disk(str(cache_demo / "reviews"))
on_disk = datasets.load_from_disk(str(cache_demo / "reviews"))


def tokenize_batch_32(batch):
    return tokenizer(batch["text"], truncation=True, max_length=32)


cache_rows = []
for label, function in (("first call", tokenize_batch), ("same call again", tokenize_batch),
                        ("max_length 32 instead", tokenize_batch_32)):  # fmt: skip
    t0 = time.perf_counter()
    result = on_disk.map(function, batched=True)
    cache_rows.append({"map": label, "seconds": time.perf_counter() - t0,
                       "fingerprint": result._fingerprint,
                       "cache file": Path(result.cache_files[0]["filename"]).name})  # fmt: skip
cache_table = pd.DataFrame(cache_rows).set_index("map")
display(cache_table.round(3))
cache_hit = cache_table["fingerprint"].iloc[0] == cache_table["fingerprint"].iloc[1]
print(f"same fingerprint, read from the cache: {cache_hit} "
      f"({cache_table['seconds'].iloc[0] / cache_table['seconds'].iloc[1]:.0f}x faster); "
      f"a changed function has a new fingerprint: "
      f"{cache_table['fingerprint'].iloc[2] != cache_table['fingerprint'].iloc[0]}")  # fmt: skip

# %% [markdown]
# A fingerprint is also a cheap identity card for a dataset: section 8.8 records it with each
# run. (A function that cannot be hashed — one that uses an unpicklable object — gets a random
# fingerprint, with a warning, and is never cached.)
#
# ### Fast tokenizers: offsets, truncation, padding
#
# A *fast* tokenizer is the Rust `tokenizers` library behind the `transformers` interface. Besides
# speed it keeps track of where every token came from: `return_offsets_mapping=True` gives each
# token's character span in the text, and `word_ids()` the word it belongs to. That is how a
# token-level prediction (an entity tag, an answer span in chapter 7) is mapped back to the text.

# %% tags=["nbval-check-output"]
print(f"{type(tokenizer).__name__}: fast = {tokenizer.is_fast}, backend "
      f"{type(tokenizer.backend_tokenizer).__module__}.{type(tokenizer.backend_tokenizer).__name__}")  # fmt: skip
example = "The film's ending was unbelievably good!"
encoding = tokenizer(example, return_offsets_mapping=True)
offsets_table = pd.DataFrame({
    "token": encoding.tokens(), "id": encoding["input_ids"],
    "characters": [f"{a}-{b}" for a, b in encoding["offset_mapping"]],
    "text": [example[a:b] for a, b in encoding["offset_mapping"]],
    "word": encoding.word_ids(),
})  # fmt: skip
print(offsets_table.T.to_string(header=False))

# %% [markdown]
# *unbelievably* is one word but five WordPiece tokens (`un ##bel ##ie ##va ##bly`), all with
# word id 6; the special tokens `[CLS]` and `[SEP]` have no span (0-0) and no word.
#
# **Truncation** cuts a text to `max_length` tokens (keeping `[CLS]` and `[SEP]`). With
# `return_overflowing_tokens=True` nothing is lost: the text becomes several windows, each
# overlapping the previous by `stride` tokens — how question answering reads long documents.

# %%
longest_review = max(train_split["text"], key=len)
windows = tokenizer(longest_review, truncation=True, max_length=24, stride=6,
                    return_overflowing_tokens=True)  # fmt: skip
print(f"the longest review: {len(tokenizer(longest_review)['input_ids'])} tokens -> "
      f"{len(windows['input_ids'])} windows of at most 24, overlapping by 6:")  # fmt: skip
for ids in windows["input_ids"]:
    print(f"  {len(ids):2d} tokens: {tokenizer.decode(ids)}")

# %% [markdown]
# **Padding.** A batch is a rectangle, so shorter texts are padded (and `attention_mask` marks
# the padding). Three strategies: `padding=False` (lists of different lengths; a *collator*
# pads each batch later), `"longest"` (to the longest text of the batch) and `"max_length"` (to
# a fixed length):

# %%
sample = list(train_split["text"][:4])
for padding in (False, "longest", "max_length"):
    out = tokenizer(sample, padding=padding, truncation=True, max_length=MAX_LENGTH)
    print(f"padding={padding!r:13} lengths {[len(ids) for ids in out['input_ids']]}, "
          f"attention_mask of the first: {sum(out['attention_mask'][0])} ones")  # fmt: skip

# %% [markdown]
# **Padding waste, measured.** Padded positions cost as much compute as real tokens. Over the
# whole training split, with batches of 32: padding everything to a fixed 128 tokens (what many
# tutorials do), padding each random batch to its longest review (`DataCollatorWithPadding`,
# "dynamic padding"), and the course loop's length-bucketed batches (`LengthBucketBatchSampler`:
# reviews of similar length share a batch). Then the time of one inference pass of MiniLM over
# the same reviews under each strategy.

# %%
lengths = np.array([len(ids) for ids in tokenizer(list(train_split["text"]), truncation=True,
                                                  max_length=128)["input_ids"]])  # fmt: skip


def padding_share(lengths: np.ndarray, batches, pad_to: int | None = None) -> tuple[float, int]:
    """Share of padded positions, and positions fed, when each batch is padded to its longest
    example (or to `pad_to`)."""
    real = fed = 0
    for batch in batches:
        batch_lengths = lengths[np.asarray(batch)]
        real += int(batch_lengths.sum())
        fed += int(pad_to or batch_lengths.max()) * len(batch_lengths)
    return 1 - real / fed, fed


def random_batches(n: int, size: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + size] for i in range(0, n, size)]


STRATEGIES = {  # name: (how the batches are formed, fixed length or None)
    "fixed length 128": ("random", 128),
    "dynamic padding, random batches": ("random", None),
    "dynamic padding, length buckets": ("buckets", None),
}


def batches_for(lengths, kind, size=32, seed=SEED):
    if kind == "random":
        return random_batches(len(lengths), size, seed)
    return LengthBucketBatchSampler(lengths, size, seed=seed).steps()


waste = {name: padding_share(lengths, batches_for(lengths, kind), pad_to)
         for name, (kind, pad_to) in STRATEGIES.items()}  # fmt: skip
print(f"{len(lengths)} training reviews, {lengths.sum()} real tokens "
      f"(median {np.median(lengths):.0f}, max {lengths.max()})")  # fmt: skip

# %%
seed_everything(SEED)
timing_model, _ = load_classifier(ENCODER, device=DEVICE)
timing_model.eval()
time_texts = list(train_split.shuffle(seed=SEED).select(range(N_TIME))["text"])
time_lengths = np.array([len(ids) for ids in tokenizer(time_texts, truncation=True,
                                                       max_length=128)["input_ids"]])  # fmt: skip


@torch.no_grad()
def inference_seconds(batches, pad_to: int | None) -> float:
    start = time.perf_counter()
    for batch in batches:
        texts = [time_texts[int(i)] for i in batch]
        inputs = tokenizer(texts, truncation=True, max_length=128, return_tensors="pt",
                           padding="max_length" if pad_to else "longest").to(device)  # fmt: skip
        timing_model(**inputs)
    return time.perf_counter() - start


inference_seconds(batches_for(time_lengths, "random")[:2], None)  # warm-up
padding_rows = {}
for name, (kind, pad_to) in STRATEGIES.items():
    share, fed = waste[name]
    seconds = inference_seconds(batches_for(time_lengths, kind), pad_to)
    padding_rows[name] = {"padding share (training split)": share,
                          "positions fed (training split)": fed,
                          f"inference time, {N_TIME} reviews (s)": seconds}  # fmt: skip
padding_table = pd.DataFrame(padding_rows).T
display(padding_table.style.format({"padding share (training split)": "{:.1%}",
                                    "positions fed (training split)": "{:,.0f}",
                                    f"inference time, {N_TIME} reviews (s)": "{:.2f}"}))  # fmt: skip

fig, ax = plt.subplots(figsize=(7, 2.8))
names = list(padding_table.index)
ax.barh(names[::-1], padding_table[f"inference time, {N_TIME} reviews (s)"][::-1], color="tab:blue")
for y, name in enumerate(names[::-1]):
    ax.text(padding_table.loc[name, f"inference time, {N_TIME} reviews (s)"], y,
            f"  {padding_table.loc[name, 'padding share (training split)']:.0%} padding",
            va="center", fontsize=8)  # fmt: skip
ax.set_xlabel(f"seconds for one MiniLM pass over {N_TIME} reviews (batches of 32)")
ax.set_title("Padding waste costs time")
ax.set_xlim(0, padding_table[f"inference time, {N_TIME} reviews (s)"].max() * 1.45)
fig.tight_layout()
plt.show()
fixed, bucketed = (padding_table.iloc[i][f"inference time, {N_TIME} reviews (s)"] for i in (0, 2))
print(f"fixed length 128 -> length buckets: {fixed / bucketed:.1f}x less time for the same "
      f"predictions")  # fmt: skip

# %% [markdown]
# Padding to a fixed 128 tokens turns most of the computation into padding, because movie
# snippets are short; dynamic padding removes most of that, and grouping similar lengths removes
# most of the rest. The inference times (one timing each, on a random sample of the training
# reviews) roughly follow the positions fed: the computation is paid per position, padding
# included.
#
# ## 8.2 `Trainer` and `TrainingArguments`, with a callback, logged to TensorBoard
#
# Chapter 5 built `Trainer` through the course's `make_trainer`. Here it is by hand, with every
# argument that matters written out — the way you would in a project — and logging to
# TensorBoard with `report_to=["tensorboard"]`. The data: `N_TRAIN` training reviews and
# `N_VAL` validation reviews, drawn at random (the same for every run of this chapter).

# %%
train_set = train_split.shuffle(seed=SEED).select(range(N_TRAIN))
val_set = val_split.shuffle(seed=SEED).select(range(N_VAL))
train_tok = tokenize_dataset(train_set, tokenizer, MAX_LENGTH)  # ids; label -> labels
val_tok = tokenize_dataset(val_set, tokenizer, MAX_LENGTH)
majority = max(np.mean(val_set["label"]), 1 - np.mean(val_set["label"]))
print(f"{len(train_set)} training and {len(val_set)} validation reviews; "
      f"majority class on validation: {majority:.1%}")  # fmt: skip
TB_ROOT = RUNS / "tensorboard"
shutil.rmtree(TB_ROOT, ignore_errors=True)  # event files of this run only

# %% [markdown]
# A **callback** is how you add behaviour to `Trainer` without copying its loop: it receives
# events (`on_step_end`, `on_log`, `on_evaluate`, ...) with the arguments, the training state
# and a `control` object whose flags stop training, trigger an evaluation or a save. This one
# guards against divergence: it stops the run as soon as the logged loss is not finite or is
# `factor` times its first value (section 8.7 explains the check).


# %%
class LossGuard(TrainerCallback):
    """Stops training when the logged loss is NaN/inf or above `factor` x the first logged loss."""

    def __init__(self, factor: float = 3.0):
        self.factor, self.first, self.stopped_at = factor, None, None

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if self.first is None:
            self.first = loss
        if not math.isfinite(loss) or loss > self.factor * self.first:
            self.stopped_at = state.global_step
            control.should_training_stop = True


os.environ["TENSORBOARD_LOGGING_DIR"] = str(TB_ROOT / "trainer")  # transformers 5: no logging_dir
bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
args = TrainingArguments(
    output_dir=str(RUNS / "trainer"),
    # the optimisation: AdamW (fused), linear decay after a 10% warm-up, clipping at 1.0
    learning_rate=LR,
    num_train_epochs=EPOCHS,
    per_device_train_batch_size=BATCH,
    per_device_eval_batch_size=128,
    gradient_accumulation_steps=1,
    weight_decay=0.01,
    max_grad_norm=1.0,
    lr_scheduler_type="linear",
    warmup_steps=0.1,  # a float below 1 is a share of the total steps (transformers 5)
    optim="adamw_torch_fused",
    # device and precision: bf16 autocast on a GPU that has it, fp32 on this CPU
    use_cpu=device.type == "cpu",
    bf16=bf16,
    # evaluation, logging, checkpoints
    eval_strategy="epoch",
    logging_strategy="steps",
    logging_steps=LOG_EVERY,
    report_to=["tensorboard"],
    save_strategy="no",
    # the data: similar lengths in a batch (less padding), the rows the model does not take dropped
    train_sampling_strategy="group_by_length",
    remove_unused_columns=True,
    dataloader_num_workers=0,
    dataloader_pin_memory=device.type == "cuda",
    seed=SEED,
    data_seed=SEED,
    disable_tqdm=True,
)
defaults = TrainingArguments(output_dir=args.output_dir).to_dict()
changed = {k: v for k, v in args.to_dict().items() if defaults.get(k) != v}
print(f"TrainingArguments has {len(defaults)} fields; these differ from their defaults:")
display(pd.Series({k: str(v) for k, v in changed.items()}, name="value").to_frame())

# %% [markdown]
# Everything not in that table keeps its default (`print(args)` shows all of them). The run:

# %%
make_accelerator(DEVICE)  # a clean accelerate state for Trainer (as make_trainer does)
seed_everything(SEED)  # the classification head starts random: seed it
trainer_model, _ = load_classifier(ENCODER, device=DEVICE)
guard = LossGuard()
trainer = Trainer(model=trainer_model, args=args, train_dataset=train_tok, eval_dataset=val_tok,
                  data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                  compute_metrics=compute_metrics, callbacks=[guard])  # fmt: skip
trainer.remove_callback(transformers.PrinterCallback)  # no log lines in the output
print("callbacks:", [type(c).__name__ for c in trainer.callback_handler.callbacks])
trainer_output = trainer.train()
trainer_eval = [row for row in trainer.state.log_history if "eval_accuracy" in row][-1]
print(f"Trainer: {trainer_output.global_step} steps, {trainer_output.metrics['train_runtime']:.0f} s "
      f"({trainer_output.metrics['train_samples_per_second']:.1f} reviews/s); validation accuracy "
      f"{trainer_eval['eval_accuracy']:.1%}; the guard stopped it: {guard.stopped_at is not None}")  # fmt: skip

# %% [markdown]
# The same guard on a run with an absurd learning rate (10³, everything else equal), for a few
# steps: the callback ends it by itself.

# %%
bad_args = dataclasses.replace(args, learning_rate=1e3, max_steps=SWEEP_STEPS, logging_steps=1,
                               eval_strategy="no", report_to="none")  # fmt: skip
seed_everything(SEED)
bad_model, _ = load_classifier(ENCODER, device=DEVICE)
bad_guard = LossGuard()
bad_trainer = Trainer(model=bad_model, args=bad_args, train_dataset=train_tok,
                      data_collator=DataCollatorWithPadding(tokenizer), callbacks=[bad_guard])  # fmt: skip
bad_trainer.remove_callback(transformers.PrinterCallback)
bad_trainer.train()
bad_losses = [row["loss"] for row in bad_trainer.state.log_history if "loss" in row]
print(f"learning rate 1e3: losses {[f'{x:.3g}' for x in bad_losses]}; the guard stopped the run "
      f"at step {bad_guard.stopped_at} of {SWEEP_STEPS}")  # fmt: skip

# %% [markdown]
# ## 8.3 The course loop: `accelerate`, a TensorBoard callback, and `peft`
#
# The course's loop (`course_utils.training.train`, chapter 3) is built on `accelerate`:
# `Accelerator` decides the device, the precision and the number of processes, and
# `accelerator.prepare` wraps model and optimizer accordingly; the loop itself stays plain
# PyTorch. What `accelerate` found here:

# %%
accelerator = make_accelerator(DEVICE)
print(accelerator.state)

# %% [markdown]
# The course loop calls each of its `callbacks` as `callback(step, history)` after every
# optimizer step. `TensorBoardLogger` (in `course_utils/tools.py`) is such a callback: it writes
# the rows the loop added to the `History` with TensorBoard's `SummaryWriter`, under the tag
# names Trainer uses, so that the two runs plot alike:

# %%
display(Markdown(f"```python\n{inspect.getsource(TensorBoardLogger.__call__)}```"))

# %% [markdown]
# The same job as the Trainer run (same reviews, learning rate, schedule, batch size, epochs),
# with the course loop. A second callback, `GradNormRecorder`, records the gradient norm of every
# layer at every step (section 8.7 reads it).

# %%
loop_config = TrainConfig(lr=LR, num_epochs=EPOCHS, batch_size=BATCH, eval_batch_size=128,
                          max_length=MAX_LENGTH, warmup_ratio=0.1, weight_decay=0.01,
                          scheduler="linear", eval_every="epoch", metric_for_best="accuracy",
                          log_every=LOG_EVERY, seed=SEED, device=DEVICE, progress=False)  # fmt: skip
seed_everything(SEED)
loop_model, _ = load_classifier(ENCODER, device=DEVICE)
tb_loop = TensorBoardLogger(TB_ROOT / "course-loop", config=loop_config.to_dict())
grad_norms = GradNormRecorder(loop_model)
loop_history = train(loop_model, train_set, val_set, loop_config, tokenizer, compute_metrics,
                     callbacks=[tb_loop, grad_norms])  # fmt: skip
tb_loop.close()
grad_norms.remove()
print(f"course loop: {loop_history.total_steps} steps, {loop_history.train_time_s:.0f} s "
      f"({loop_history.samples_per_second:.1f} reviews/s); validation accuracy "
      f"{loop_history.final_metrics['accuracy']:.1%}")  # fmt: skip

# %% [markdown]
# **`peft`.** LoRA (Hu et al., [2021](https://arxiv.org/abs/2106.09685); chapter 3) freezes the
# model and learns a small low-rank update of chosen weight matrices. With `peft` it is a
# configuration and one call; the classification head, new and random, is trained in full
# (`task_type=SEQ_CLS` puts it in `modules_to_save`). Same data and schedule, chapter 3's
# learning rate for LoRA:

# %%
seed_everything(SEED)
lora_base, _ = load_classifier(ENCODER, device=DEVICE)
full_bytes = 4 * count_parameters(lora_base)  # fp32 weights of the whole model
lora_config = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=8, lora_alpha=16,
                              lora_dropout=0.1, target_modules=["query", "value"])  # fmt: skip
lora_model = peft.get_peft_model(lora_base, lora_config)
lora_model.print_trainable_parameters()
lora_train_config = dataclasses.replace(loop_config, lr=LORA_LR)
tb_lora = TensorBoardLogger(TB_ROOT / "course-loop-lora", config=lora_train_config.to_dict())
lora_history = train(lora_model, train_set, val_set, lora_train_config, tokenizer, compute_metrics,
                     callbacks=[tb_lora])  # fmt: skip
tb_lora.close()
adapter_dir = RUNS / "lora-adapter"
lora_model.save_pretrained(str(adapter_dir))
adapter_bytes = sum(p.stat().st_size for p in adapter_dir.rglob("*") if p.is_file())
print(f"LoRA: validation accuracy {lora_history.final_metrics['accuracy']:.1%} in "
      f"{lora_history.train_time_s:.0f} s; adapter on disk {adapter_bytes / 1e6:.2f} MB vs "
      f"{full_bytes / 1e6:.0f} MB for the full model")  # fmt: skip

# %% [markdown]
# With the same short budget and one seed, LoRA ends below full fine-tuning on validation;
# chapter 3 compares the two fairly, each with its own learning-rate search.
#
# For deployment the adapter can be merged into the weights (`merge_and_unload`): a plain
# `BertForSequenceClassification` again, no `peft` needed, and the same predictions.

# %%
probe = tokenizer(list(val_set["text"][:8]), padding=True, return_tensors="pt").to(device)
lora_model.eval()
with torch.no_grad():
    before_merge = lora_model(**probe).logits
    merged = lora_model.merge_and_unload()
    after_merge = merged(**probe).logits
print(f"merged model: {type(merged).__name__}; largest logit difference "
      f"{(before_merge - after_merge).abs().max().item():.1e}")  # fmt: skip

# %% [markdown]
# ## 8.4 TensorBoard: read the event files back and plot them
#
# Three runs wrote event files under `runs/ch08/tensorboard`: Trainer (through its own
# `TensorBoardCallback`), the course loop and its LoRA run (through `TensorBoardLogger`).
# TensorBoard's `EventAccumulator` reads them without a server (`course_utils.tools.read_scalars`
# wraps it); `tbparse` is a second reader, shown here to agree with the first.

# %%
scalars = read_scalars(TB_ROOT)
print("points per run and tag:")
display(scalars.pivot_table(index="tag", columns="run", values="step", aggfunc="count").fillna(0)
        .astype(int))  # fmt: skip
from tbparse import SummaryReader  # noqa: E402

tbparse_loss = SummaryReader(str(TB_ROOT / "course-loop")).scalars
tbparse_loss = tbparse_loss[tbparse_loss.tag == "train/loss"].sort_values("step")
ours = scalars[(scalars.run == "course-loop") & (scalars.tag == "train/loss")].sort_values("step")
print(f"tbparse reads the same {len(tbparse_loss)} loss values: "
      f"{np.allclose(tbparse_loss['value'].to_numpy(), ours['value'].to_numpy())}")  # fmt: skip

# %%
RUN_NAMES = {"trainer": "Trainer (full fine-tuning)", "course-loop": "course loop (full fine-tuning)",
             "course-loop-lora": "course loop, LoRA r=8"}  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for run, name in RUN_NAMES.items():
    rows = scalars[(scalars.run == run)]
    loss = rows[rows.tag == "train/loss"].sort_values("step")
    axes[0].plot(loss["step"], loss["value"], label=name, alpha=0.85)
    accuracy = rows[rows.tag == "eval/accuracy"].sort_values("step")
    axes[1].plot(accuracy["step"], accuracy["value"], "o-", label=name)
axes[0].axhline(math.log(2), color="grey", ls=":", label="ln 2 (guessing)")
axes[0].set(xlabel="optimizer step", ylabel=f"training loss (mean of {LOG_EVERY} steps)",
            title="train/loss, read back from the event files")  # fmt: skip
axes[1].axhline(majority, color="grey", ls=":", label="majority class")
axes[1].set(xlabel="optimizer step", ylabel="validation accuracy", title="eval/accuracy")
axes[0].legend(fontsize=8)
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Trainer and the course loop do the same job with different random batch orders, so their
# curves differ in detail, not in shape. Trainer also logs `train/grad_norm` and
# `train/epoch`; the course loop's logger writes what its `History` holds.
#
# **Opening TensorBoard.** In Jupyter or Colab two magic commands start it inside the notebook:
#
# ```python
# %load_ext tensorboard
# %tensorboard --logdir runs/ch08/tensorboard
# ```
#
# In a terminal, `tensorboard --logdir runs/ch08/tensorboard` and open http://localhost:6006.
# The cell below does it only in an interactive session (a server has no place in the stored
# outputs or the tests).

# %%
INTERACTIVE = IN_COLAB or "JPY_SESSION_NAME" in os.environ or "VSCODE_PID" in os.environ
if INTERACTIVE and importlib.util.find_spec("tensorboard"):
    get_ipython().run_line_magic("load_ext", "tensorboard")  # noqa: F821
    get_ipython().run_line_magic("tensorboard", f"--logdir {TB_ROOT}")  # noqa: F821
else:
    print(f"(not an interactive session: run `tensorboard --logdir {TB_ROOT}` yourself)")

# %% [markdown]
# ## 8.5 Profiling one fine-tuning step
#
# The source names "Python Profiler" and "TensorFlow Debugger" for performance work. For PyTorch
# the tool is `torch.profiler`: it records every operator (and, on a GPU, every kernel) with its
# time and input shapes. We profile the fine-tuning step of MiniLM exactly as `train_step` does
# it — data, forward, backward, clipping and the fused AdamW update — on batches of `PROF_BATCH`
# reviews padded to `MAX_LENGTH` tokens (a fixed shape, so that FLOPs can be counted exactly
# below), each phase marked with `record_function`.

# %%
seed_everything(SEED)
prof_model, _ = load_classifier(ENCODER, device=DEVICE)
prof_model.train()
prof_rows = keep_model_columns(
    tokenize_dataset(train_set, tokenizer, MAX_LENGTH, padding="max_length"), prof_model
)
collate = DataCollatorWithPadding(tokenizer)
optimizer = torch.optim.AdamW(prof_model.parameters(), lr=LR, weight_decay=0.01, fused=True)
n_batches = max(1, len(prof_rows) // PROF_BATCH)


def sync() -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fine_tuning_step(i: int) -> float:
    with record_function("data loading"):
        start = (i % n_batches) * PROF_BATCH
        rows = [prof_rows[j] for j in range(start, start + PROF_BATCH)]
        batch = {k: v.to(device) for k, v in collate(rows).items()}
    with record_function("forward"):
        loss = prof_model(**batch).loss
    with record_function("backward"):
        loss.backward()
    with record_function("clip + optimizer"):
        torch.nn.utils.clip_grad_norm_(prof_model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
    return loss.detach().item()


for i in range(2):  # warm-up: the first steps allocate memory and pick kernels
    fine_tuning_step(i)
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
with profile(activities=activities, record_shapes=True) as prof:
    for i in range(PROFILED_STEPS):
        fine_tuning_step(2 + i)
print(f"profiled {PROFILED_STEPS} step(s) of {PROF_BATCH} reviews x {MAX_LENGTH} tokens")

# %% [markdown]
# **Where the time goes, by phase** (the `record_function` regions), and **by what the operators
# compute** (`course_utils.tools.op_category` sorts them by name and by input shape: a matrix
# product involving the feed-forward width, `config.intermediate_size`, is the MLP; other matrix
# products are the attention projections; batched products and softmax are attention itself):

# %%
phases = region_times(
    prof.key_averages(), ["data loading", "forward", "backward", "clip + optimizer"]
)
phase_table = pd.Series(phases, name="seconds").to_frame() / PROFILED_STEPS
phase_table["share"] = phase_table["seconds"] / phase_table["seconds"].sum()
time_attribute = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
categories = time_by_category(prof.key_averages(group_by_input_shape=True),
                              getattr(prof_model.config, "intermediate_size", None),
                              time_attribute)  # fmt: skip
category_table = pd.Series(categories, name="seconds").to_frame() / PROFILED_STEPS
category_table["share"] = category_table["seconds"] / category_table["seconds"].sum()
display(phase_table.style.format({"seconds": "{:.3f}", "share": "{:.0%}"}))

fig, ax = plt.subplots(figsize=(8, 3.4))
ax.barh(category_table.index[::-1], category_table["share"][::-1], color="tab:orange")
for y, share in enumerate(category_table["share"][::-1]):
    ax.text(share, y, f" {share:.0%}", va="center", fontsize=8)
ax.set_xlabel("share of the step's operator time (self time)")
ax.set_title(f"One MiniLM fine-tuning step on {device.type.upper()}: what the time is spent on")
ax.set_xlim(0, category_table["share"].max() * 1.15)
fig.tight_layout()
plt.show()
matmul_share = category_table.loc[[c for c in category_table.index if "matmul" in c or
                                   "projections" in c], "share"].sum()  # fmt: skip
print(f"matrix products (MLP + attention projections): {matmul_share:.0%} of the step; "
      f"dropout's random masks alone: {category_table['share'].get('dropout (random masks)', 0):.0%}; "
      f"the optimizer: {category_table['share'].get('optimizer (AdamW)', 0):.0%}; data loading: "
      f"{phase_table.loc['data loading', 'share']:.1%}")  # fmt: skip

# %% [markdown]
# The **top operators table** is the profiler's own summary (self time, total time, calls), and
# the **Chrome trace** is the timeline of every operator: open the file in `chrome://tracing` or
# at https://ui.perfetto.dev (both run locally in the browser).

# %%
print(
    prof.key_averages().table(sort_by=f"{time_attribute}", row_limit=12, max_name_column_width=34)
)
trace_path = RUNS / "profile" / "fine_tuning_step.trace.json"
trace_path.parent.mkdir(parents=True, exist_ok=True)
prof.export_chrome_trace(str(trace_path))
trace_events = json.loads(trace_path.read_text())["traceEvents"]
print(f"Chrome trace: {trace_path.relative_to(runs_dir())} ({trace_path.stat().st_size / 1e6:.1f} MB, "
      f"{len(trace_events)} events)")  # fmt: skip

# %% [markdown]
# On this CPU the matrix products dominate, as they should; dropout's masks are a surprisingly
# visible cost (drawing random numbers for every activation), and the data loading of short,
# already tokenised reviews is negligible. On a GPU the shares can be very different (the
# matrix products run much faster, so launching many small kernels or waiting for data can
# become the bottleneck): the same cells, run there, profile the kernels too
# (`ProfilerActivity.CUDA`). This course's machine has no GPU, so no GPU profile is shown.
#
# ## 8.6 FLOPs, throughput and MFU — and CPU vs GPU
#
# **FLOPs, counted and estimated.** `torch.utils.flop_counter.FlopCounterMode` counts the
# floating-point operations of every matrix product in one forward + backward pass. The usual
# estimate ([Kaplan et al., 2020](https://arxiv.org/abs/2001.08361)) is 6·N·tokens, N the
# parameters that take part in matrix products (not the embedding tables, which are look-ups):
# 2 FLOPs per parameter per token forward, 4 backward.

# %%
flop_batch = {
    k: v.to(device) for k, v in collate([prof_rows[j] for j in range(PROF_BATCH)]).items()
}
counted = training_flops(prof_model, flop_batch)
n_matmul = non_embedding_parameters(prof_model)
tokens = flop_batch["input_ids"].numel()
estimate = 6 * n_matmul * tokens
by_operator = pd.Series(counted["by_operator"], name="FLOPs").sort_values(ascending=False)
cfg = prof_model.config
attention_core = 12 * cfg.num_hidden_layers * PROF_BATCH * MAX_LENGTH**2 * cfg.hidden_size
once_per_token_row = [
    getattr(prof_model.base_model, "pooler", None),
    getattr(prof_model, "classifier", None),
]
once_per_review = sum(count_parameters(m) for m in once_per_token_row if m is not None)
print(f"non-embedding parameters N = {n_matmul / 1e6:.2f}M; one step = {PROF_BATCH} x {MAX_LENGTH}"
      f" = {tokens} tokens")  # fmt: skip
print(f"counted by FlopCounterMode: {counted['total'] / 1e9:.1f} GFLOPs; 6·N·tokens: "
      f"{estimate / 1e9:.1f} GFLOPs (ratio {counted['total'] / estimate:.3f})")  # fmt: skip
print("counted by operator (GFLOPs):", {k: round(v / 1e9, 2) for k, v in by_operator.items()})
print(f"the rule leaves out attention's scores and weighted sums (12·layers·batch·T²·hidden = "
      f"{attention_core / 1e9:.2f} GFLOPs) and counts the pooler and head, which see one token "
      f"per review, for every token ({6 * once_per_review * (tokens - PROF_BATCH) / 1e9:.2f} GFLOPs "
      f"too many)")  # fmt: skip

# %% [markdown]
# **Throughput and MFU.** The time of `TIMED_STEPS` steps (no profiler attached), the FLOPs per
# second they achieve, and their share of the best the machine's matrix multiplication reaches
# (an fp32 product of two `PEAK_N` × `PEAK_N` matrices, best of 10): the *model-FLOPs
# utilisation* (MFU; [Chowdhery et al., 2022](https://arxiv.org/abs/2204.02311)). Only the
# model's FLOPs count; the optimizer, copies and data loading are overhead that lowers MFU.

# %%
step_times = []
for i in range(TIMED_STEPS):
    t0 = time.perf_counter()
    fine_tuning_step(10 + i)
    step_times.append(time.perf_counter() - t0)
step_s = float(np.median(step_times))
peak = matmul_peak_flops(n=PEAK_N, device=device)
throughput = {"device": str(device), "step (s)": step_s, "reviews / s": PROF_BATCH / step_s,
              "tokens / s": tokens / step_s, "model GFLOP/s": counted["total"] / step_s / 1e9,
              "matmul peak GFLOP/s": peak / 1e9, "MFU": counted["total"] / step_s / peak}  # fmt: skip
display(pd.DataFrame([throughput]).set_index("device").style.format(
    {"step (s)": "{:.3f}", "reviews / s": "{:.1f}", "tokens / s": "{:,.0f}",
     "model GFLOP/s": "{:.1f}", "matmul peak GFLOP/s": "{:.1f}", "MFU": "{:.0%}"}))  # fmt: skip

# %% [markdown]
# **CPU vs GPU: only what was measured.** The next cell measures the same step on every device
# this machine has. The course's reference machine has no GPU, so its table has one row and no
# GPU number is given here: published speed-ups depend on the GPU, the precision and the batch,
# and a number not measured on your hardware would only be a guess. On Colab with a GPU, the
# same cell fills in the GPU row (fp32 and bf16) from your own run.


# %%
def time_step_on(target: torch.device, steps: int, dtype=None) -> dict:
    """Median step time of the same batch shape on `target` (fp32, or autocast to `dtype`)."""
    seed_everything(SEED)
    model, _ = load_classifier(ENCODER, device=str(target))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, fused=True)
    batch = {k: v.to(target) for k, v in flop_batch.items()}
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        with torch.autocast(target.type, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if target.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times[2:]))
    return {"step (s)": seconds, "reviews / s": PROF_BATCH / seconds,
            "MFU vs that device's fp32 matmul peak": counted["total"] / seconds
            / matmul_peak_flops(n=PEAK_N, device=target)}  # fmt: skip


measured = {f"{device.type} fp32 (above)": {"step (s)": step_s, "reviews / s": PROF_BATCH / step_s,
            "MFU vs that device's fp32 matmul peak": throughput["MFU"]}}  # fmt: skip
if torch.cuda.is_available():
    gpu = torch.device("cuda")
    if device.type != "cuda":
        measured["cuda fp32"] = time_step_on(gpu, TIMED_STEPS)
    if torch.cuda.is_bf16_supported():
        measured["cuda bf16 autocast"] = time_step_on(gpu, TIMED_STEPS, torch.bfloat16)
    if device.type == "cuda":
        measured["cpu fp32"] = time_step_on(torch.device("cpu"), 2)
    print(f"GPU: {torch.cuda.get_device_name(0)}")
else:
    print("No GPU on this machine: no GPU number is measured, so none is shown.")
display(pd.DataFrame(measured).T.style.format({"step (s)": "{:.3f}", "reviews / s": "{:.1f}",
                                               "MFU vs that device's fp32 matmul peak": "{:.0%}"}))  # fmt: skip

# %% [markdown]
# ## 8.7 Debugging by measurement
#
# A broken training run rarely crashes. It prints a loss that goes down a little, an accuracy
# that looks plausible, and finishes. This section measures what a loss curve does not show.
#
# ### Gradient norms per layer
#
# The `GradNormRecorder` of section 8.3 read, at every step of the course-loop run, the norm of
# each layer's gradient (before clipping). Healthy fine-tuning has gradients in every layer;
# their sizes differ by layer and change as training goes:

# %%
norms = grad_norms.to_dataframe()
layer_columns = [c for c in norms.columns if c != "total"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
image = axes[0].imshow(np.log10(norms[layer_columns].T.to_numpy()), aspect="auto", cmap="viridis",
                       extent=(norms.index.min() - 0.5, norms.index.max() + 0.5,
                               len(layer_columns) - 0.5, -0.5))  # fmt: skip
axes[0].set_yticks(range(len(layer_columns)), layer_columns)
axes[0].set(xlabel="optimizer step", title="log10 gradient norm per layer (course-loop run)")
fig.colorbar(image, ax=axes[0])
axes[1].plot(norms.index, norms["total"], color="black", label="whole model")
axes[1].axhline(loop_config.max_grad_norm, color="tab:red", ls="--",
                label=f"clipping threshold {loop_config.max_grad_norm}")  # fmt: skip
axes[1].set(xlabel="optimizer step", ylabel="gradient norm", yscale="log",
            title="total gradient norm")  # fmt: skip
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
medians = norms[layer_columns].median()
clipped = (norms["total"] > loop_config.max_grad_norm).mean()
print("median norm per layer: " + ", ".join(f"{k} {v:.3f}" for k, v in medians.items()))
print(f"largest median: {medians.idxmax()}, smallest: {medians.idxmin()}; clipping was active "
      f"in {clipped:.0%} of the steps")  # fmt: skip

# %% [markdown]
# A layer whose norm is NaN received no gradient (frozen); a norm of 0 means its gradient is
# exactly zero (dead); norms that grow step after step announce divergence. The planted frozen
# model below shows the first (its layers' norms are NaN).
#
# ### A diverging learning rate, caught by a check
#
# Looking at curves does not scale to a sweep, and it does not stop a bad run early. A check
# does: the loss is not finite, or it is above `factor` × its value at the first step (with two
# classes the first loss is about ln 2; three times that is far worse than guessing).


# %%
def first_divergence(losses, factor: float = 3.0) -> int | None:
    """The 1-based step of the first loss that is NaN/inf or above `factor` x the first loss."""
    for step, loss in enumerate(losses, start=1):
        if not math.isfinite(loss) or loss > factor * losses[0]:
            return step
    return None


def sweep_run(lr: float) -> dict:
    """`SWEEP_STEPS` optimizer steps at learning rate `lr`; where a NaN/inf first appeared."""
    seed_everything(SEED)
    model, _ = load_classifier(ENCODER, device=DEVICE)
    watch = NonFiniteWatch(model)
    config = TrainConfig(lr=lr, max_steps=SWEEP_STEPS, num_epochs=1, batch_size=16,
                         max_length=MAX_LENGTH, warmup_ratio=0.0, scheduler="constant",
                         max_grad_norm=1.0, seed=SEED, device=DEVICE, progress=False)  # fmt: skip
    history = train(model, train_set, None, config, tokenizer, callbacks=[watch])
    watch.remove()
    return {"losses": [row["loss"] for row in history.steps], "first_nonfinite": watch.first,
            "nonfinite_parameters": len(nonfinite_parameters(model))}  # fmt: skip


sweep = {}
for lr in LR_GRID:
    key = {"chapter": 8, "run": "lr-sweep", "lr": lr, "steps": SWEEP_STEPS, "batch": 16,
           "train_n": N_TRAIN, "max_length": MAX_LENGTH, "seed": SEED, "model": ENCODER,
           "device": device.type, "version": 1}  # fmt: skip
    sweep[lr] = cache.run(key, lambda lr=lr: sweep_run(lr), name="sweep")
sweep_rows = {}
for lr, result in sweep.items():
    losses = result["losses"]
    nan_step = next((s for s, x in enumerate(losses, 1) if not math.isfinite(x)), None)
    sweep_rows[f"{lr:g}"] = {"first loss": losses[0], "last loss": losses[-1],
                             "check fires at step": first_divergence(losses),
                             "loss first NaN at step": nan_step,
                             "first non-finite output": (f"step {result['first_nonfinite']['step']}: "
                                                         f"{result['first_nonfinite']['module']}"
                                                         if result["first_nonfinite"] else "-")}  # fmt: skip
sweep_table = pd.DataFrame(sweep_rows).T
sweep_table.index.name = "learning rate"
display(sweep_table)

# %%
fig, ax = plt.subplots(figsize=(8, 3.8))
for lr, result in sweep.items():
    losses = np.array(result["losses"], dtype=float)
    ax.plot(range(1, len(losses) + 1), losses, marker=".", label=f"lr {lr:g}")
ax.set_yscale("log")
ax.axhline(3 * math.log(2), color="grey", ls=":", label="check: 3 x first loss (≈ 3 ln 2)")
ax.set(xlabel="optimizer step", ylabel="training loss (log scale; NaN not drawn)",
       title="Learning-rate sweep: MiniLM, 16 reviews per step, AdamW, clipping at 1.0")  # fmt: skip
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()
flagged = [lr for lr, r in sweep.items() if first_divergence(r["losses"]) is not None]
healthy = [lr for lr in sweep if lr not in flagged]
print(f"the check flags {[f'{lr:g}' for lr in flagged]}; the largest rate it accepts: "
      f"{max(healthy):g}" if healthy else "the check flags every rate")  # fmt: skip

# %% [markdown]
# Two lessons from the table. With Adam and gradient clipping, a learning rate that is far too
# large does **not** give a NaN at once: clipping bounds the gradient, but Adam's update is about
# the learning rate per weight whatever the gradient, so the weights jump, the loss climbs to
# hundreds and stays finite for a while — a run that "trains" and has destroyed the pretrained
# model. The check fires within the first few steps for every rate it flags, while most of
# those runs never produce a NaN at all within the sweep's steps. Only at the most absurd rate do
# the activations overflow; `NonFiniteWatch` (forward hooks on every module) then names the step
# and the first module whose output stopped being finite, which is where a NaN hunt starts —
# and it saw it before the loss itself turned NaN (compare the two columns; a likely reason, not
# tested here: the first NaN sat at token positions the classifier does not read, since it uses
# only `[CLS]`'s vector). A rate that passes the check is not thereby a good one (the
# check is for divergence, not for progress): the rates that pass it are the ones worth
# comparing on validation, as chapter 5 did. (A sweep over rates a factor of ten apart, a few
# steps each, is a coarse form of the learning-rate range test of
# [Smith, 2017](https://arxiv.org/abs/1506.01186), which raises the rate step by step within
# one run.)
#
# ### Two planted bugs, and the measurements that catch them
#
# Both bugs are ones learners meet, and in both the training loop runs without an error:
#
# 1. **Labels shuffled against their texts.** The texts were sorted by length for speed, the
#    labels were not: every review now carries another review's label.
# 2. **A frozen model that "trains".** The intent was to freeze the embeddings; the code froze the
#    whole encoder (`model.bert.requires_grad_(False)`, which in `BertForSequenceClassification`
#    includes the pooler). Only the classification head still learns, a tiny fraction of the
#    weights (the table below counts them) — and the loop runs, logs a loss and finishes as
#    usual.
#
# Three runs with the same settings (the data and budget of section 8.2): correct, bug 1, bug 2.
# Each records the measurements that catch the bugs: trainable parameters, per-layer gradient
# norms, how far each layer moved, the validation accuracy with its 95% interval, and a TF-IDF +
# logistic-regression baseline trained on the *same* training data.

# %%
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

texts_by_length = sorted(train_set["text"], key=len)  # sorted for speed ...
shuffled_set = datasets.Dataset.from_dict(
    {"text": texts_by_length, "label": list(train_set["label"])},  # ... but the labels were not
    features=datasets.Features({"text": datasets.Value("string"), "label": label_feature}),
)
truth = dict(zip(train_set["text"], train_set["label"], strict=True))
still_right = np.mean([truth[t] == y for t, y in zip(shuffled_set["text"], shuffled_set["label"],
                                                     strict=True)])  # fmt: skip
print(f"bug 1: {still_right:.0%} of the training labels are still right, by chance")


def bug_run(kind: str) -> dict:
    seed_everything(SEED)
    model, _ = load_classifier(ENCODER, device=DEVICE)
    if kind == "frozen encoder":
        model.base_model.requires_grad_(False)  # = model.bert; meant: model.bert.embeddings
    data = shuffled_set if kind == "shuffled labels" else train_set
    before = snapshot(model)
    recorder = GradNormRecorder(model)
    history = train(model, data, val_set, loop_config, tokenizer, compute_metrics,
                    callbacks=[recorder])  # fmt: skip
    recorder.remove()
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2)
    baseline = LogisticRegression(max_iter=1000).fit(tfidf.fit_transform(list(data["text"])),
                                                     list(data["label"]))  # fmt: skip
    tfidf_acc = float((baseline.predict(tfidf.transform(list(val_set["text"]))) ==
                       np.array(val_set["label"])).mean())  # fmt: skip
    return {"trainable": count_parameters(model, trainable_only=True),
            "total": count_parameters(model), "losses": [r["loss"] for r in history.steps],
            "val_accuracy": history.final_metrics["accuracy"], "tfidf_accuracy": tfidf_acc,
            "grad_norm_medians": recorder.to_dataframe().median().to_dict(),
            "change": parameter_change(before, model)}  # fmt: skip


bugs = {}
for kind in ("correct", "shuffled labels", "frozen encoder"):
    key = {"chapter": 8, "run": "planted-bug", "kind": kind, **loop_config.to_dict(),
           "train_n": N_TRAIN, "val_n": N_VAL, "model": ENCODER, "device_type": device.type,
           "version": 1}  # fmt: skip
    bugs[kind] = cache.run(key, lambda kind=kind: bug_run(kind), name="bug")

# %%
bug_rows = {}
for kind, r in bugs.items():
    correct_n = round(r["val_accuracy"] * N_VAL)
    low, high = wilson_interval(correct_n, N_VAL)
    encoder_groups = [g for g in r["change"] if g.startswith("layer") or g == "embeddings"]
    bug_rows[kind] = {
        "trainable parameters": f"{r['trainable']:,} of {r['total']:,}",
        "training loss, first -> last log": f"{r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}",
        "validation accuracy [95% CI]": f"{r['val_accuracy']:.1%} [{low:.1%}, {high:.1%}]",
        "TF-IDF on the same training data": f"{r['tfidf_accuracy']:.1%}",
        "encoder layers that moved": f"{sum(r['change'][g] > 0 for g in encoder_groups)} of "
                                     f"{len(encoder_groups)}",
        "median gradient norm, layer 0": f"{r['grad_norm_medians'].get('layer 0', math.nan):.4f}",
        "median gradient norm, head": f"{r['grad_norm_medians'].get('head', math.nan):.4f}",
    }  # fmt: skip
display(pd.DataFrame(bug_rows))
print(f"majority class on validation: {majority:.1%}")


# %% [markdown]
# Each bug has a measurement that catches it in seconds, and the loss curve is not one of them.
# Written as checks that run after every training job:


# %%
def run_checks(result: dict, n_val: int, majority_rate: float) -> list[str]:
    """Warnings about a finished run (empty when nothing looks wrong)."""
    warnings_found = []
    low, high = wilson_interval(round(result["val_accuracy"] * n_val), n_val)
    if high < majority_rate:
        warnings_found.append(f"validation accuracy {result['val_accuracy']:.1%} is below the "
                              f"majority class ({majority_rate:.1%}): its 95% interval "
                              f"[{low:.1%}, {high:.1%}] lies entirely under it")  # fmt: skip
    elif low <= majority_rate:
        warnings_found.append(f"validation accuracy {result['val_accuracy']:.1%} is within noise of "
                              f"the majority class ({majority_rate:.1%})")  # fmt: skip
    tfidf_low, _ = wilson_interval(round(result["tfidf_accuracy"] * n_val), n_val)
    if tfidf_low <= majority_rate:
        warnings_found.append("a TF-IDF baseline on the same training data is at chance too: the "
                              "labels do not go with the texts")  # fmt: skip
    frozen = [g for g, change in result["change"].items() if change == 0.0]
    if frozen:
        warnings_found.append(f"{len(frozen)} layer groups did not move at all ({', '.join(frozen)});"
                              f" only {result['trainable'] / result['total']:.3%} of the "
                              f"parameters are trainable")  # fmt: skip
    return warnings_found


for kind, result in bugs.items():
    found = run_checks(result, N_VAL, majority)
    print(f"{kind}: " + ("no warning" if not found else "\n  - " + "\n  - ".join(found)))

# %% [markdown]
# - **Shuffled labels**: the training loss barely leaves ln 2, the validation accuracy is no
#   better than guessing, and — the decisive measurement — a TF-IDF model trained on the same
#   data is just as lost. When a baseline that cannot be "badly tuned" fails too, suspect the
#   data. If the check says the network's validation accuracy is even *below* the majority
#   class, the network has learnt some accidental pattern of the shuffled labels that happens to
#   point the wrong way on validation — one seed, an explanation not tested here.
#   (Trained long enough, a network *can* memorise random labels —
#   [Zhang et al., 2017](https://arxiv.org/abs/1611.03530) — so a low training loss would not
#   prove the data right either: only held-out data can.)
# - **Frozen encoder**: the loop runs and reports no error, but only the head's weights learn,
#   and in this budget at the full-fine-tuning learning rate they barely move the loss: the
#   validation accuracy stays within noise of the majority class, far below the correct run on
#   the same data and steps. The accuracy check flags that something is wrong; what names the
#   cause is the count of trainable parameters and the layers that did not move. (Why the head
#   alone learns so little here is not tested in this chapter; the likely reason is the learning
#   rate, chosen for full fine-tuning.) With a larger rate the same bug need not look broken:
#   chapter 3's head-only runs, with their own much larger rates, ended above the majority class,
#   like a weak model rather than a broken one. So count the trainable parameters before
#   training (`count_parameters(model, trainable_only=True)`): it costs nothing and catches this
#   at once.
#
# ## 8.8 Reproducibility
#
# *Same seed, same numbers* holds on one machine with one software stack when everything random
# is seeded: the new head's weights, the order of the batches, the dropout masks. The course
# loop seeds the last two from `TrainConfig.seed`; the head is initialised when the model is
# loaded, after `seed_everything`. Six short runs (`REPRO_STEPS` steps of 16 reviews) vary one
# thing at a time:

# %%
repro_set = train_set.select(range(min(REPRO_N, len(train_set))))


if torch.cuda.is_available():  # cuBLAS needs this for deterministic matrix products
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def short_run(init_seed=SEED, data_seed=SEED, threads=None, deterministic=False):
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        seed_everything(init_seed)
        model, _ = load_classifier(ENCODER, device=DEVICE)
        config = TrainConfig(lr=LR, max_steps=REPRO_STEPS, num_epochs=1, batch_size=16,
                             max_length=MAX_LENGTH, seed=data_seed, device=DEVICE,
                             progress=False)  # fmt: skip
        history = train(model, repro_set, None, config, tokenizer)
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(False)
    return [row["loss"] for row in history.steps], snapshot(model)


reference_losses, reference_weights = short_run()
variants = {
    "same seeds again": {},
    "same seeds, deterministic algorithms on": {"deterministic": True},
    "1 thread instead of " + str(torch.get_num_threads()): {"threads": 1},
    "another data/dropout seed (config.seed)": {"data_seed": SEED + 1},
    "another initialisation seed (the head)": {"init_seed": SEED + 1},
}
if SMOKE:  # two of them are enough to run the code
    variants = dict(list(variants.items())[:1] + list(variants.items())[3:4])
repro_rows = {}
for name, kwargs in variants.items():
    losses, weights = short_run(**kwargs)
    repro_rows[name] = {
        "identical losses": losses == reference_losses,
        "identical weights": all(torch.equal(weights[k], reference_weights[k]) for k in weights),
        "largest loss difference": max(abs(a - b) for a, b in zip(losses, reference_losses,
                                                                  strict=True)),
        "largest weight difference": max(float((weights[k] - reference_weights[k]).abs().max())
                                         for k in weights),
    }  # fmt: skip
display(pd.DataFrame(repro_rows).T.style.format({"largest loss difference": "{:.2e}",
                                                 "largest weight difference": "{:.2e}"}))  # fmt: skip

# %% [markdown]
# Why can the thread count change a result? Floating-point addition is not associative: the same
# numbers summed in another order round differently, and a matrix product split over two threads
# adds its partial sums in another order than one thread does. The same cause makes GPU results
# vary from run to run: kernels that add with atomic operations (e.g. the backward pass of an
# embedding look-up) finish in whatever order the hardware schedules.
# `torch.use_deterministic_algorithms(True)` makes PyTorch choose deterministic kernels or fail
# loudly where none exists; on a CUDA GPU it also needs the environment variable
# `CUBLAS_WORKSPACE_CONFIG=:4096:8`. On this CPU the cell above measured whether it changes
# anything. The cause, shown on a million numbers:

# %%
values = torch.randn(1_000_000, generator=torch.Generator().manual_seed(SEED))
sums = {
    "torch.sum (blocked, vectorised)": values.sum().item(),
    "left to right (cumsum)": values.cumsum(0)[-1].item(),
    "two halves, then added (like 2 threads)": values.view(2, -1).sum(1).sum().item(),
    "1,000 blocks, then added": values.view(1000, -1).sum(1).sum().item(),
}
exact = math.fsum(values.double().tolist())
for name, total in sums.items():
    print(f"{name:42} {total:.6f}  (error {total - exact:+.1e})")
print(f"{'exact (math.fsum in float64)':42} {exact:.6f}; the float32 orders differ by up to "
      f"{max(sums.values()) - min(sums.values()):.1e}")  # fmt: skip

# %% [markdown]
# **What to record with a run**, so that you (or a reader) can repeat it and know why a number
# differs: the versions, the machine and device, the threads, the deterministic flag, the code's
# commit, every setting, and a fingerprint of each dataset (section 8.1). `run_record` gathers
# them; store it next to the run's results:

# %%
record = run_record(loop_config, {"train": train_set, "validation": val_set},
                    seeds={"init": SEED, "data_and_dropout": loop_config.seed},
                    results={"validation_accuracy": loop_history.final_metrics["accuracy"]})  # fmt: skip
record_path = RUNS / "course-loop-run.json"
record_path.write_text(json.dumps(record, indent=1, default=str))
shown = {k: v for k, v in record.items() if k != "config"}
print(json.dumps(shown, indent=1, default=str))
print(f"(+ {len(record['config'])} settings in 'config'; written to {record_path.name})")

# %% [markdown]
# ## 8.9 Outgrowing one machine
#
# When one device is too slow, **data parallelism** runs one copy of the model per device (one
# process each); every process takes its share of each batch, and before every update the
# gradients are averaged across processes (an *all-reduce*), so all copies take the same step
# and stay identical. `torchrun` starts the processes and tells each its rank; `accelerate`
# (inside the course loop) does the rest. The job this notebook launches is a small module,
# `course_utils/data_parallel.py`; its core:

# %%
display(Markdown(f"```python\n{inspect.getsource(data_parallel.run_job)}```"))

# %% [markdown]
# On this machine's two CPU cores: two processes (gloo for the all-reduce), launched from the
# notebook exactly as you would from a terminal. (Mind the pitfall measured below:
# `accelerate launch --cpu --num_processes 2` does *not* do this.)

# %%
ddp_out = RUNS / "ddp-2-processes"
shutil.rmtree(ddp_out, ignore_errors=True)
job_args = ["--out", str(ddp_out), "--model", str(ENCODER), "--train-size", str(DDP_TRAIN),
            "--global-batch", str(DDP_BATCH), "--device", "cpu", "--seed", str(SEED)]  # fmt: skip
command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "course_utils.data_parallel", *job_args]  # fmt: skip
print("$ torchrun --standalone --nproc_per_node 2 -m course_utils.data_parallel "
      + " ".join(shlex.quote(a) for a in job_args))  # fmt: skip
env = os.environ | {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                    "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
ranks = None
if SMOKE:  # starting two processes costs ~10 s, a quarter of the tests' budget
    print("(SMOKE: the launch is skipped; tests/test_data_parallel.py launches the same job)")
else:
    t0 = time.perf_counter()
    launched = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    two_wall = time.perf_counter() - t0
    if launched.returncode != 0:
        raise RuntimeError(
            f"torchrun failed:\n{launched.stdout[-2000:]}\n{launched.stderr[-4000:]}"
        )
    ranks = [json.loads((ddp_out / f"rank{r}.json").read_text()) for r in (0, 1)]
    print("\n".join(line for line in launched.stdout.splitlines() if line.startswith("rank")))

# %% [markdown]
# The same job in one process (this notebook's, with its threads), for comparison: the same
# reviews, the same 32 reviews per optimizer step, the same seed.

# %%
t0 = time.perf_counter()
single = data_parallel.run_job(RUNS / "ddp-1-process", ENCODER, DDP_TRAIN, DDP_BATCH, device="cpu",
                               seed=SEED)  # fmt: skip
one_wall = time.perf_counter() - t0
print(f"1 process: {single['examples_seen']} reviews, {single['optimizer_steps']} optimizer "
      f"steps, {single['threads']} threads, {single['train_time_s']:.1f} s of training")  # fmt: skip

# %%
from safetensors.torch import load_file  # noqa: E402


def compare_with_one_process(ranks: list[dict], single: dict) -> float:
    """Print each rank's share, their agreement and the timings; returns the weight gap."""
    two_weights = load_file(str(ddp_out / "model.safetensors"))
    one_weights = load_file(str(RUNS / "ddp-1-process" / "model.safetensors"))
    weight_gap = max(float((two_weights[k] - one_weights[k]).abs().max()) for k in one_weights)
    loss_gap = max(abs(a - b) for a, b in zip(ranks[0]["losses"], single["losses"], strict=True))
    seen = [set(r["fingerprints"]) for r in ranks]
    for r in ranks:
        print(f"rank {r['rank']} of {r['world_size']}: {r['examples_seen']} reviews "
              f"({r['examples_seen'] / DDP_TRAIN:.0%} of {DDP_TRAIN}), {r['tokens']:,} tokens, "
              f"{r['optimizer_steps']} optimizer steps, {r['threads']} thread(s), "
              f"parameters SHA-256 {r['parameter_sha256'][:16]}…")  # fmt: skip
    print(f"reviews seen by both ranks: {len(seen[0] & seen[1])}; together they saw exactly the "
          f"one-process run's reviews: {seen[0] | seen[1] == set(single['fingerprints'])}")  # fmt: skip
    print(f"parameters identical on the two ranks: "
          f"{ranks[0]['parameter_sha256'] == ranks[1]['parameter_sha256']}; 2 processes vs 1: "
          f"largest weight difference {weight_gap:.1e}, largest loss difference {loss_gap:.1e}")  # fmt: skip
    display(pd.DataFrame({
        "1 process": {"processes x threads": f"1 x {single['threads']}",
                      "training time (s)": single["train_time_s"], "wall time (s)": one_wall},
        "2 processes (torchrun)": {"processes x threads": f"2 x {ranks[0]['threads']}",
                                   "training time (s)": max(r["train_time_s"] for r in ranks),
                                   "wall time (s)": two_wall},
    }).T)  # fmt: skip
    return weight_gap


if ranks is None:
    weight_gap = None
    print("(SMOKE: no two-process run to compare with)")
else:
    weight_gap = compare_with_one_process(ranks, single)

# %% [markdown]
# The two ranks saw disjoint halves of the data, ended with bit-identical parameters, and match
# one process trained with the same global batch up to float rounding (the gradients are summed
# in another order). It is *not* faster here: two processes with one thread each do the same
# arithmetic as one process with two threads, plus an all-reduce of all the model's gradients at
# every step, and the wall time includes starting two Python processes and loading the model twice.
# Data parallelism pays when each process has its own device — a GPU each — and the model's
# compute per step dwarfs the all-reduce.
#
# **The pitfall.** `accelerate launch --cpu --num_processes 2` looks like the same thing. Run
# with the same job, it starts one process (accelerate issue #2741); the job's own report says
# how many it found:

# %%
if SMOKE:
    print("(skipped in SMOKE mode: one more launch)")
else:
    acc_out = RUNS / "accelerate-launch-cpu"
    shutil.rmtree(acc_out, ignore_errors=True)
    acc_command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes",
                   "2", "-m", "course_utils.data_parallel", "--out", str(acc_out), "--model",
                   str(ENCODER), "--train-size", "64", "--global-batch", "32", "--device", "cpu"]  # fmt: skip
    acc_run = subprocess.run(acc_command, capture_output=True, text=True, env=env, timeout=900)
    reports = sorted(p.name for p in acc_out.glob("rank*.json"))
    worlds = [json.loads((acc_out / name).read_text())["world_size"] for name in reports]
    print(f"$ accelerate launch --cpu --num_processes 2 -m course_utils.data_parallel ...\n"
          f"exit code {acc_run.returncode}; reports written: {reports}; world size seen by the job: "
          f"{worlds}")  # fmt: skip

# %% [markdown]
# **The commands for more hardware** (not run here). The job is the same file; only the launch
# changes, and the global batch stays what the job says (each process takes its share):
#
# ```bash
# # one machine, 8 GPUs (one process per GPU, NCCL)
# torchrun --standalone --nproc_per_node 8 -m course_utils.data_parallel --out runs/ch08/ddp-8
# accelerate launch --multi_gpu --num_processes 8 -m course_utils.data_parallel --out runs/ch08/ddp-8
#
# # two machines with 8 GPUs each: run on every machine, changing only --node_rank (0 and 1)
# torchrun --nnodes 2 --nproc_per_node 8 --node_rank 0 \
#          --rdzv_backend c10d --rdzv_endpoint host0.example.org:29500 --rdzv_id job42 \
#          -m course_utils.data_parallel --out runs/ch08/ddp-16
# # or, with a fixed master instead of a rendezvous:
# torchrun --nnodes 2 --nproc_per_node 8 --node_rank 0 --master_addr host0.example.org \
#          --master_port 29500 -m course_utils.data_parallel --out runs/ch08/ddp-16
# accelerate launch --multi_gpu --num_machines 2 --num_processes 16 --machine_rank 0 \
#          --main_process_ip host0.example.org --main_process_port 29500 \
#          -m course_utils.data_parallel --out runs/ch08/ddp-16
# ```
#
# How DDP overlaps the all-reduce with the backward pass (gradient buckets) is described by
# [Li et al. (2020)](https://arxiv.org/abs/2006.15704). When the model no longer fits on one
# device, data parallelism is not enough: sharded data parallelism (FSDP, DeepSpeed ZeRO) splits
# the weights, gradients and optimizer state across devices; tensor and pipeline parallelism split
# the layers themselves.
#
# ## 8.10 Resources (§7.1–§7.3), verified
#
# Every entry below was checked (title, authors, year and identifier) against the work itself or
# its publisher's page; each link is its identifier. The list keeps what the source recommends
# where it exists, replaces what does not, and adds the references this course actually uses.

# %%
BIBLIOGRAPHY = {e.key: e for e in load_bibliography()}
READING = {
    "Books": [
        ("goodfellow2016deep", "the mathematics of deep learning (optimisation, regularisation, "
                               "sequence models); free online"),
        ("chollet2017python", "practical deep learning in Keras; the 3rd edition (2025, with "
                              "Matthew Watson, free at https://deeplearningwithpython.io/) also "
                              "covers JAX and PyTorch"),
    ],
    "Papers the course builds on": [
        ("vaswani2017attention", "the Transformer: attention, the architecture of every model here"),
        ("devlin2019bert", "BERT: the encoder family MiniLM belongs to, and fine-tuning it"),
        ("brown2020gpt3", "few-shot prompting at scale (the source says 'zero-shot')"),
        ("raffel2020t5", "T5: every task as text-to-text; a systematic study of transfer learning"),
        ("zeng2023glm130b", "GLM-130B: an open bilingual (Chinese-English) 130B model"),
        ("hu2021lora", "LoRA: the parameter-efficient method used in chapters 3, 6, 7 and 9"),
        ("reimers2019sbert", "sentence embeddings and similarity with BERT (chapter 7)"),
        ("gal2016dropout", "dropout in recurrent networks (from the source's list; pre-Transformer)"),
        ("zaremba2014rnn", "regularising LSTMs with dropout (from the source's list; pre-Transformer)"),
    ],
    "Libraries and their papers": [
        ("paszke2019pytorch", "PyTorch, the framework of this course"),
        ("wolf2020transformers", "the transformers library: models, tokenizers, Trainer"),
        ("lhoest2021datasets", "the datasets library: Arrow tables, map, the cache"),
        ("mangrulkar2022peft", "peft: LoRA and other parameter-efficient methods"),
        ("black2021gptneo", "GPT-Neo, an open GPT-3-style model: software, not a paper"),
        ("keras", "Keras 3: a high-level API on JAX, TensorFlow or PyTorch"),
        ("tensorflow", "TensorFlow; TensorBoard, its visualisation toolkit, works with PyTorch too"),
    ],
    "Courses and sites": [
        ("ng2017coursera", "the source's 'Coursera deep learning course': foundations, in five courses"),
        ("harvardnlp", "Harvard's NLP group (e.g. The Annotated Transformer)"),
    ],
}  # fmt: skip
missing_keys = [k for group in READING.values() for k, _ in group if k not in BIBLIOGRAPHY]
assert not missing_keys, f"not in data/bibliography.json: {missing_keys}"
lines = []
for group, items in READING.items():
    lines.append(f"**{group}**\n")
    lines += [f"- {format_entry(BIBLIOGRAPHY[key])} — *good for:* {why}" for key, why in items]
    lines.append("")
display(Markdown("\n".join(lines)))

# %% [markdown]
# More resources used in this chapter (official pages):
#
# - Hugging Face LLM Course, https://huggingface.co/learn/llm-course — transformers, datasets,
#   tokenizers and accelerate taught by their authors; free.
# - Stanford CS224N, https://web.stanford.edu/class/cs224n/ — NLP with deep learning, lectures and
#   assignments.
# - Jurafsky & Martin, *Speech and Language Processing* (3rd ed. draft),
#   https://web.stanford.edu/~jurafsky/slp3/ — the standard NLP textbook, free; a verified
#   replacement for the source's unverifiable NLP book.
# - Zhang, Lipton, Li & Smola, *Dive into Deep Learning*, https://d2l.ai/ (中文版《动手学深度学习》
#   https://zh.d2l.ai/) — runnable notebooks for every concept.
# - 邱锡鹏《神经网络与深度学习》, https://nndl.github.io/ — a Chinese textbook, free online.
# - Tunstall, von Werra & Wolf, *Natural Language Processing with Transformers* (O'Reilly, 2022),
#   https://www.oreilly.com/library/view/natural-language-processing/9781098136789/ — the
#   Hugging Face stack in projects.
# - PyTorch documentation: the profiler (`torch.profiler`), `torch.distributed.run` (torchrun) and
#   reproducibility notes, https://docs.pytorch.org/docs/stable/ ; accelerate,
#   https://huggingface.co/docs/accelerate ; TensorBoard, https://www.tensorflow.org/tensorboard .
# - Papers cited in this chapter for one point each (all in the course bibliography):
#   [Zhang et al. (2017)](https://arxiv.org/abs/1611.03530), *Understanding deep learning requires
#   rethinking generalization* (random labels can be memorised);
#   [Chowdhery et al. (2022)](https://arxiv.org/abs/2204.02311), *PaLM* (model-FLOPs utilisation);
#   [Kaplan et al. (2020)](https://arxiv.org/abs/2001.08361), *Scaling Laws for Neural Language
#   Models* (the 6·N·tokens rule); [Smith (2017)](https://arxiv.org/abs/1506.01186), *Cyclical
#   Learning Rates for Training Neural Networks* (the learning-rate range test);
#   [Li et al. (2020)](https://arxiv.org/abs/2006.15704), *PyTorch Distributed: Experiences on
#   Accelerating Data Parallel Training* (how DDP overlaps the all-reduce with backward).
#
# **What §7 gets wrong.** The course bibliography keeps the source's references that do not
# exist as cited, each with what is true (`course_utils.bibliography.source_errata`); the tools
# of §7.2 add four more:

# %%
errata = pd.DataFrame(source_errata())[["as cited in the source", "what is true"]]
tool_errata = pd.DataFrame([
    {"as cited in the source": "TensorBoard: \"TensorFlow's performance analysis tool\" (§7.2.2)",
     "what is true": "A visualisation toolkit for training logs (scalars, histograms, graphs); "
                     "PyTorch writes to it with torch.utils.tensorboard, as this chapter does."},
    {"as cited in the source": "TensorFlow Debugger (TFDBG) (§7.2.2)",
     "what is true": "TensorFlow 2's debugger is tf.debugging.experimental.enable_dump_debug_info "
                     "with TensorBoard's Debugger V2; for PyTorch use hooks, anomaly detection "
                     "(torch.autograd.detect_anomaly) and the checks of section 8.7."},
    {"as cited in the source": "\"Python Profiler\" (§7.2.2)",
     "what is true": "Python's cProfile/profile time Python functions; the time of a training "
                     "step is in PyTorch operators, which torch.profiler measures (section 8.5)."},
    {"as cited in the source": "Keras: \"TensorFlow's high-level API\" (§7.1.3)",
     "what is true": "Keras 3 is a multi-backend API (JAX, TensorFlow, PyTorch); tf.keras is the "
                     "Keras 2 bundled with TensorFlow."},
])  # fmt: skip
with pd.option_context("display.max_colwidth", None):
    display(pd.concat([errata, tool_errata], ignore_index=True).style.hide(axis="index"))

# %% [markdown]
# ## Exercises
#
# Each exercise gives you a function to fill in (or a value to set) and a checker that runs it on
# hidden cases. Replace `raise NotImplementedError` (or the `...`) with your answer and run the
# cell and the check below it: ✅ means all hidden cases passed; ❌ shows the first failing input,
# what was expected and what you returned. `.hint()` reveals one hint at a time; `.solution()`
# prints the reference solution (try first!). On the course site, the solution is in a collapsed
# block under each exercise.

# %%
ex = chapter_exercises(8, model_name=ENCODER)
ex

# %% [markdown]
# ### Exercise 1 — positions fed under a padding strategy
#
# Write `positions_fed(lengths, batch_size, max_length, padding)`: the examples (their token
# counts in `lengths`, in this order) are cut into consecutive batches of `batch_size`, every
# example is truncated to `max_length` tokens, and each batch is padded either to `max_length`
# (`padding="max_length"`) or to its longest example (`padding="longest"`). Return the number
# of token positions the model processes (real tokens plus padding).


# %%
def positions_fed(lengths: list[int], batch_size: int, max_length: int, padding: str) -> int:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["positions_fed"].hint()  # uncomment for a hint
ex["positions_fed"].check(positions_fed)

# %% [markdown]
# <details>
# <summary>Solution to exercise 1 (<code>course_utils/solutions/ch08.py</code>)</summary>
#
# ```python
# def positions_fed(lengths: Sequence[int], batch_size: int, max_length: int, padding: str) -> int:
#     """Token positions processed when consecutive batches are padded as `padding` says."""
#     if padding not in ("longest", "max_length"):
#         raise ValueError(f"padding must be 'longest' or 'max_length', not {padding!r}")
#     truncated = [min(n, max_length) for n in lengths]
#     total = 0
#     for start in range(0, len(truncated), batch_size):
#         batch = truncated[start : start + batch_size]
#         width = max_length if padding == "max_length" else max(batch)
#         total += width * len(batch)
#     return total
# ```
#
# </details>

# %% [markdown]
# ### Exercise 2 — the clipping factor from the per-layer norms
#
# `GradNormRecorder` gives one gradient norm per layer group. Write `clip_factor(layer_norms,
# max_norm)`: the factor `torch.nn.utils.clip_grad_norm_` multiplies every gradient by — 1 when
# the total norm is at most `max_norm`, else `max_norm / total` — where the total norm is
# computed from the per-layer norms (a dict `{layer: norm}`; groups that are NaN received no
# gradient and count as 0).


# %%
def clip_factor(layer_norms: dict[str, float], max_norm: float) -> float:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["clip_factor"].hint()  # uncomment for a hint
ex["clip_factor"].check(clip_factor)

# %% [markdown]
# <details>
# <summary>Solution to exercise 2 (<code>course_utils/solutions/ch08.py</code>)</summary>
#
# ```python
# def clip_factor(layer_norms: Mapping[str, float], max_norm: float) -> float:
#     """The factor gradient clipping applies, from per-layer gradient norms."""
#     squares = [n * n for n in layer_norms.values() if not math.isnan(n)]
#     total = math.sqrt(sum(squares))
#     return 1.0 if total <= max_norm else max_norm / total
# ```
#
# </details>

# %% [markdown]
# ### Exercise 3 — each process's share of a step
#
# In the course loop, the examples of one optimizer step (`step_indices`, a list of dataset rows
# sorted by length) are shared between `world_size` processes: process `rank` takes every
# `world_size`-th example starting at position `rank`. A process left with nothing (a last step
# smaller than the number of processes) repeats the step's first example, so that every process
# takes part in the all-reduce. Write `rank_share(step_indices, rank, world_size)`.


# %%
def rank_share(step_indices: list[int], rank: int, world_size: int) -> list[int]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["rank_share"].hint()  # uncomment for a hint
ex["rank_share"].check(rank_share)

# %% [markdown]
# <details>
# <summary>Solution to exercise 3 (<code>course_utils/solutions/ch08.py</code>)</summary>
#
# ```python
# def rank_share(step_indices: Sequence[int], rank: int, world_size: int) -> list[int]:
#     """The examples of one optimizer step that process `rank` of `world_size` computes."""
#     share = list(step_indices[rank::world_size])
#     return share or list(step_indices[:1])
# ```
#
# </details>

# %% [markdown]
# ### Exercise 4 — an experiment: when does 6·N·tokens go wrong?
#
# Section 8.6 found that `FlopCounterMode` and the 6·N·tokens rule agree closely for reviews of
# 64 tokens. Run the experiment at 512 tokens (MiniLM's longest input): count the FLOPs of one
# forward + backward pass of a freshly loaded MiniLM classifier on **one** input of 512 tokens
# (in training mode, labels given) with `training_flops`, divide by `6 * N * 512` with N from
# `non_embedding_parameters`, and set `flops_ratio_512` to that ratio. Before you run it, predict
# whether it will be above or below the 64-token ratio — and why.

# %%
flops_ratio_512 = ...  # your measured ratio

# %% tags=["nbval-check-output"]
# ex["flops_ratio_512"].hint()  # uncomment for a hint
ex["flops_ratio_512"].check(flops_ratio_512)

# %% [markdown]
# <details>
# <summary>Solution to exercise 4 (<code>course_utils/solutions/ch08.py</code>)</summary>
#
# ```python
# @lru_cache(maxsize=4)  # the checker asks twice (the learner's answer, then the expected value)
# def flops_ratio(model_name: str = "minilm", tokens: int = 512) -> float:
#     """Counted training FLOPs of one input of `tokens` tokens over the 6·N·tokens estimate."""
#     import torch
#
#     from ..models import load_classifier
#     from ..pretraining import non_embedding_parameters
#     from ..tools import training_flops
#
#     model, _ = load_classifier(model_name, num_labels=2, device="cpu")
#     model.train()
#     ids = torch.full((1, tokens), 1000)
#     batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
#              "labels": torch.zeros(1, dtype=torch.long)}  # fmt: skip
#     counted = training_flops(model, batch)["total"]
#     return counted / (6 * non_embedding_parameters(model) * tokens)
# ```
#
# </details>
#
# The attention scores and the weighted sum cost 12·layers·T²·hidden FLOPs per sequence, which
# grows with the *square* of the length while 6·N·T grows linearly: at 512 tokens that is a
# sizeable share of the total, at 64 a small one. The rule is a good estimate for the short
# inputs of this course and an underestimate for long contexts.

# %% [markdown]
# ## Summary
#
# The numbers of this run (every one computed above):

# %% tags=["course-summary"]
summary_numbers = {
    "datasets: batched map speed-up": f"{t_one / t_batched:.1f}x",
    "padding share: fixed 128 / dynamic / length buckets": " / ".join(
        f"{padding_table.iloc[i]['padding share (training split)']:.0%}" for i in range(3)),
    "inference time, fixed 128 vs buckets": f"{fixed:.2f} s vs {bucketed:.2f} s",
    "validation accuracy: Trainer / course loop / LoRA": (
        f"{trainer_eval['eval_accuracy']:.1%} / {loop_history.final_metrics['accuracy']:.1%} / "
        f"{lora_history.final_metrics['accuracy']:.1%}"),
    "profiled step: matrix products / dropout / data loading": (
        f"{matmul_share:.0%} / {category_table['share'].get('dropout (random masks)', 0):.0%} / "
        f"{phase_table.loc['data loading', 'share']:.1%}"),
    "FLOPs counted / 6·N·tokens": f"{counted['total'] / estimate:.3f}",
    "throughput and MFU": f"{throughput['reviews / s']:.1f} reviews/s, MFU {throughput['MFU']:.0%}",
    "learning rates flagged by the divergence check": ", ".join(f"{lr:g}" for lr in flagged),
    "planted bugs caught by the checks": ", ".join(
        k for k, r in bugs.items() if run_checks(r, N_VAL, majority)),
    "same seeds -> identical weights": str(repro_rows["same seeds again"]["identical weights"]),
    "2 processes vs 1: largest weight difference": "not run (SMOKE)"
    if weight_gap is None
    else f"{weight_gap:.1e}",
    "notebook wall time": f"{(time.perf_counter() - notebook_start) / 60:.1f} min",
}  # fmt: skip
for key, value in summary_numbers.items():
    print(f"{key}: {value}")

# %% [markdown]
# - **datasets** stores typed tables (`ClassLabel` carries the label names), `map` with
#   `batched=True` feeds the fast tokenizer many texts per call, `filter` selects rows, and
#   datasets on disk cache every `map` under a fingerprint of the data and the function.
# - **Fast tokenizers** map every token back to its characters (offsets, word ids), truncate into
#   overlapping windows, and pad three ways. Padding to a fixed length wastes most of the
#   computation on short texts; dynamic padding and length buckets recover it, measured in
#   seconds.
# - **Trainer** is configured by `TrainingArguments` (over a hundred fields; write out the ones
#   you change) and extended by **callbacks**; `report_to=["tensorboard"]` logs it. The course
#   loop does the same job on **accelerate** and logs through its own callback; **peft** adds LoRA
#   in two lines and merges it away for deployment.
# - **TensorBoard** event files are plain files: read them back (`EventAccumulator`, `tbparse`),
#   plot them, compare runs; `%tensorboard` shows them live in Jupyter and Colab.
# - **torch.profiler** shows where a step's time goes (here matrix products first, dropout's masks
#   a visible cost, data loading negligible) and writes a Chrome trace. **FlopCounterMode** counts
#   FLOPs: 6·N·tokens is close for short inputs and misses attention's T² cost for long ones.
#   MFU compares the model's FLOP rate with what the machine's matrix product reaches.
# - **Debugging** is measuring: per-layer gradient norms, a divergence check that stops a bad
#   learning rate before any NaN, a watch that names the first non-finite module, and checks
#   that catch shuffled labels (a baseline on the same data fails too) and a frozen model
#   (layers that never move).
# - **Reproducibility**: the same seeds give bit-identical runs here; another seed, another data
#   order or another thread count does not. Record versions, device, threads, seeds, settings,
#   data fingerprints and the commit with every run.
# - **Several processes**: `torchrun` launches data-parallel training; the ranks see disjoint
#   data and stay identical. On two CPU cores it is no faster; with a device per process it is
#   how training scales. `accelerate launch --cpu --num_processes 2` silently runs one process.
# - §7's reading list, **verified**: what exists is cited with its identifier, what does not is
#   named and corrected.
#
# ## 小结
#
# - **datasets** 以带类型的表格存储数据（`ClassLabel` 自带标签名）；`map` 配合 `batched=True` 让快速分词器一次处理许多文本；`filter` 用于筛选行；存放在磁盘上的数据集会以“数据 + 函数”的指纹缓存每一次 `map` 的结果。
# - **快速分词器**能把每个词元映射回原文的字符位置（偏移量、词编号），能把长文本截断成相互重叠的窗口，并提供三种填充方式。对短文本来说，填充到固定长度会把大部分计算浪费在填充上；动态填充和按长度分桶可以把这些浪费找回来——本章以秒为单位做了测量。
# - **Trainer** 由 `TrainingArguments` 配置（一百多个字段，只需写出你改动的那些），用**回调**扩展；`report_to=["tensorboard"]` 即可记录日志。本课程自己的训练循环基于 **accelerate** 完成同样的任务，并通过自己的回调写日志；**peft** 两行代码加上 LoRA，部署时还可以把它合并回权重。
# - **TensorBoard** 的事件文件就是普通文件：可以读回（`EventAccumulator`、`tbparse`）、画图、比较多次运行；在 Jupyter 和 Colab 中用 `%tensorboard` 实时查看。
# - **torch.profiler** 显示一步训练的时间花在哪里（这里首先是矩阵乘法，dropout 生成随机掩码的开销清晰可见，数据加载可以忽略），并能导出 Chrome 时间线。**FlopCounterMode** 统计浮点运算量：对短输入 6·N·tokens 的估计很准，对长输入则漏掉了注意力随长度平方增长的开销。MFU 把模型的浮点运算速率与本机矩阵乘法实际能达到的速率相比较。
# - **调试**就是测量：逐层梯度范数；在出现任何 NaN 之前就能叫停过大学习率的发散检查；指出第一个输出非有限值的模块的监视器；以及能发现标签错位（在同一数据上训练的基线也失败）和模型被冻结（某些层从未改变）的检查。
# - **可复现性**：这里相同的随机种子给出逐位相同的结果；换一个种子、换一种数据顺序或换线程数则不然。每次运行都应记录版本、设备、线程数、种子、全部设置、数据指纹和代码提交号。
# - **多进程**：`torchrun` 启动数据并行训练；各个进程看到互不重叠的数据，参数始终保持一致。在两个 CPU 核上它并不更快；每个进程各有一块设备时，这才是训练扩展的方式。`accelerate launch --cpu --num_processes 2` 实际上只运行一个进程，而且不会报错。
# - 经过**核实**的 §7 阅读清单：存在的资源都附上标识符，不存在的资源逐一指出并更正。
#
# **Next:** chapter 9 measures the trends of §8 — efficiency, quantisation, scale, privacy,
# interpretability and adaptive prompts — with the tools of this chapter.
