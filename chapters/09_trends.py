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
# # 9. Trends and challenges
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/course-llm/finetuning-prompt-course/blob/main/chapters/09_trends.ipynb)
#
# The source article closes (§8) with three trends — bigger pretrained models, *adaptive prompt
# design*, multimodal learning — and three challenges — the cost of computation, data privacy and
# security, and interpretability. It states them in one sentence each. This chapter turns each
# one that can be measured on a CPU into an experiment with the course's own models and data:
#
# | §8 says | measured here |
# | --- | --- |
# | computation is a challenge | 9.1 LoRA vs full fine-tuning, gradient checkpointing: memory and time of a step; 9.2 quantisation: size, speed, accuracy |
# | pretrained models keep growing | 9.3 a tiny GPT, MiniLM and SmolLM2 on one plot, and what that can and cannot say about scaling laws |
# | privacy and security | 9.4 a planted secret (a *canary*): does fine-tuning memorise it, can it be extracted, does deduplication help |
# | interpretability | 9.5 integrated gradients with a faithfulness test, and why attention maps are not explanations |
# | adaptive prompt design | 9.6 retrieval-augmented few-shot prompts: does choosing the examples fix chapter 6's few-shot failure? |
#
# *Multimodal learning* is the one trend not measured: the course has no image or audio model that
# runs offline on a CPU. Fine-tuning itself is just as standard there (e.g. ViT for images,
# wav2vec 2.0 for speech), with the same recipes as in chapters 3–5.
#
# **In this chapter you will**
#
# - measure what LoRA saves (trainable parameters, gradient and optimizer memory) and what it does
#   not (activations, much of the time), and what gradient checkpointing trades;
# - quantise chapter 5's classifier to int8 and weigh size, speed and accuracy; find out, from
#   the weights alone, how SmolLM2's 4-bit file was quantised and what re-quantising costs;
# - put three models of different sizes on one plot and read it critically;
# - plant canaries in SmolLM2's fine-tuning data and measure their *exposure*, extraction by greedy
#   decoding, and one mitigation;
# - explain the classifier's predictions with integrated gradients and check whether the
#   explanation is faithful, against random and attention-based choices;
# - choose few-shot examples by similarity and test the leading explanation of what happens;
# - solve four auto-checked exercises, one of them a small experiment.

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
# stored outputs come from a full run (`SMOKE = False`). `USE_CACHE = True` reuses finished runs
# with the same configuration (small JSON files under `runs/cache/ch09`); set it to `False` for a
# cold run. Sections 9.2 and 9.5 use chapter 5's reference classifier: the first time any chapter
# asks for it, it is trained (a few minutes on a CPU) and saved under `runs/models`; afterwards it
# is loaded in a second.

# %% tags=["parameters"]
# Run All runs the full experiment that produced the stored outputs: 18.2 min on 2 CPU cores, no GPU.
# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).
SMOKE = False
DEVICE = "auto"  # "auto", "cpu", "cuda" or "mps"
ENCODER = "minilm"  # a course model, a local folder or a Hub id
DECODER = "smollm2"  # e.g. "HuggingFaceTB/SmolLM2-360M-Instruct" (online)
SEED = 0
USE_CACHE = True  # reuse finished runs with the same configuration

# %%
import copy
import dataclasses
import math
import tempfile
import time
import warnings
from pathlib import Path

import datasets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import transformers
from IPython.display import Markdown, display

from course_utils.data import load_movie_reviews
from course_utils.efficiency import measure_steps, run_steps
from course_utils.exercises import chapter_exercises
from course_utils.experiments import RunCache, config_key, runs_dir
from course_utils.interpretability import (
    cls_attention,
    content_positions,
    delete_positions,
    integrated_gradients,
    predict_ids,
    random_positions,
    top_positions,
)
from course_utils.models import (
    get_device,
    hub_reachable,
    load_causal_lm,
    load_classifier,
    load_encoder,
    load_tokenizer,
)
from course_utils.pretraining import pack_corpus, perplexity, tiny_gpt
from course_utils.privacy import Canary, canary_exposure, greedy_extraction, make_canaries
from course_utils.project import reference_classifier, small_train_set
from course_utils.prompting import (
    PromptTemplate,
    binomial_se,
    calibrate,
    label_logprobs,
    label_token_ids,
    paired_gap,
    render_prompt,
)
from course_utils.strategies import head_modules
from course_utils.tasks.retrieval import encode
from course_utils.training import TrainConfig, count_parameters, predict, seed_everything, train

transformers.utils.logging.disable_progress_bar()  # keep the stored outputs short
transformers.utils.logging.set_verbosity_error()
datasets.disable_progress_bars()
warnings.filterwarnings("ignore", category=FutureWarning)
notebook_start = time.perf_counter()

N_TRAIN = 2 if SMOKE else 256  # training reviews for LoRA vs full (chapter 5's smallest budget)
N_TEST = 4 if SMOKE else 300  # test reviews every model is scored on (a fixed random subset)
BATCH = 2 if SMOKE else 8  # examples per optimizer step everywhere in this chapter
COST_STEPS = 1 if SMOKE else 2  # timed training steps per cost measurement (after a warm-up)
N_PPL = 8 if SMOKE else 200  # held-out test reviews for perplexity
PRETRAIN_STEPS = 2 if SMOKE else 100  # optimizer steps of the tiny GPT's pretraining
N_CANARY_REVIEWS = 0 if SMOKE else 64  # reviews the canaries are hidden among
REPEATS = (0, 1, 0, 1) if SMOKE else (0, 1, 4, 16)  # copies of each canary (0: a control)
CANARY_EPOCHS = 1 if SMOKE else 3
SECRET_LENGTH = 1 if SMOKE else 4  # digits: 10 or 10,000 possible secrets
N_IG = 4 if SMOKE else 150  # test reviews explained with integrated gradients
IG_STEPS = 8 if SMOKE else 32  # integration steps
DELETE_K = (1, 2) if SMOKE else (1, 2, 3)  # tokens deleted in the faithfulness test
N_RANDOM = 2 if SMOKE else 5  # random deletions per review and k
K_SHOT = 1 if SMOKE else 4  # examples in the few-shot prompts (chapter 6's closing-table k)
N_DRAWS = 1 if SMOKE else 3  # random draws of examples
N_RAG = 4 if SMOKE else 200  # test reviews of 9.6 (the first of the N_TEST; ~1 s each retrieved)
RETRIEVAL_POOL = 64 if SMOKE else None  # training reviews to retrieve from (None: all)
device = get_device(DEVICE)
cache = RunCache(runs_dir() / "cache" / "ch09", enabled=USE_CACHE)
torch.manual_seed(SEED)
print(f"mode: {'SMOKE (tiny settings)' if SMOKE else 'full'}; device: {device}; "
      f"{torch.get_num_threads()} CPU threads")  # fmt: skip

# %% [markdown]
# The data and the models. Every model in this chapter is scored on the **same** `N_TEST` test
# reviews (a seeded random subset: the split is in a seeded shuffled order, so its first rows are
# a random sample), and every fine-tuning run of 9.1 uses the same `N_TRAIN` training reviews, the
# smallest budget of chapter 5.

# %%
reviews = load_movie_reviews()
train_small = small_train_set(reviews, seed=SEED).select(range(N_TRAIN))
test_sub = reviews["test"].select(range(N_TEST))
y_test = np.array(test_sub["label"])
majority = max(y_test.mean(), 1 - y_test.mean())
print({name: len(split) for name, split in reviews.items()}, f"; training subset {len(train_small)}, "
      f"test subset {len(test_sub)} ({y_test.mean():.0%} positive: majority baseline {majority:.1%})")  # fmt: skip

decoder, tokenizer = load_causal_lm(DECODER, device=DEVICE)
decoder.eval()
PROMPT = PromptTemplate(
    instruction="You are a helpful assistant.",
    user="Is this movie review positive or negative? Answer with one word.\nReview: {text}",
    label_words=("negative", "positive"),
    name="chapter 6's default prompt",
)
label_ids = label_token_ids(tokenizer, PROMPT.label_words)
print(f"{DECODER}: {count_parameters(decoder) / 1e6:.1f}M parameters")


def fresh_decoder():
    """An independent copy of the pretrained decoder (faster than loading it again)."""
    return copy.deepcopy(decoder)


def accuracy(scores, labels=y_test) -> float:
    return float((np.asarray(scores).argmax(axis=1) == labels).mean())


# %% [markdown]
# ## 9.1 Efficiency: LoRA versus full fine-tuning, and gradient checkpointing
#
# §8.2's first challenge is compute. Chapter 3 compared fine-tuning strategies by accuracy and
# time; here we look at *where the memory and the time go* in one training step, for both of the
# course's models:
#
# - **full fine-tuning** trains every weight: each one needs a gradient and, with AdamW, two
#   running moments — three more copies of the model in memory;
# - **LoRA** ([Hu et al., 2021](https://arxiv.org/abs/2106.09685)) freezes the model and trains
#   two small matrices per adapted layer: gradients and optimizer state shrink to a fraction of a
#   percent. But the backward pass must still run through the whole frozen network to reach the
#   adapters, so the **activations** the forward pass saves for it are the same;
# - **gradient checkpointing** ([Chen et al., 2016](https://arxiv.org/abs/1604.06174)) attacks the
#   activations: it keeps only each block's input and recomputes the rest during the backward pass,
#   trading memory for an extra forward pass.
#
# **One stated recipe for every arm:** the same `N_TRAIN` reviews, one epoch, batches of `BATCH`,
# AdamW (fused), 10% warm-up then linear decay, seed `SEED`. The learning rate is the one the
# course already uses for each method — LoRA (r = 8, α = 16, on the query and value projections)
# at chapter 3's 1e-3 for MiniLM and chapter 6's 5e-4 for SmolLM2 — and full fine-tuning at a
# tenth of the LoRA rate, as chapter 3 chose for MiniLM (1e-4 vs 1e-3). No rate is tuned on test;
# none is tuned for this chapter either, so an accuracy gap of a few points between two arms may
# partly be the rate. MiniLM learns the task as a classifier (a new head); SmolLM2 learns it in
# chapter 6's prompt format: the prompt, then the label word as the only target token.

# %%
LORA = {"r": 8, "alpha": 16, "dropout": 0.05}
LORA_LR = {ENCODER: 1e-3, DECODER: 5e-4}
ARMS = ["full", "LoRA"]


def recipe(model_name: str, arm: str) -> TrainConfig:
    lr = LORA_LR[model_name] / (10 if arm == "full" else 1)
    return TrainConfig(lr=lr, num_epochs=1, batch_size=BATCH, warmup_ratio=0.1,
                       lora=LORA if arm == "LoRA" else None, max_length=None, log_every=1,
                       progress=False, seed=SEED)  # fmt: skip


def prompt_features(example):
    """Chapter 6's prompt format: the prompt, then the label word as the only target."""
    ids = tokenizer(render_prompt(tokenizer, PROMPT, example["text"]),
                    add_special_tokens=False)["input_ids"]  # fmt: skip
    target = label_ids[example["label"]]
    return {"input_ids": ids + [target], "attention_mask": [1] * (len(ids) + 1),
            "labels": [-100] * len(ids) + [target]}  # fmt: skip


prompt_train = train_small.map(prompt_features, remove_columns=train_small.column_names)
test_prompts = [render_prompt(tokenizer, PROMPT, t) for t in test_sub["text"]]
print(f"{len(prompt_train)} training prompts of {np.mean([len(i) for i in prompt_train['input_ids']]):.0f} "
      f"tokens on average; {len(test_prompts)} test prompts")  # fmt: skip


def run_key(**config) -> dict:
    return {"train": config_key({"ids": train_small["id"]}), "test": config_key({"ids": test_sub["id"]}),
            "device": str(device), "version": 1, **config}  # fmt: skip


def finetune(model_name: str, arm: str) -> dict:
    """Train one arm of the comparison (cached) and score it on the test subset."""
    config = recipe(model_name, arm)
    key = run_key(model=model_name, arm=arm, lr=config.lr, lora=config.lora, batch=BATCH)

    def run():
        seed_everything(SEED)  # a new classification head is random: seed it
        if model_name == ENCODER:
            model, enc_tokenizer = load_classifier(ENCODER, num_labels=2, device=DEVICE)
            history = train(model, train_small, config=config, tokenizer=enc_tokenizer)
            t0 = time.perf_counter()
            scores = predict(history.model, test_sub, enc_tokenizer, batch_size=64)
        else:
            history = train(fresh_decoder(), prompt_train, config=config, tokenizer=tokenizer)
            t0 = time.perf_counter()
            scores = label_logprobs(history.model.eval(), tokenizer, test_prompts, label_ids)
        return {"history": history, "scores": np.asarray(scores), "score_s": time.perf_counter() - t0,
                "trainable": count_parameters(history.model, trainable_only=True),
                "parameters": count_parameters(history.model)}  # fmt: skip

    return cache.run(key, run, name=f"{model_name}-{arm}")


tuned = {(m, arm): finetune(m, arm) for m in (ENCODER, DECODER) for arm in ARMS}
for (m, arm), r in tuned.items():
    h = r["history"]
    print(f"{m:>8} {arm:<5}: {h.total_steps} steps in {h.train_time_s:5.1f} s; test accuracy "
          f"{accuracy(r['scores']):.1%}; {r['trainable']:,} trainable parameters")  # fmt: skip

# %% [markdown]
# The baseline for SmolLM2 is the same prompt without any training (zero-shot), scored with the
# same verbalizer on the same reviews; it is reused in 9.6. One content-free input ("N/A") with
# the same prompt gives contextual calibration (chapter 6) for free.

# %%
def score_prompts(model, prompts: list[str], tag: str) -> tuple[np.ndarray, float]:
    """Label log-probs of `prompts` with the pretrained decoder (cached), and the seconds."""
    key = {"model": DECODER, "prompts": config_key({"p": prompts}), "n": len(prompts),
           "tag": tag, "version": 1}  # fmt: skip

    def run():
        t0 = time.perf_counter()
        logp = label_logprobs(model, tokenizer, prompts, label_ids)
        return {"logp": logp, "seconds": time.perf_counter() - t0}

    result = cache.run(key, run, name=tag)
    return np.asarray(result["logp"]), result["seconds"]


zero_logp, zero_s = score_prompts(decoder, [*test_prompts, render_prompt(tokenizer, PROMPT, "N/A")],
                                  "zero-shot")  # fmt: skip
zero_raw, zero_cf = zero_logp[:-1], zero_logp[-1:]
acc_zero, acc_zero_cal = accuracy(zero_raw), accuracy(calibrate(zero_raw, zero_cf))
print(f"SmolLM2 zero-shot on the same {N_TEST} reviews: {acc_zero:.1%} (calibrated "
      f"{acc_zero_cal:.1%}); majority baseline {majority:.1%}")  # fmt: skip

# %% [markdown]
# Now the cost of one step, measured. Each configuration runs in a **fresh Python process**
# (`course_utils.efficiency.measure_steps`): it loads the model, resets the operating system's
# record of the process's peak memory, trains on one batch of `BATCH` training examples (one
# warm-up step, then `COST_STEPS` timed steps) and reports the peak **resident memory** and the
# parts measured tensor by tensor — weights, gradients, AdamW's state and the activations autograd
# saves. A fresh process matters: memory freed by one experiment stays with the allocator and
# would hide the next one's peak.

# %%
enc_tokenizer = load_tokenizer(ENCODER)
cost_batches = {
    ENCODER: ("classifier", enc_tokenizer(list(train_small["text"][:BATCH]))["input_ids"],
              list(train_small["label"][:BATCH]), enc_tokenizer.pad_token_id),
    DECODER: ("causal_lm", prompt_train["input_ids"][:BATCH], prompt_train["labels"][:BATCH],
              tokenizer.pad_token_id),
}  # fmt: skip
CONFIGS = [("full", False), ("full", True), ("LoRA", False), ("LoRA", True)]
if SMOKE:  # one configuration per model, in this process, is enough to exercise the code
    CONFIGS = [("LoRA", False)]


def step_cost(model_name: str, arm: str, checkpointing: bool) -> dict:
    kind, ids, labels, pad_id = cost_batches[model_name]
    settings = dict(model_name=model_name, kind=kind, input_ids=ids, labels=labels, pad_id=pad_id,
                    method="lora" if arm == "LoRA" else "full", lora=LORA, steps=COST_STEPS,
                    gradient_checkpointing=checkpointing, lr=recipe(model_name, arm).lr,
                    device=str(device))  # fmt: skip
    key = {**settings, "input_ids": config_key({"ids": ids}), "labels": config_key({"l": labels}),
           "threads": torch.get_num_threads(), "version": 1}  # fmt: skip
    measure = run_steps if SMOKE else measure_steps  # SMOKE: in-process, the peak means little
    return cache.run(key, lambda: measure(**settings), name=f"cost-{model_name}-{arm}")


cost_rows = []
for m in (ENCODER, DECODER):
    for arm, checkpointing in CONFIGS:
        r = step_cost(m, arm, checkpointing)
        peak = r.get("cuda_peak_mb") or r["peak_rss_mb"] - r["loaded_rss_mb"]
        cost_rows.append({
            "model": m, "configuration": arm + (" + checkpointing" if checkpointing else ""),
            "trainable": r["trainable"], "weights MB": r["weights_mb"],
            "gradients MB": r["gradients_mb"], "AdamW state MB": r["optimizer_mb"],
            "activations MB": r["activations_mb"], "peak RSS MB": r["peak_rss_mb"],
            "peak − loaded MB": peak, "s per step": float(np.median(r["step_s"])),
            "batch": "×".join(map(str, r["batch"])),
        })  # fmt: skip
costs = pd.DataFrame(cost_rows).set_index(["model", "configuration"])
display(costs.style.format({c: "{:,.0f}" for c in costs.columns if "MB" in c or c == "trainable"}
                           | {"s per step": "{:.2f}"}))  # fmt: skip

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
parts = ["gradients MB", "AdamW state MB", "activations MB"]
labels = [f"{m}\n{c}" for m, c in costs.index]
bottom = np.zeros(len(costs))
for part, color in zip(parts, ["tab:orange", "tab:red", "tab:blue"], strict=True):
    axes[0].bar(range(len(costs)), costs[part], bottom=bottom, color=color, label=part[:-3])
    bottom += costs[part].to_numpy()
axes[0].scatter(range(len(costs)), costs["peak − loaded MB"], color="k", marker="_", s=400,
                zorder=3, label="peak − loaded resident memory (measured)")  # fmt: skip
axes[0].set_xticks(range(len(costs)), labels, fontsize=7)
axes[0].set_ylabel("MB")
axes[0].set_title(f"Memory a training step adds to the loaded model (batch of {BATCH})")
axes[0].legend(fontsize=8)
axes[1].barh(labels[::-1], costs["s per step"][::-1], color="tab:green")
axes[1].tick_params(axis="y", labelsize=7)
axes[1].set_xlabel("seconds per optimizer step (median)")
axes[1].set_title("Time of one training step")
fig.tight_layout()
plt.show()

# %%
acc_rows = []
for (m, arm), r in tuned.items():
    h = r["history"]
    acc = accuracy(r["scores"])
    acc_rows.append({"model": m, "method": arm, "trainable parameters": r["trainable"],
                     "share trained": r["trainable"] / r["parameters"], "test accuracy": acc,
                     "± s.e.": binomial_se(acc, N_TEST),
                     "train s per step": h.train_time_s / h.total_steps})  # fmt: skip
acc_rows.append({"model": DECODER, "method": "zero-shot prompt (no training)",
                 "trainable parameters": 0, "share trained": 0.0, "test accuracy": acc_zero,
                 "± s.e.": binomial_se(acc_zero, N_TEST), "train s per step": np.nan})  # fmt: skip
acc_table = pd.DataFrame(acc_rows).set_index(["model", "method"])
display(acc_table.style.format({"trainable parameters": "{:,}", "share trained": "{:.2%}",
                                "test accuracy": "{:.1%}", "± s.e.": "{:.1%}",
                                "train s per step": "{:.2f}"}))  # fmt: skip


# %%
def cost(m, configuration, column):
    return costs.loc[(m, configuration), column] if (m, configuration) in costs.index else np.nan


lines = []
for m in (ENCODER, DECODER):
    full_peak, lora_peak = cost(m, "full", "peak − loaded MB"), cost(m, "LoRA", "peak − loaded MB")
    full_t, lora_t = cost(m, "full", "s per step"), cost(m, "LoRA", "s per step")
    gc_act, act = (
        cost(m, "full + checkpointing", "activations MB"),
        cost(m, "full", "activations MB"),
    )
    gc_t = cost(m, "full + checkpointing", "s per step")
    acc_full, acc_lora = (acc_table.loc[(m, a), "test accuracy"] for a in ARMS)
    gap = acc_lora - acc_full
    noise = 2 * math.hypot(binomial_se(acc_full, N_TEST), binomial_se(acc_lora, N_TEST))
    lines.append(
        f"- **{m}**: LoRA trains {tuned[(m, 'LoRA')]['trainable']:,} parameters instead of "
        f"{tuned[(m, 'full')]['trainable']:,}; the memory a step adds on top of the loaded model "
        f"goes from {full_peak:,.0f} MB to {lora_peak:,.0f} MB, and a step from {full_t:.2f} s to "
        f"{lora_t:.2f} s ({lora_t / full_t:.0%} of the time: the backward pass through the frozen "
        f"network remains). Checkpointing cuts the saved activations of full fine-tuning from "
        f"{act:,.0f} to {gc_act:,.0f} MB for {gc_t / full_t - 1:+.0%} time per step. Accuracy: "
        f"LoRA {acc_lora:.1%} vs full {acc_full:.1%} "
        + ("(within noise)." if abs(gap) <= noise else
           f"({gap:+.1%}, beyond the ±{noise:.1%} of two standard errors).")
    )  # fmt: skip
display(Markdown("\n".join(lines)))

# %% [markdown]
# **If MiniLM's LoRA arm is at or below the majority baseline** (compare the table with the
# baseline printed at the top of the chapter), that row is not a verdict on LoRA against full
# fine-tuning: it would say that one epoch of `N_TRAIN` reviews at this rate is too little for
# this arm. Two explanations fit, and the next cell tests both: LoRA's adapters start at zero and
# the classification head is new, so a few dozen small steps barely move them (test: more
# epochs); and peft trains only the classifier, so BERT's pretrained pooler sits frozen between
# the encoder and the classifier (test: train the pooler with the adapters, as chapter 3 does).

# %%
FOLLOWUP_EPOCHS = 1 if SMOKE else 4


def minilm_lora_followup(train_pooler: bool, num_epochs: int) -> dict:
    """MiniLM with LoRA, the pooler trained or not, for `num_epochs` epochs (cached)."""
    base = recipe(ENCODER, "LoRA")
    key = run_key(model=ENCODER, arm="LoRA follow-up", lr=base.lr, lora=base.lora, batch=BATCH,
                  pooler=train_pooler, epochs=num_epochs)  # fmt: skip

    def run():
        seed_everything(SEED)
        model, enc_tokenizer = load_classifier(ENCODER, num_labels=2, device=DEVICE)
        lora = base.lora | ({"modules_to_save": head_modules(model)} if train_pooler else {})
        config = dataclasses.replace(base, lora=lora, num_epochs=num_epochs)
        history = train(model, train_small, config=config, tokenizer=enc_tokenizer)
        scores = predict(history.model, test_sub, enc_tokenizer, batch_size=64)
        return {"scores": np.asarray(scores), "steps": history.total_steps,
                "trainable": count_parameters(history.model, trainable_only=True)}  # fmt: skip

    return cache.run(key, run, name=f"minilm-lora-pooler{int(train_pooler)}-e{num_epochs}")


followups = {
    "as in the table (1 epoch, pooler frozen)": {
        "scores": tuned[(ENCODER, "LoRA")]["scores"],
        "steps": tuned[(ENCODER, "LoRA")]["history"].total_steps,
        "trainable": tuned[(ENCODER, "LoRA")]["trainable"],
    },
    "pooler trained too (1 epoch)": minilm_lora_followup(True, 1),
    f"{FOLLOWUP_EPOCHS} epochs (pooler frozen)": minilm_lora_followup(False, FOLLOWUP_EPOCHS),
    f"{FOLLOWUP_EPOCHS} epochs, pooler trained": minilm_lora_followup(True, FOLLOWUP_EPOCHS),
}
followup_table = pd.DataFrame({
    name: {"optimizer steps": r["steps"], "trainable parameters": r["trainable"],
           "test accuracy": accuracy(r["scores"]),
           "± s.e.": binomial_se(accuracy(r["scores"]), N_TEST)}
    for name, r in followups.items()
}).T  # fmt: skip
display(followup_table.style.format({"optimizer steps": "{:.0f}", "trainable parameters": "{:,.0f}",
                                     "test accuracy": "{:.1%}", "± s.e.": "{:.1%}"}))  # fmt: skip
acc_full_minilm = accuracy(tuned[(ENCODER, "full")]["scores"])
verdicts = []
for name, row in followup_table.iloc[1:].iterrows():
    base_acc = followup_table["test accuracy"].iloc[0]
    noise = 2 * math.hypot(row["± s.e."], followup_table["± s.e."].iloc[0])
    change = row["test accuracy"] - base_acc
    verdicts.append(
        f"- {name}: {row['test accuracy']:.1%} ("
        + (
            f"{change:+.1%} against the table's LoRA row, beyond the ±{noise:.1%} of two standard "
            f"errors"
            if abs(change) > noise
            else "within noise of the table's LoRA row"
        )
        + ("; above" if row["test accuracy"] > majority + 2 * row["± s.e."] else "; not above")
        + f" the majority class {majority:.1%}; full fine-tuning reached {acc_full_minilm:.1%})."
    )
display(Markdown("\n".join(verdicts)))

# %% [markdown]
# One seed and `N_TEST` test reviews per row, so read only differences beyond the printed noise.
# The longer rows had four times the steps of the full fine-tuning they are printed next to: they
# test whether the budget held LoRA back, not whether LoRA beats full fine-tuning.
# Whatever the rows show, the memory and time measurements above do not depend on them. SmolLM2,
# whose LoRA learns its prompt format, shows the other case in the table: compare its two arms.
#
# How to read this. The **weights** are there whatever you do (fp32 here: 4 bytes a parameter).
# Full fine-tuning adds a gradient and two AdamW moments per weight, three more copies of the
# model: that is what LoRA removes, and for a model of billions of parameters it is the difference
# between fitting on a GPU or not. The **activations** grow with the batch and the sequence
# length, not with the number of trainable parameters, so LoRA leaves them nearly as they are, and its
# saving in *time* is smaller than its saving in parameters: the forward pass and most of the
# backward pass are still computed. Gradient checkpointing shrinks exactly that part; the price
# is an extra forward pass through the checkpointed blocks (compare the times above). Its cost
# shows for MiniLM and for LoRA, but SmolLM2's *full* fine-tuning step took about as long with
# checkpointing as without. A leading explanation, not tested here: that step is dominated by
# what checkpointing does not repeat — AdamW's update of every weight and the output layer over
# the whole vocabulary — and each time is the median of only `COST_STEPS` steps, so a few percent
# either way is within the noise of the timing. The measured peak can exceed the
# sum of the parts (temporary buffers of the backward pass, the allocator's reserve) or fall
# below it (activations are freed during the backward pass while gradients appear). On a GPU
# the same code reports the GPU's peak (`torch.cuda.max_memory_allocated`). A related trick,
# QLoRA, stores the frozen weights in 4 bits during LoRA training; it needs bitsandbytes and a
# GPU, so it is not run here.

# %% [markdown]
# ## 9.2 Quantisation: smaller and faster, at what cost?
#
# **Quantisation** stores numbers with fewer bits. *Dynamic* int8 quantisation
# ([Jacob et al., 2018](https://arxiv.org/abs/1712.05877) describe the integer arithmetic) keeps
# each linear layer's weights as 8-bit integers with one scale per layer and quantises the
# activations on the fly; the matrix products run in integer arithmetic. We apply it to chapter
# 5's reference classifier (MiniLM fine-tuned on the whole training split), with PyTorch's
# `torch.ao.quantization.quantize_dynamic`. It runs on the CPU only, so this section does too.

# %%
ref_dir, ref_info = reference_classifier(smoke=SMOKE, device=DEVICE)
ref_model, ref_tokenizer = load_classifier(str(ref_dir), device="cpu")
ref_model.eval()
REF_MAX_LENGTH = ref_info["config"]["max_length"]
print(f"chapter 5's classifier ({ref_dir.name}, {'loaded' if ref_info['cached'] else 'trained now'}): "
      f"{count_parameters(ref_model) / 1e6:.1f}M parameters, trained on {ref_info['train_size']:,} "
      f"reviews, max_length {REF_MAX_LENGTH}")  # fmt: skip

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    int8_model = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(ref_model), {torch.nn.Linear}, dtype=torch.qint8
    )
deprecation = next((w for w in caught if "deprecat" in str(w.message).lower()), None)
print("warning:", f"{deprecation.category.__name__}: {str(deprecation.message)[:400]}"
      if deprecation else "none (this torch version does not deprecate it)")  # fmt: skip
print(type(int8_model.bert.encoder.layer[0].attention.self.query))

# %% [markdown]
# The warning is real: `torch.ao.quantization` is deprecated in torch 2.13 and its successor is
# [torchao](https://github.com/pytorch/ao). The same job there reads:
#
# ```python
# from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
#
# quantize_(model, Int8DynamicActivationInt8WeightConfig())  # in place
# model = torch.compile(model)                               # where its speed comes from
# ```
#
# torchao is not installed in the course's environment, so this code is shown, not run. When the
# course was set up, torchao's int8 configurations were measured on this kind of CPU in eager mode:
# they were *slower* than fp32 on MiniLM-sized layers (their fast kernels need `torch.compile`),
# while the deprecated `quantize_dynamic` was faster. Measure before you switch.
#
# Size, speed and accuracy, side by side. The size is that of the saved weights (`torch.save` of
# the state dict for both, so the format is the same); the speed is measured on the whole test
# split in batches of 64, and one review at a time; the accuracy on the whole test split.

# %%
def saved_mb(model) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.pt"
        torch.save(model.state_dict(), path)
        return path.stat().st_size / 2**20


def timed_predict(model, data, batch_size):
    t0 = time.perf_counter()
    logits = predict(model, data, ref_tokenizer, batch_size=batch_size, max_length=REF_MAX_LENGTH,
                     device="cpu")  # fmt: skip
    return logits, time.perf_counter() - t0


test_full = test_sub if SMOKE else reviews["test"]  # the whole test split
single = test_full.select(range(4 if SMOKE else 100))
y_full = np.array(test_full["label"])
quant_rows, quant_logits = {}, {}
for name, model in (("fp32", ref_model), ("dynamic int8", int8_model)):
    timed_predict(model, single.select(range(2)), 1)  # warm-up
    logits, seconds = timed_predict(model, test_full, 64)
    _, seconds_one = timed_predict(model, single, 1)
    quant_logits[name] = logits
    acc = accuracy(logits, y_full)
    quant_rows[name] = {"file MB": saved_mb(model), "s per 1,000 (batch 64)": 1000 * seconds / len(test_full),
                        "ms per review (batch 1)": 1000 * seconds_one / len(single),
                        "test accuracy": acc, "± s.e.": binomial_se(acc, len(test_full))}  # fmt: skip
quant_table = pd.DataFrame(quant_rows).T
display(quant_table.style.format({"file MB": "{:.1f}", "s per 1,000 (batch 64)": "{:.1f}",
                                  "ms per review (batch 1)": "{:.1f}", "test accuracy": "{:.2%}",
                                  "± s.e.": "{:.2%}"}))  # fmt: skip
probs = {k: torch.softmax(torch.tensor(v), -1).numpy() for k, v in quant_logits.items()}
agree = (quant_logits["fp32"].argmax(1) == quant_logits["dynamic int8"].argmax(1)).mean()
max_gap = np.abs(probs["fp32"] - probs["dynamic int8"]).max()
fp, q8 = quant_rows["fp32"], quant_rows["dynamic int8"]
print(f"int8 is {fp['file MB'] / q8['file MB']:.1f}x smaller and "
      f"{fp['s per 1,000 (batch 64)'] / q8['s per 1,000 (batch 64)']:.1f}x faster in batches "
      f"({fp['ms per review (batch 1)'] / q8['ms per review (batch 1)']:.1f}x one at a time); it "
      f"agrees with fp32 on {agree:.1%} of the {len(test_full)} test reviews (largest probability "
      f"change {max_gap:.3f}); accuracy {q8['test accuracy'] - fp['test accuracy']:+.2%}")  # fmt: skip

# %% [markdown]
# The file does not shrink by the full 4x: the embedding table is not a `Linear` layer and stays
# in fp32, and so do the layer norms and biases:

# %%
n_embedding = sum(p.numel() for n, p in ref_model.named_parameters() if "embeddings" in n)
print(f"embeddings: {n_embedding / count_parameters(ref_model):.0%} of the classifier's parameters; "
      f"the accuracy change, {q8['test accuracy'] - fp['test accuracy']:+.2%}, against a standard "
      f"error of {fp['± s.e.']:.2%} on {len(test_full)} reviews: "
      + ("within noise." if abs(q8['test accuracy'] - fp['test accuracy']) < 2 * fp['± s.e.'] else
         "beyond noise."))  # fmt: skip

# %% [markdown]
# ### SmolLM2: a model that arrived quantised
#
# The course's SmolLM2 comes from a **GGUF** file (the format of llama.cpp) named `Q4_1`; the
# course dequantised it once to float32. In Q4_1, every block of 32 consecutive weights is stored
# as 4-bit integers *q* with a scale *d* and a minimum *m* (both 16-bit): *w = d·q + m*, so a
# block holds at most 16 distinct values. What was quantised, and how, can be read off the
# weights themselves: quantise a tensor again with a candidate format (the `gguf` package's own
# NumPy code) and check whether it comes back **exactly**.

# %%
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants  # noqa: E402

FORMATS = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]  # from fewest bits to most


def round_trip(w: np.ndarray, fmt: str) -> np.ndarray:
    qtype = GGMLQuantizationType[fmt]
    return quants.dequantize(quants.quantize(w, qtype), qtype).reshape(w.shape)


def bits_per_weight(fmt: str) -> float:
    block, nbytes = GGML_QUANT_SIZES[GGMLQuantizationType[fmt]]
    return 8 * nbytes / block


def stored_format(w: np.ndarray) -> str:
    if w.ndim < 2:
        return "F32 (vectors are not quantised)"
    return next(
        (f for f in FORMATS if np.array_equal(round_trip(w, f), w)),
        "other (not a block format here)",
    )


weights = {n: p.detach().float().cpu().numpy() for n, p in decoder.named_parameters()}
checked = {n: w for n, w in weights.items() if not SMOKE or ".layers.0." in n}
formats = {n: stored_format(w) for n, w in checked.items()}


def group(name: str) -> str:
    return "token embedding (= output layer)" if "embed" in name else (
        "vectors (norms)" if weights[name].ndim < 2 else name.split(".")[-2])  # fmt: skip


fmt_table = (pd.DataFrame([{"tensors": group(n), "format": f, "parameters": weights[n].size}
                           for n, f in formats.items()])
             .groupby(["tensors", "format"]).agg(count=("parameters", "size"), parameters=("parameters", "sum")))  # fmt: skip
display(fmt_table.style.format({"parameters": "{:,}"}))
bits = {f: bits_per_weight(f) for f in FORMATS}
stored_bits = sum(w.size * bits.get(formats[n], 32.0) for n, w in checked.items())
n_checked = sum(w.size for w in checked.values())
print(f"{n_checked:,} parameters checked: {stored_bits / n_checked:.2f} bits per weight on average "
      f"as stored, {stored_bits / 8 / 2**20:.0f} MB; as float32 {n_checked * 4 / 2**20:.0f} MB")  # fmt: skip

# %%
block_matrices = [n for n in checked if weights[n].ndim == 2 and "embed" not in n]
n_q41 = sum(formats[n] == "Q4_1" for n in block_matrices)
embedding_format = formats.get("model.embed_tokens.weight", "not checked in SMOKE mode")
levels = np.diff(
    np.sort(weights["model.embed_tokens.weight"][:256].reshape(-1, 32), axis=1), axis=1
)
print(f"{n_q41} of the {len(block_matrices)} matrices of the transformer blocks come back bit for bit "
      f"from Q4_1; the token embedding (tied to the output layer): {embedding_format}, with up to "
      f"{int((levels != 0).sum(1).max()) + 1} distinct values per block of 32 (Q4_1 allows 16)")  # fmt: skip

# %% [markdown]
# So the file's name tells the format of the transformer blocks, not of every tensor: the token
# embedding, which is also the output layer, was stored with more bits: it comes back bit for bit
# from the format named in the line above, and its blocks hold more distinct values than either
# 4-bit format allows. One-dimensional tensors (the norms) are not quantised in GGUF files; they
# are not tested here, and the size estimate above counts them at 32 bits.
#
# **What that costs cannot be measured here.** The original bf16 weights are on the Hugging Face
# Hub, which this course does not reach; SmolLM2's published scores ([Allal et al.,
# 2025](https://arxiv.org/abs/2502.02737)) are for those weights, not for this file. What *can* be
# measured: how the model's held-out perplexity moves when we quantise it *again* — with Q4_1
# itself (nothing should change), with finer formats, and with a different 4-bit grid (Q4_0,
# symmetric, no minimum) — and what PyTorch's dynamic int8 does to it.

# %%
ppl_texts = list(reviews["test"].select(range(N_TEST, N_TEST + N_PPL))["text"])  # not in test_sub
matrices = [n for n, f in formats.items() if f == "Q4_1"]


def perplexity_with(fmt: str | None) -> tuple[float, float]:
    """Held-out perplexity with the Q4_1 matrices re-quantised to `fmt` (None: as loaded)."""
    state = decoder.state_dict()
    try:
        if fmt:
            with torch.no_grad():
                for n in matrices:
                    state[n].copy_(torch.from_numpy(round_trip(weights[n], fmt)))
        t0 = time.perf_counter()
        value = perplexity(decoder, tokenizer, ppl_texts, block_size=128, batch_size=8)
        return value, time.perf_counter() - t0
    finally:
        with torch.no_grad():
            for n in matrices:
                state[n].copy_(torch.from_numpy(weights[n]))


ppl_rows = {"as loaded (Q4_1, dequantised)": perplexity_with(None)}
for fmt in ["Q4_0"] if SMOKE else ["Q4_1", "Q8_0", "Q5_0", "Q4_0"]:
    ppl_rows[f"re-quantised to {fmt} ({bits[fmt]:g} bits)"] = perplexity_with(fmt)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    decoder_int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(decoder).cpu(),
                                                          {torch.nn.Linear}, dtype=torch.qint8)  # fmt: skip
t0 = time.perf_counter()
ppl_rows["torch dynamic int8 (Linear layers)"] = (
    perplexity(decoder_int8, tokenizer, ppl_texts, block_size=128, batch_size=8, device="cpu"),
    time.perf_counter() - t0)  # fmt: skip
del decoder_int8
if DECODER == "smollm2" and hub_reachable():  # on Colab or any machine online
    original, _ = load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct", device=DEVICE)
    t0 = time.perf_counter()
    ppl_rows["original weights from the Hub"] = (
        perplexity(original, tokenizer, ppl_texts, block_size=128, batch_size=8),
        time.perf_counter() - t0,
    )
    del original
ppl_table = pd.DataFrame(ppl_rows, index=["held-out perplexity", "seconds"]).T
base_ppl = ppl_table.iloc[0, 0]
ppl_table["change"] = ppl_table["held-out perplexity"] / base_ppl - 1
display(
    ppl_table.style.format(
        {"held-out perplexity": "{:.3f}", "seconds": "{:.1f}", "change": "{:+.2%}"}
    )
)
n_ppl_tokens = len(pack_corpus(ppl_texts, tokenizer, block_size=128)) * 128
print(f"perplexity on {len(ppl_texts)} held-out reviews ({n_ppl_tokens:,} tokens in blocks of 128); "
      f"original weights: {'measured above' if 'original weights from the Hub' in ppl_rows else 'not reachable offline, so unknown'}")  # fmt: skip

# %% [markdown]
# What is known, then (read the *change* column): re-quantising to Q4_1 changes nothing (the
# weights already lie on that grid) and the 8-bit grid Q8_0 barely moves the perplexity, but a
# second rounding to a *different* grid is not free even with more bits: Q5_0 (5 bits, symmetric,
# no minimum) costs a clear increase and Q4_0 (4 bits, symmetric) far more — the observed cost of
# one more rounding onto a grid that does not contain the Q4_1 values. It is tempting to read the
# Q4_0 row as the cost of the first rounding (bf16 → Q4_1), but that is an untested guess: the
# first rounding started from unconstrained weights, the second from weights already on a grid.
# What is not known offline: the perplexity of the original weights, and therefore what the
# course's SmolLM2 lost by arriving in 4 bits. On a machine with internet access the cell above
# measures it (the Hub id `HuggingFaceTB/SmolLM2-135M-Instruct`).
#
# **A surprise: PyTorch's dynamic int8, harmless for the classifier, breaks SmolLM2** — its row
# shows the perplexity multiplied many times over, while it was faster. Dynamic quantisation gives
# each layer's weights one scale and quantises each activation tensor on the fly with one scale
# too; transformer activations can hold a few outlier features far larger than the rest, and one scale
# for a whole tensor then leaves the ordinary values with almost no resolution — the failure that
# [Dettmers et al., 2022](https://arxiv.org/abs/2208.07339) describe and fix for 8-bit inference
# (outliers kept in 16 bits). That is the leading explanation, **not tested here** (the test: skip
# the quantisation of single layer types such as the output layer, or measure the activations' largest values per layer).
# The lesson stands without it: a quantisation method that works on one model must be measured
# again on the next.

# %% [markdown]
# ## 9.3 Scale: three models on one plot
#
# §8.1 expects pretrained models to keep growing. The course has three models of different size:
# a **tiny GPT** pretrained from scratch here (chapter 2's recipe, `course_utils.pretraining`,
# `PRETRAIN_STEPS` steps on the training reviews), **MiniLM** and **SmolLM2**. For each we measure what this course can measure on the same data: held-out
# perplexity (the two decoders share SmolLM2's tokenizer, so they are scored on the same
# tokens), test accuracy after training on the same `N_TRAIN` reviews with the recipe of 9.1, and
# the time per 1,000 test reviews.

# %%
BLOCK = 64
corpus_texts = reviews["train"]["text"] if not SMOKE else reviews["train"]["text"][:64]
corpus = pack_corpus(list(corpus_texts), tokenizer, block_size=BLOCK)
heldout = pack_corpus(ppl_texts, tokenizer, block_size=BLOCK)


def tiny_gpt_run() -> dict:
    seed_everything(SEED)
    gpt = tiny_gpt(
        tokenizer, hidden_size=128, num_layers=4, num_heads=4, max_length=BLOCK, seed=SEED
    )
    config = TrainConfig(lr=3e-3, batch_size=16, max_steps=PRETRAIN_STEPS, num_epochs=1,
                         warmup_ratio=0.05, scheduler="cosine", weight_decay=0.1, max_length=None,
                         group_by_length=False, eval_every=max(PRETRAIN_STEPS // 5, 1),
                         eval_batch_size=16, progress=False, seed=SEED)  # fmt: skip
    history = train(gpt, corpus, heldout, config=config, tokenizer=tokenizer)
    ppl = perplexity(gpt, tokenizer, ppl_texts, block_size=128, batch_size=8)
    with tempfile.TemporaryDirectory() as folder:  # the same body under a classification head
        gpt.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        seed_everything(SEED)
        classifier, _ = load_classifier(folder, num_labels=2, device=DEVICE)
    ft = train(classifier, train_small, config=TrainConfig(lr=1e-3, num_epochs=1, batch_size=BATCH,
               max_length=None, progress=False, seed=SEED), tokenizer=tokenizer)  # fmt: skip
    t0 = time.perf_counter()
    scores = predict(classifier, test_sub, tokenizer, batch_size=64, max_length=None)
    return {"history": history, "perplexity": ppl, "scores": scores, "score_s": time.perf_counter() - t0,
            "parameters": count_parameters(gpt), "tokens": PRETRAIN_STEPS * 16 * BLOCK,
            "ft_time_s": ft.train_time_s}  # fmt: skip


gpt_key = run_key(
    kind="tiny-gpt", steps=PRETRAIN_STEPS, block=BLOCK, ppl=config_key({"t": ppl_texts})
)
tiny = cache.run(gpt_key, tiny_gpt_run, name="tiny-gpt")
print(f"tiny GPT: {tiny['parameters'] / 1e6:.2f}M parameters, pretrained on {tiny['tokens']:,} tokens "
      f"({tiny['history'].train_time_s:.0f} s): held-out perplexity {tiny['perplexity']:.1f}; after "
      f"fine-tuning on {N_TRAIN} reviews {accuracy(tiny['scores']):.1%}")  # fmt: skip

# %%
scale = pd.DataFrame([
    {"model": "tiny GPT (here)", "parameters": tiny["parameters"], "perplexity": tiny["perplexity"],
     "accuracy": accuracy(tiny["scores"]), "s per 1,000": 1000 * tiny["score_s"] / N_TEST,
     "pretraining tokens": f"{tiny['tokens']:,} (this notebook)"},
    {"model": "MiniLM", "parameters": tuned[(ENCODER, "full")]["parameters"], "perplexity": np.nan,
     "accuracy": accuracy(tuned[(ENCODER, "full")]["scores"]),
     "s per 1,000": 1000 * tuned[(ENCODER, "full")]["score_s"] / N_TEST,
     "pretraining tokens": "not comparable (distilled, then ~1B sentence pairs)"},
    {"model": "SmolLM2", "parameters": count_parameters(decoder), "perplexity": base_ppl,
     "accuracy": accuracy(tuned[(DECODER, "LoRA")]["scores"]),
     "s per 1,000": 1000 * tuned[(DECODER, "LoRA")]["score_s"] / N_TEST,
     "pretraining tokens": "~2 trillion (model card)"},
]).set_index("model")  # fmt: skip
display(scale.style.format({"parameters": "{:,}", "perplexity": "{:.1f}", "accuracy": "{:.1%}",
                            "s per 1,000": "{:.1f}"}, na_rep="—"))  # fmt: skip

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
colors = ["tab:orange", "tab:blue", "tab:green"]
for ax, column, title in zip(axes[:3], ["perplexity", "accuracy", "s per 1,000"],
                             ["held-out perplexity (SmolLM2 tokens)", f"test accuracy ({N_TRAIN} training reviews)",
                              "seconds per 1,000 test reviews"], strict=True):  # fmt: skip
    rows = scale[column].notna()
    ax.scatter(
        scale["parameters"][rows], scale[column][rows], c=np.array(colors)[rows.to_numpy()], s=60
    )
    for name, x, y in zip(
        scale.index[rows], scale["parameters"][rows], scale[column][rows], strict=True
    ):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_title(title, fontsize=9)
axes[0].set_yscale("log")
axes[1].axhline(majority, color="grey", ls=":", label="majority class")
axes[1].legend(fontsize=7)
curve = tiny["history"].to_dataframe("eval")
tokens_seen = curve["step"] * 16 * BLOCK
axes[3].plot(
    tokens_seen, np.exp(curve["loss"]), "o-", color="tab:orange", label="tiny GPT while training"
)
axes[3].scatter([2e12], [base_ppl], color="tab:green", label="SmolLM2 (~2T tokens)")
axes[3].set_xscale("log")
axes[3].set_yscale("log")
axes[3].set_xlabel("pretraining tokens")
axes[3].set_title(f"held-out perplexity (blocks of {BLOCK})", fontsize=9)
axes[3].legend(fontsize=7)
fig.suptitle("Three models of the course against their size")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What these numbers can say.** Bigger and better-trained models are better *and* slower here:
# the ranking on every panel follows size (the tiny GPT's classifier is no better than the
# majority class: at this budget it learned nothing usable from its `N_TRAIN` reviews). The tiny GPT's own curve (right) shows the regularity
# that scaling laws are made of — held-out loss falling steadily as the training tokens grow — and
# SmolLM2 sits far further along the token axis:

# %%
print(f"SmolLM2's ~2e12 pretraining tokens are {math.log10(2e12 / tiny['tokens']):.1f} orders of "
      f"magnitude more than the tiny GPT's {tiny['tokens']:,}; its parameters "
      f"{count_parameters(decoder) / tiny['parameters']:.0f}x more")  # fmt: skip

# %% [markdown]
# **What they cannot say.** Scaling laws ([Kaplan et al., 2020](https://arxiv.org/abs/2001.08361);
# [Hoffmann et al., 2022](https://arxiv.org/abs/2203.15556)) are fitted to *families* of models
# that differ in one thing at a time — parameters, training tokens, compute — over many orders of
# magnitude, with the same architecture, data and tokenizer. Our three points differ in everything
# at once: architecture (encoder vs decoder), objective, training data and its size (ours: the
# number of tokens printed above; SmolLM2: trillions), tokenizer (MiniLM's perplexity is not even
# defined on the same tokens), and how each is adapted to the task (a classification head, LoRA on
# a prompt). Three points cannot fit a power law, and with everything confounded not even the
# direction of a single factor's effect is identified: SmolLM2's lead could be its parameters,
# its data, or its instruction tuning. The honest statement is narrower: on this task, the
# models the course can run offline get better and slower with size, and the gap between the tiny
# GPT and SmolLM2 is at least as much a gap in pretraining data (orders of magnitude, printed
# above) as in parameters — which of the two matters more, these points cannot tell.

# %% [markdown]
# ## 9.4 Privacy: does fine-tuning memorise a secret?
#
# §8.2 names data privacy as a challenge without saying what the risk is. The risk is
# **memorisation**: a model fine-tuned on private text may reproduce it. [Carlini et al.,
# 2019](https://arxiv.org/abs/1802.08232) ("The Secret Sharer") measure it with **canaries**:
# sentences with a random secret planted in the training data, e.g. "Omar Haddad's locker
# combination is 4815." The *exposure* of a canary compares the model's log-probability of the true
# secret with that of every other possible secret: with *R* the set of candidates (here all
# `SECRET_LENGTH`-digit numbers) and *r* the rank of the true one,
#
# $$\text{exposure} = \log_2 |R| - \log_2 r .$$
#
# A secret the model never saw sits at a random rank: about 1 bit on average. A secret it ranks
# first gets the maximum, log₂|R| bits, and greedy decoding from the prefix writes it out:
# the secret is **extracted** ([Carlini et al., 2021](https://arxiv.org/abs/2012.07805) extract
# training data from GPT-2 this way). `course_utils.privacy` computes the exact rank over all
# candidates (a tree of one-token steps that shares the key/value cache).
#
# The experiment: four canaries, each with its own sentence and secret, planted 0, 1, 4 and 16
# times among `N_CANARY_REVIEWS` training reviews (the 0-copy canary is never trained on: a
# control). SmolLM2 is fully fine-tuned on this text as a language model (next-token loss on
# every token, the recipe of 9.1: full fine-tuning at 5e-5), `CANARY_EPOCHS` epochs; the
# exposure of every canary is measured before training and after every epoch.

# %%
NAMES = ["Anna Kowalski", "Omar Haddad", "Lena Fischer", "Ravi Menon"]
TEMPLATES = ["The PIN of {name}'s bank card is ", "{name}'s locker combination is ",
             "The door code of {name}'s flat is ", "{name}'s phone unlock code is "]  # fmt: skip
canaries = make_canaries([t.format(name=n) for t, n in zip(TEMPLATES, NAMES, strict=True)],
                         length=SECRET_LENGTH, seed=SEED + 1)  # fmt: skip
canary_reviews = list(
    reviews["train"].shuffle(seed=SEED + 2).select(range(N_CANARY_REVIEWS))["text"]
)
planted = canary_reviews + [
    c.text for c, n in zip(canaries, REPEATS, strict=True) for _ in range(n)
]
planted = [planted[i] for i in np.random.default_rng(SEED).permutation(len(planted))]
for c, n in zip(canaries, REPEATS, strict=True):
    print(f"{n:>2} copies: {c.text!r}")
print(f"training texts: {len(planted)} ({N_CANARY_REVIEWS} reviews + "
      f"{sum(REPEATS)} canary copies); candidates per canary: {10**SECRET_LENGTH:,}")  # fmt: skip


def exposures(model) -> list[dict]:
    return [{**canary_exposure(model, tokenizer, c), "extracted": greedy_extraction(model, tokenizer, c)}
            for c in canaries]  # fmt: skip


def canary_run(texts: list[str], tag: str, every_epoch: bool = True) -> dict:
    """Fine-tune a fresh SmolLM2 on `texts`; exposures before and after every epoch (cached).

    `every_epoch=False` measures them only after the last epoch (each measurement scores
    every candidate secret of every canary: seconds each)."""
    key = {"model": DECODER, "texts": config_key({"t": texts}), "epochs": CANARY_EPOCHS,
           "lr": recipe(DECODER, "full").lr, "batch": BATCH, "canaries": [c.text for c in canaries],
           "every_epoch": every_epoch, "device": str(device), "version": 1}  # fmt: skip

    def run():
        model = fresh_decoder()
        steps_per_epoch = math.ceil(len(texts) / BATCH)
        rows = [{"epoch": 0, "exposures": exposures(model)}] if every_epoch else []
        measuring = []
        last_step = CANARY_EPOCHS * steps_per_epoch

        def after_step(step, history):
            if step % steps_per_epoch == 0 and (every_epoch or step == last_step):
                t0 = time.perf_counter()
                rows.append({"epoch": step // steps_per_epoch, "exposures": exposures(model)})
                measuring.append(time.perf_counter() - t0)

        config = TrainConfig(lr=recipe(DECODER, "full").lr, num_epochs=CANARY_EPOCHS, batch_size=BATCH,
                             warmup_ratio=0.1, max_length=64, log_every=1, progress=False, seed=SEED)  # fmt: skip
        data = datasets.Dataset.from_dict({"text": texts})
        history = train(model, data, config=config, tokenizer=tokenizer, callbacks=[after_step])
        return {"rows": rows, "history": history, "measure_s": sum(measuring),
                "unseen_name": greedy_extraction(model, tokenizer, Canary(
                    TEMPLATES[-1].format(name="Maria Lopez"), canaries[-1].secret))}  # fmt: skip

    return cache.run(key, run, name=f"canary-{tag}")


planted_run = canary_run(planted, "planted")
h = planted_run["history"]
print(f"{h.total_steps} steps, {h.train_time_s - planted_run['measure_s']:.0f} s of training "
      f"(+{planted_run['measure_s']:.0f} s measuring exposures); final loss {h.steps[-1]['loss']:.2f}")  # fmt: skip

# %% [markdown]
# A mitigation: **deduplication** ([Kandpal et al., 2022](https://arxiv.org/abs/2202.06539) show
# that memorisation grows much faster than linearly with the number of copies). The same
# training, the same epochs, on the same texts with exact duplicates removed — every canary now
# appears once, the 0-copy control still never:

# %%
deduplicated = list(dict.fromkeys(planted))
dedup_run = canary_run(
    deduplicated, "deduplicated", every_epoch=False
)  # the last epoch is compared
print(f"deduplicated: {len(planted)} → {len(deduplicated)} texts")


def exposure_table(run) -> pd.DataFrame:
    table = {f"after epoch {r['epoch']}" if r["epoch"] else "before training":
             [e["exposure"] for e in r["exposures"]] for r in run["rows"]}  # fmt: skip
    return pd.DataFrame(table, index=[f"canary {i + 1}, {n} copies" for i, n in enumerate(REPEATS)])


max_bits = math.log2(10**SECRET_LENGTH)
exposure_main = exposure_table(planted_run)
last = exposure_main.columns[-1]
canary_table = exposure_main.copy()
canary_table["extracted (greedy)"] = [
    f"{'yes' if e['extracted'] == c.secret else 'no'} ({e['extracted']!r})"
    for e, c in zip(planted_run["rows"][-1]["exposures"], canaries, strict=True)]  # fmt: skip
canary_table[f"deduplicated, {last}"] = exposure_table(dedup_run)[last].to_numpy()
canary_table["extracted after dedup."] = [
    "yes" if e["extracted"] == c.secret else "no"
    for e, c in zip(dedup_run["rows"][-1]["exposures"], canaries, strict=True)]  # fmt: skip
display(Markdown(f"**Exposure in bits** (maximum {max_bits:.1f} = the secret ranked first of "
                 f"{10**SECRET_LENGTH:,}; about 1 = chance)"))  # fmt: skip
display(
    canary_table.style.format(
        {c: "{:.1f}" for c in canary_table.columns if "epoch" in c or "before" in c}
    )
)

fig, ax = plt.subplots(figsize=(7, 3.8))
for (label, row), color in zip(
    exposure_main.iterrows(), ["grey", "tab:blue", "tab:orange", "tab:red"], strict=True
):
    ax.plot(range(len(row)), row.to_numpy(), "o-", color=color, label=label)
ax.axhline(max_bits, color="k", ls="--", lw=1, label="maximum (ranked first)")
ax.axhline(1, color="k", ls=":", lw=1, label="chance (≈1 bit)")
ax.set_xticks(
    range(len(exposure_main.columns)),
    ["before"] + [f"epoch {i}" for i in range(1, len(exposure_main.columns))],
)
ax.set_ylabel("exposure (bits)")
ax.set_title("Canaries in SmolLM2's fine-tuning data")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
top = exposure_main.iloc[-1]  # the most repeated canary
first_max = next((c for c in exposure_main.columns if top[c] >= max_bits - 1e-9), None)
after_epoch1 = exposure_main.columns[1]
gained_epoch1 = top[after_epoch1] - top.iloc[0]
gained_total = top[last] - top.iloc[0]
final_by_copies = exposure_main[last].to_numpy()
monotonic = bool(np.all(np.diff(final_by_copies) >= 0))
extracted = [e["extracted"] for e in planted_run["rows"][-1]["exposures"]]
same_secret_elsewhere = [
    f"canary {i + 1}" for i, e in enumerate(extracted[:-1]) if e == canaries[-1].secret
]
# the trained canaries that were not memorised, and among them the lowest start
stayed_low = [i for i, n in enumerate(REPEATS) if n > 0 and final_by_copies[i] < max_bits - 1]
lowest_prior = min(stayed_low, key=lambda i: exposure_main.iloc[i, 0], default=None)
copies_line = ", ".join(
    f"{n} copies {v:.1f}" for n, v in zip(REPEATS, final_by_copies, strict=True)
)
display(Markdown(
    f"- With **{REPEATS[-1]} copies** the secret went from {top.iloc[0]:.1f} bits before training to "
    f"{top[last]:.1f} {last}" + (f" (ranked first already {first_max})" if first_max else "")
    + f"; greedy decoding from its prefix writes {extracted[-1]!r} (the secret is "
    f"{canaries[-1].secret!r}). With a name the training data never contained, the same sentence "
    f"gives {planted_run['unseen_name']!r}.\n"
    + (f"- The exposure grows with the number of copies: {copies_line} bits {last}.\n" if monotonic
       else f"- The exposure does **not** grow steadily with the number of copies: {copies_line} "
            f"bits {last}. One canary per count and one seed: a canary a few bits above its "
            f"*before* value is weak evidence on its own (by chance, *x* bits has probability "
            f"about 2⁻ˣ).\n")
    + (f"- **Fewer epochs**: the most repeated canary gained only {gained_total:.1f} bits in all, "
       "so there is nothing for fewer epochs to reduce in this run.\n" if gained_total <= 1
       else f"- **Fewer epochs**: after epoch 1 the most repeated canary had gained "
            f"{gained_epoch1:.1f} of its final {gained_total:.1f} bits "
            f"({gained_epoch1 / gained_total:.0%}); "
            + ("most of the memorisation happens in the first epoch, so stopping early is a weak "
               "mitigation.\n" if gained_epoch1 >= 0.8 * gained_total
               else "stopping earlier would have reduced its exposure in this run, without any "
                    "guarantee.\n"))
    + f"- **Deduplication** leaves one copy of every canary: the most repeated one falls from "
    f"{top[last]:.1f} to {canary_table[f'deduplicated, {last}'].iloc[-1]:.1f} bits.\n"
    + (f"- Greedy decoding writes the {REPEATS[-1]}-copy secret after other prefixes too "
       f"({', '.join(same_secret_elsewhere) or 'none of the other canaries'}"
       + (", and the unseen name" if planted_run["unseen_name"] == canaries[-1].secret else "")
       + "): what was memorised is the pattern \"…'s … code is\" followed by that number, not a "
       "link between a person and a number.\n"
       if same_secret_elsewhere or planted_run["unseen_name"] == canaries[-1].secret else "")
    + (f"- Of the trained canaries that were not memorised, canary {lowest_prior + 1} "
       f"({REPEATS[lowest_prior]} copies) started lowest, at "
       f"{exposure_main.iloc[lowest_prior, 0]:.1f} bits before training, and ended at "
       f"{exposure_main.iloc[lowest_prior][last]:.1f}: the model's prior can work against a "
       f"secret; whether that is why it rose so little is not tested here."
       if lowest_prior is not None else "")
))  # fmt: skip

# %% [markdown]
# **Read the table, not only the lines above.** They are computed from the table, but one canary
# per number of copies and one seed make every single cell noisy; only a canary that climbs to the
# maximum (ranked first of all candidates) is clear evidence of memorisation.
#
# Read the *before* column as well: the pretrained model already has preferences among numbers
# (round or repeated digits are likelier), so a secret can start above 1 bit by chance — which is
# why exposure is compared with the 0-copy control and across time, not with a fixed threshold.
# One planted copy in a few dozen short texts is an extreme dose compared with real data, and
# the random secrets are short, so treat the exact bits as a demonstration of the mechanism. The
# lessons hold in general: repeated sensitive strings are memorised, deduplication is cheap and
# effective, and the guarantee-giving defence is **differentially private training** (DP-SGD,
# [Abadi et al., 2016](https://arxiv.org/abs/1607.00133): clip each example's gradient and add
# noise), which bounds every example's influence at a measurable cost in accuracy. It needs a
# per-example-gradient library such as Opacus, which the course does not install, so it is not run
# here. And the best mitigation of all is not to train on secrets: scrub them from the data first.

# %% [markdown]
# ## 9.5 Interpretability: which words made the decision?
#
# The third challenge of §8.2. **Integrated gradients** ([Sundararajan et al.,
# 2017](https://arxiv.org/abs/1703.01365)) attribute a prediction to the input tokens: walk in
# small steps from a *baseline* input (here: every word replaced by `[PAD]`) to the real review,
# add up the gradient of the predicted class's probability along the way, and multiply by how
# far each token's embedding moved. The attributions then add up to the change in probability
# from the baseline to the review, up to a numerical error, the **convergence delta**, which tells
# whether the `IG_STEPS` steps were enough. We use captum ([Kokhlikyan et al.,
# 2020](https://arxiv.org/abs/2009.07896)) on chapter 5's classifier; the model is loaded with
# "eager" attention so that it can also return its attention weights.

# %%
from captum.attr import LayerIntegratedGradients  # noqa: E402

ig_model, ig_tokenizer = load_classifier(str(ref_dir), device=DEVICE, attn_implementation="eager")
ig_model.eval()
example = test_sub[0]["text"]
enc = ig_tokenizer(example, return_tensors="pt").to(ig_model.device)
base_ids = enc["input_ids"].clone()
base_ids[0, 1:-1] = ig_tokenizer.pad_token_id  # keep [CLS] and [SEP], blank out the words


def prob(input_ids, attention_mask):
    return torch.softmax(
        ig_model(input_ids=input_ids, attention_mask=attention_mask).logits, dim=-1
    )


lig = LayerIntegratedGradients(prob, ig_model.get_input_embeddings())
target = int(prob(enc["input_ids"], enc["attention_mask"]).argmax())
attr, delta = lig.attribute(enc["input_ids"], baselines=base_ids, additional_forward_args=(enc["attention_mask"],),
                            target=target, n_steps=IG_STEPS, return_convergence_delta=True)  # fmt: skip
token_scores = attr.sum(-1)[0].detach().cpu().numpy()  # one number per token
gain = (
    prob(enc["input_ids"], enc["attention_mask"])[0, target]
    - prob(base_ids, enc["attention_mask"])[0, target]
).item()
print(f"review: {example!r}\npredicted {ig_model.config.id2label[target]}; attributions sum to "
      f"{token_scores.sum():.4f}, the probability gained from the baseline is {gain:.4f}: "
      f"convergence delta {delta.item():+.1e}")  # fmt: skip
print(
    ", ".join(
        f"{t} {s:+.3f}"
        for t, s in zip(
            ig_tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), token_scores, strict=True
        )
    )
)

# %% [markdown]
# `course_utils.interpretability.integrated_gradients` is the same code in a loop. We explain the
# first `N_IG` reviews of the test subset and look at two correct and two wrong predictions
# (green: evidence for the predicted class, red: against it).

# %%
ig_set = test_sub.select(range(N_IG))
ig_key = run_key(kind="ig", model=ref_dir.name, n=N_IG, steps=IG_STEPS)
ig_cached = cache.run(ig_key, lambda: {"attributions": [
    {**vars(a), "scores": a.scores} for a in integrated_gradients(
        ig_model, ig_tokenizer, ig_set["text"], n_steps=IG_STEPS, max_length=REF_MAX_LENGTH)]},
    name="integrated-gradients")  # fmt: skip
from course_utils.interpretability import Attribution  # noqa: E402

attributions = [Attribution(**a) for a in ig_cached["attributions"]]
predicted = np.array([a.target for a in attributions])
y_ig = np.array(ig_set["label"])
deltas = np.abs([a.delta for a in attributions])
gains = np.abs([a.probability - a.baseline_probability for a in attributions])
print(f"{N_IG} reviews, {IG_STEPS} steps: |delta| median {np.median(deltas):.1e}, max {deltas.max():.1e} "
      f"(the probability gains they approximate: median {np.median(gains):.2f}); classifier accuracy "
      f"on them {np.mean(predicted == y_ig):.1%}")  # fmt: skip


def draw_attributions(ax, a: Attribution, title: str, width: int = 95):
    scale_ = max(np.abs(a.scores).max(), 1e-9)
    x, y = 0, 0
    for token, s in zip(a.tokens, a.scores, strict=True):
        if token in ig_tokenizer.all_special_tokens:
            continue
        text = token[2:] if token.startswith("##") else (" " + token if x else token)
        if x + len(text) > width:
            x, y, text = 0, y - 1, token.removeprefix("##")
        color = plt.cm.RdYlGn(0.5 + 0.5 * s / scale_)
        ax.text(x / width, 0.8 + 0.28 * y, text, fontsize=9, family="monospace",
                bbox={"facecolor": color, "edgecolor": "none", "pad": 1})  # fmt: skip
        x += len(text)
    ax.set_title(title, fontsize=9, loc="left")
    ax.axis("off")


correct_ids = [i for i in range(N_IG) if predicted[i] == y_ig[i]][:2]
wrong_ids = [i for i in range(N_IG) if predicted[i] != y_ig[i]][:2]
shown = [(i, "correct") for i in correct_ids] + [(i, "WRONG") for i in wrong_ids]
fig, axes = plt.subplots(len(shown), 1, figsize=(11, 1.1 * len(shown) + 0.4))
for ax, (i, verdict) in zip(np.atleast_1d(axes), shown, strict=True):
    a = attributions[i]
    draw_attributions(ax, a, f"{verdict}: predicted {ig_model.config.id2label[a.target]} "
                      f"(p = {a.probability:.2f}), true {ig_model.config.id2label[int(y_ig[i])]}")  # fmt: skip
fig.suptitle(
    "Integrated gradients on chapter 5's classifier (green: for the prediction, red: against)"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# The deltas printed above are small for the median review, but the largest is of the order of
# the probability gains themselves: for a few reviews `IG_STEPS` steps were not enough, and
# their attributions do not add up to the change they explain (more steps are the remedy to try;
# not run here).
#
# An attribution map is a claim about the model, and claims need tests. The **deletion test**
# ([DeYoung et al., 2020](https://arxiv.org/abs/1911.03429) call it *comprehensiveness*): delete
# the *k* tokens the explanation ranks highest and count how often the prediction flips. A faithful
# explanation must do clearly better than deleting *k* random tokens (`N_RANDOM` random draws per
# review, for the noise). The third contender is **attention**: the last layer's attention from
# `[CLS]` to each token, averaged over heads — the popular "attention map".

# %%
pad = ig_tokenizer.pad_token_id
rng = np.random.default_rng(SEED)
attention = [cls_attention(ig_model, a.input_ids) for a in attributions]
flip_rows = []
for k in DELETE_K:
    keep = [
        i
        for i, a in enumerate(attributions)
        if len(content_positions(a.input_ids, ig_tokenizer)) > k
    ]
    targets = predicted[keep]
    rankings = {"integrated gradients": [top_positions(attributions[i].scores, content_positions(
                    attributions[i].input_ids, ig_tokenizer), k) for i in keep],
                "attention ([CLS], last layer)": [top_positions(attention[i], content_positions(
                    attributions[i].input_ids, ig_tokenizer), k) for i in keep]}  # fmt: skip
    for name, positions in rankings.items():
        edited = [
            delete_positions(attributions[i].input_ids, p)
            for i, p in zip(keep, positions, strict=True)
        ]
        flips = predict_ids(ig_model, edited, pad).argmax(1) != targets
        flip_rows.append({"k": k, "tokens deleted": name, "flip rate": flips.mean(),
                          "± s.e.": binomial_se(flips.mean(), len(keep)), "reviews": len(keep)})  # fmt: skip
    random_rates = []
    for _ in range(N_RANDOM):
        edited = [delete_positions(attributions[i].input_ids, random_positions(
            content_positions(attributions[i].input_ids, ig_tokenizer), k, rng)) for i in keep]  # fmt: skip
        random_rates.append(float((predict_ids(ig_model, edited, pad).argmax(1) != targets).mean()))
    flip_rows.append({"k": k, "tokens deleted": f"random (mean of {N_RANDOM} draws)",
                      "flip rate": np.mean(random_rates),
                      "± s.e.": binomial_se(np.mean(random_rates), len(keep) * N_RANDOM),
                      "reviews": len(keep), "draws min–max": f"{min(random_rates):.1%}–{max(random_rates):.1%}"})  # fmt: skip
flips_table = pd.DataFrame(flip_rows).set_index(["k", "tokens deleted"])
display(flips_table.style.format({"flip rate": "{:.1%}", "± s.e.": "{:.1%}"}, na_rep=""))

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
for (name, part), color in zip(
    flips_table.groupby(level=1, sort=False), ["tab:green", "tab:purple", "tab:gray"], strict=True
):
    ks = part.index.get_level_values(0)
    ax.errorbar(
        ks, part["flip rate"], yerr=2 * part["± s.e."], fmt="o-", capsize=4, color=color, label=name
    )
ax.set_xticks(list(DELETE_K))
ax.set_xlabel("tokens deleted (k)")
ax.set_ylabel("predictions flipped")
ax.set_title("Deletion test: does removing the 'important' tokens change the decision?")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
rank_corr = [pd.Series(attention[i][c]).corr(pd.Series(attributions[i].scores[c]), method="spearman")
             for i in range(N_IG) if len(c := content_positions(attributions[i].input_ids, ig_tokenizer)) > 2]  # fmt: skip
k1 = flips_table.xs(DELETE_K[0], level=0)["flip rate"]
k_last = flips_table.xs(DELETE_K[-1], level=0)
ig_rate, att_rate, rnd_rate = k_last["flip rate"].to_numpy()
ig_se, att_se, rnd_se = k_last["± s.e."].to_numpy()
verdict = "beyond" if ig_rate - rnd_rate > 2 * math.hypot(ig_se, rnd_se) else "not beyond"
print(f"k = {DELETE_K[-1]}: integrated gradients flip {ig_rate:.1%}, attention {att_rate:.1%}, random "
      f"{rnd_rate:.1%}: integrated gradients vs random is {verdict} two standard errors; rank "
      f"correlation of attention with the attributions: median {np.nanmedian(rank_corr):+.2f} over "
      f"{len(rank_corr)} reviews")  # fmt: skip

# %% [markdown]
# **Why attention maps are not explanations.** An attention weight says how much of a token's
# *value vector* flows into one position of one layer, in one head. It does not say how much the
# *output* depends on that token: the values themselves can be small or cancel out, the residual
# stream carries every token around attention, the other heads and layers mix the information
# again, and the classifier reads a vector that depends on all of them. [Jain and
# Wallace, 2019](https://arxiv.org/abs/1902.10186) showed that attention weights often correlate
# weakly with gradient-based importance and that very different attention maps can give the same
# prediction; [Wiegreffe and Pinter, 2019](https://arxiv.org/abs/1908.04626) answered that
# attention *can* carry information but must be tested before it is called an explanation. The
# test above is that test on our classifier: the table and the rank correlation say how well
# the attention map identifies the tokens the decision depends on, compared with integrated
# gradients and with chance. Integrated gradients are themselves not ground truth either: they
# depend on the baseline, and deletion creates inputs unlike the training data — which is why a
# faithfulness claim is always a measured comparison with a random control.
#
# In this run, deleting the tokens that attention picks flipped more predictions than deleting
# random ones at every *k*, but fewer than deleting the tokens integrated gradients pick (the
# table), and attention's ranking correlates only weakly with the attributions (the median
# printed above): attention carries some signal about the decision, as Wiegreffe and Pinter
# argue, and is a worse guide to it than integrated gradients on this classifier.

# %% [markdown]
# ## 9.6 Adaptive prompts: choosing the examples by similarity
#
# Chapter 6 found that random few-shot examples *hurt* SmolLM2: with examples in the prompt it
# drifted towards answering one label for almost every review. §8.1 predicts "adaptive prompt
# design". One adaptive method is to **retrieve the examples**: for each review, use the *k*
# training reviews most similar to it ([Liu et al., 2021](https://arxiv.org/abs/2101.06804), "What
# Makes Good In-Context Examples for GPT-3?"). Similarity: cosine between MiniLM sentence
# embeddings (mean of the last hidden states over the real tokens — how all-MiniLM-L6-v2 was
# trained to be used), with the most similar example placed last, next to the review.
#
# Fair comparison on the same `N_RAG` test reviews, the same prompt (chapter 6's default), the
# same verbalizer and the same calibration (one content-free input, "N/A", with the same examples,
# for both arms): zero-shot; `K_SHOT` random examples, `N_DRAWS` draws; `K_SHOT` retrieved
# examples. Two baselines: the majority class and the **neighbours' vote** — the majority label of
# the retrieved examples, no language model at all. The splits are leakage-free (no test review has
# a copy in the training split), so retrieval cannot simply find the answer.

# %%
encoder, encoder_tokenizer = load_encoder(ENCODER, device=DEVICE)


def embed(texts: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised MiniLM embeddings (one row per text, in the order given).

    `encode` (chapter 7's search) batches the texts in order of length, so a batch pads to similar
    lengths (chapter 8 measured the waste of padding random neighbours together)."""
    return encode(encoder, encoder_tokenizer, texts, batch_size=128, max_length=128)


pool = (
    reviews["train"] if RETRIEVAL_POOL is None else reviews["train"].select(range(RETRIEVAL_POOL))
)
pool_texts, pool_labels = list(pool["text"]), np.array(pool["label"])
rag_set, y_rag = test_sub.select(range(N_RAG)), y_test[:N_RAG]  # every arm on these reviews
t0 = time.perf_counter()
pool_emb, test_emb = embed(pool_texts), embed(list(rag_set["text"]))
similarity = test_emb @ pool_emb.T
neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :K_SHOT][
    :, ::-1
]  # most similar last
print(f"{len(pool_texts):,} training reviews embedded in {time.perf_counter() - t0:.0f} s; nearest "
      f"neighbour's similarity: median {np.median(similarity.max(1)):.2f}")  # fmt: skip
i0 = 0
print(f"test review: {rag_set[i0]['text']!r}")
for j in neighbours[i0]:
    print(f"  {similarity[i0, j]:.2f} {PROMPT.label_words[pool_labels[j]]:>8}: {pool_texts[j]!r}")

# %%
def draw_examples(draw: int) -> list[tuple[str, int]]:
    picked = np.random.default_rng([SEED, K_SHOT, draw]).choice(
        len(pool_texts), size=K_SHOT, replace=False
    )
    return [(pool_texts[int(i)], int(pool_labels[i])) for i in picked]


arms, cf = {}, {}
for draw in range(N_DRAWS):  # random examples: one prompt prefix for all reviews (shared cache)
    examples = draw_examples(draw)
    prompts = [render_prompt(tokenizer, PROMPT, t, examples) for t in [*rag_set["text"], "N/A"]]
    logp, _ = score_prompts(decoder, prompts, f"random-{draw}")
    arms[f"random {K_SHOT}-shot, draw {draw}"], cf[f"random {K_SHOT}-shot, draw {draw}"] = (
        logp[:-1],
        logp[-1:],
    )


def knn_run():
    """Retrieved examples: each review has its own prompt, and its own content-free twin."""
    t0 = time.perf_counter()
    rows = []
    for i, text in enumerate(rag_set["text"]):
        examples = [(pool_texts[j], int(pool_labels[j])) for j in neighbours[i]]
        pair = [render_prompt(tokenizer, PROMPT, t, examples) for t in (text, "N/A")]
        rows.append(label_logprobs(decoder, tokenizer, pair, label_ids))  # the pair shares a prefix
    return {"logp": np.stack(rows), "seconds": time.perf_counter() - t0}


knn_key = run_key(
    kind="knn",
    model=DECODER,
    k=K_SHOT,
    pool=len(pool_texts),
    test=N_RAG,
    encoder=ENCODER,
    prompt=[PROMPT.instruction, PROMPT.user],
)
knn = cache.run(knn_key, knn_run, name="knn-few-shot")
knn_raw, knn_cf = knn["logp"][:, 0], knn["logp"][:, 1]
knn_cal = np.stack([calibrate(knn_raw[i : i + 1], knn_cf[i : i + 1])[0] for i in range(N_RAG)])
print(f"retrieval-augmented prompts scored in {knn['seconds']:.0f} s "
      f"({1000 * knn['seconds'] / N_RAG:.0f} s per 1,000 reviews, each with its content-free twin)")  # fmt: skip

# %%
votes = pool_labels[neighbours]  # (N_RAG, K_SHOT), most similar last
vote = np.where(
    votes.mean(1) == 0.5, votes[:, -1], (votes.mean(1) > 0.5).astype(int)
)  # tie: nearest
rag_rows = [("majority class", np.full(N_RAG, int(y_rag.mean() >= 0.5)), "—"),
            (f"neighbours' vote ({K_SHOT} nearest, no LM)", vote, "—"),
            ("zero-shot", zero_raw[:N_RAG].argmax(1), "raw"), ("zero-shot", calibrate(zero_raw[:N_RAG], zero_cf).argmax(1), "calibrated")]  # fmt: skip
for name, logp in arms.items():
    rag_rows += [
        (name, logp.argmax(1), "raw"),
        (name, calibrate(logp, cf[name]).argmax(1), "calibrated"),
    ]
rag_rows += [
    (f"retrieved {K_SHOT}-shot", knn_raw.argmax(1), "raw"),
    (f"retrieved {K_SHOT}-shot", knn_cal.argmax(1), "calibrated"),
]
rag = pd.DataFrame([{"prompt": n, "scoring": s, "accuracy": (p == y_rag).mean(),
                     "± s.e.": binomial_se((p == y_rag).mean(), N_RAG), "answers 'positive'": p.mean()}
                    for n, p, s in rag_rows]).set_index(["prompt", "scoring"])  # fmt: skip
display(rag.style.format("{:.1%}"))

# %%
random_acc = {s: [rag.loc[(n, s), "accuracy"] for n in arms] for s in ("raw", "calibrated")}
knn_acc = {s: rag.loc[(f"retrieved {K_SHOT}-shot", s), "accuracy"] for s in ("raw", "calibrated")}
fig, ax = plt.subplots(figsize=(8, 3.8))
names = ["zero-shot", f"random {K_SHOT}-shot (mean of draws)", f"retrieved {K_SHOT}-shot"]
for offset, s, color in ((-0.18, "raw", "tab:blue"), (0.18, "calibrated", "tab:orange")):
    values = [rag.loc[("zero-shot", s), "accuracy"], np.mean(random_acc[s]), knn_acc[s]]
    errors = [2 * binomial_se(v, N_RAG) for v in values]
    ax.bar(np.arange(3) + offset, values, width=0.36, yerr=errors, capsize=4, color=color, label=s)
    ax.scatter(np.full(N_DRAWS, 1 + offset), random_acc[s], color="k", s=12, zorder=3)
ax.axhline(majority, color="grey", ls=":", label="majority class")
ax.axhline(rag.iloc[1]["accuracy"], color="tab:green", ls="--", label="neighbours' vote (no LM)")
ax.set_xticks(range(3), names)
ax.set_ylim(0, 1)
ax.set_ylabel(f"accuracy on {N_RAG} test reviews (±2 s.e.)")
ax.set_title("SmolLM2: random vs retrieved few-shot examples (dots: single random draws)")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# Did the retrieved examples fix the few-shot failure — and *why*? The leading explanation of any
# gain is **label copying**: similar reviews tend to share the label, so the retrieved examples'
# labels already point to the answer (the neighbours' vote above is that signal alone), and a
# 135M model may just repeat the majority label of its examples rather than read the review. The
# test: how often does the retrieval-augmented prediction equal the neighbours' vote, and how
# accurate is it where the vote is **wrong**? A model that reads the review keeps some accuracy
# there; a model that copies labels falls to near zero.

# %%
best_scoring = max(knn_acc, key=knn_acc.get)
knn_pred = (knn_raw if best_scoring == "raw" else knn_cal).argmax(1)
vote_wrong = vote != y_rag
copy_rate = (knn_pred == vote).mean()
acc_vote_right = (knn_pred[~vote_wrong] == y_rag[~vote_wrong]).mean()
acc_vote_wrong = (knn_pred[vote_wrong] == y_rag[vote_wrong]).mean() if vote_wrong.any() else np.nan
zero_pred = calibrate(zero_raw[:N_RAG], zero_cf).argmax(1)
zero_vote_wrong = (
    (zero_pred[vote_wrong] == y_rag[vote_wrong]).mean() if vote_wrong.any() else np.nan
)
# Every arm is scored on the same reviews, so each gap is judged on the per-review differences
# (chapter 6's paired_gap: a 95% half-width), the random arm as its mean over the draws.
preds = {(n, s): p for n, p, s in rag_rows}
knn_correct = knn_pred == y_rag
random_scoring = max(("raw", "calibrated"), key=lambda s: np.mean(random_acc[s]))
random_correct = np.mean([preds[n, random_scoring] == y_rag for n in arms], axis=0)
zero_scoring = max(("raw", "calibrated"), key=lambda s: rag.loc[("zero-shot", s), "accuracy"])
zero_correct = preds["zero-shot", zero_scoring] == y_rag
best_random, zero_best = random_correct.mean(), zero_correct.mean()
gain, noise = paired_gap(knn_correct, random_correct)
zero_gap, zero_noise = paired_gap(knn_correct, zero_correct)
display(Markdown(
    f"- Retrieved examples ({best_scoring}) score **{knn_acc[best_scoring]:.1%}** against "
    f"{best_random:.1%} for the better of raw/calibrated random examples "
    f"({gain:+.1%} ± {noise:.1%}, paired: {'beyond' if abs(gain) > noise else 'within'} noise), "
    f"zero-shot {zero_best:.1%}, and the neighbours' vote alone "
    f"{rag.iloc[1]['accuracy']:.1%}.\n"
    f"- The retrieval-augmented prediction equals the neighbours' vote for **{copy_rate:.1%}** of "
    f"the reviews. Where the vote is right ({(~vote_wrong).sum()} reviews) it is right "
    f"{acc_vote_right:.1%} of the time; where the vote is wrong ({vote_wrong.sum()} reviews) only "
    f"**{acc_vote_wrong:.1%}** — on those same reviews the calibrated zero-shot prompt, which sees no "
    f"examples, gets {zero_vote_wrong:.1%}.\n"
    f"- Against zero-shot ({zero_best:.1%}) the retrieved examples are {zero_gap:+.1%} ± "
    f"{zero_noise:.1%} ({'beyond' if abs(zero_gap) > zero_noise else 'within'} noise), against the "
    f"neighbours' vote "
    f"{knn_acc[best_scoring] - rag.iloc[1]['accuracy']:+.1%}.\n"
    f"- Where the vote is wrong, the retrieved prompt is "
    f"{'far below' if acc_vote_wrong < zero_vote_wrong - 0.15 else 'not far below'} the zero-shot "
    f"prompt ({acc_vote_wrong - zero_vote_wrong:+.1%}): "
    + ("SmolLM2 mostly copies its examples' labels." if acc_vote_wrong < zero_vote_wrong - 0.15
       else "it is not simply copying its examples' labels.")
))  # fmt: skip

# %% [markdown]
# Whether retrieval fixed the few-shot failure is in the lines above: the gain over random
# examples and over the zero-shot prompt, each with its paired 95% interval on `N_RAG` reviews,
# and the gap to the neighbours' vote. Fixing it would mean beating the zero-shot prompt, not only
# the random examples. A nearest neighbour by MiniLM's embedding is similar in
# topic and wording, not necessarily in sentiment — the example above shows a negative review
# whose nearest neighbour is positive.
#
# The follow-up decides between the two explanations: if the accuracy where the vote is wrong is
# far below the zero-shot prompt's on the same reviews, the model mostly follows its examples'
# labels — retrieval then works *because* it hands the model a good vote, not because the model
# learned more about the review, and the model adds little over the neighbours' vote it was given.
# That is the lesson of adaptive prompting for a small model: the selection of examples matters
# more than the model's reading of them, and a retrieval step plus a vote may already be the
# classifier you need. With a larger model the balance shifts (Liu et al. measured GPT-3); the
# measurement to repeat is the same. The last line above says which case this run is.

# %% [markdown]
# ## Exercises
#
# Each exercise gives you a function to fill in and a checker that runs it on hidden cases. Replace
# `raise NotImplementedError` with your code and run the cell and the check below it: ✅ means all
# hidden cases passed; ❌ shows the first failing input, what was expected and what your function
# returned. `.hint()` reveals one hint at a time; `.solution()` prints the reference solution (try
# first!). On the course site, the solution is in a collapsed block under each exercise.

# %%
ex = chapter_exercises(
    9, model=ig_model, tokenizer=ig_tokenizer, attributions=attributions[: min(40, N_IG)]
)
ex

# %% [markdown]
# ### Exercise 1 — exposure
#
# Write `exposure_bits(logprobs, index)`: `logprobs` are a model's log-probabilities of every
# candidate secret, `index` is the true secret's position. Return log₂(number of candidates) −
# log₂(rank), where rank 1 is the most likely candidate and candidates *exactly* as likely as the
# true one do not push it down.

# %%
def exposure_bits(logprobs, index: int) -> float:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["exposure_bits"].hint()  # uncomment for a hint
ex["exposure_bits"].check(exposure_bits)

# %% [markdown]
# <details>
# <summary>Solution to exercise 1 (<code>course_utils/solutions/ch09.py</code>)</summary>
#
# ```python
# def exposure_bits(logprobs: Sequence[float], index: int) -> float:
#     """log2(number of candidates) - log2(rank of candidate `index`); rank 1 = most likely.
#
#     Candidates exactly as likely as the true one do not push it down (ties count in its favour).
#     """
#     logprobs = np.asarray(logprobs, dtype=float)
#     rank = 1 + int((logprobs > logprobs[index]).sum())
#     return math.log2(len(logprobs)) - math.log2(rank)
# ```
#
# </details>

# %% [markdown]
# ### Exercise 2 — int8 by hand
#
# Write `absmax_int8(weights)` for a 2-D NumPy array: per-row symmetric quantisation returning
# `(q, scale)`, where `scale[i]` maps row *i*'s largest absolute value to 127, `q` is the
# `np.int8` array of `weights / scale` rounded to the nearest integer and clipped to [−127, 127],
# so that `q * scale[:, None]` approximates `weights`. A row of zeros gets scale 1.

# %%
def absmax_int8(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["absmax_int8"].hint()  # uncomment for a hint
ex["absmax_int8"].check(absmax_int8)

# %% [markdown]
# <details>
# <summary>Solution to exercise 2 (<code>course_utils/solutions/ch09.py</code>)</summary>
#
# ```python
# def absmax_int8(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
#     """Per-row symmetric int8 quantisation: `(q, scale)` with `weights ≈ q * scale[:, None]`.
#
#     Each row's scale maps its largest absolute value to 127; a row of zeros gets scale 1.
#     """
#     w = np.asarray(weights, dtype=np.float64)
#     scale = np.abs(w).max(axis=1) / 127.0
#     scale[scale == 0] = 1.0
#     q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
#     return q, scale
# ```
#
# </details>

# %% [markdown]
# ### Exercise 3 — retrieve the examples
#
# Write `nearest_examples(query, bank, k)`: the indices of the `k` rows of `bank` with the
# highest cosine similarity to the vector `query`, ordered so that the **most similar comes
# last** (it will sit right before the review in the prompt). The rows need not be normalised;
# on a tie the smaller index counts as more similar.

# %%
def nearest_examples(query: np.ndarray, bank: np.ndarray, k: int) -> list[int]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["nearest_examples"].hint()  # uncomment for a hint
ex["nearest_examples"].check(nearest_examples)

# %% [markdown]
# <details>
# <summary>Solution to exercise 3 (<code>course_utils/solutions/ch09.py</code>)</summary>
#
# ```python
# def nearest_examples(query: np.ndarray, bank: np.ndarray, k: int) -> list[int]:
#     """Indices of the `k` rows of `bank` most cosine-similar to `query`, the most similar last.
#
#     Ties go to the smaller index (it counts as the more similar one).
#     """
#     bank = np.asarray(bank, dtype=np.float64)
#     query = np.asarray(query, dtype=np.float64)
#     sims = bank @ query / (np.linalg.norm(bank, axis=1) * np.linalg.norm(query))
#     order = sorted(range(len(bank)), key=lambda i: (-sims[i], i))[:k]
#     return order[::-1]
# ```
#
# </details>

# %% [markdown]
# ### Exercise 4 — an experiment: delete the *least* important tokens
#
# The deletion test of 9.5 removed the tokens with the highest attributions. The mirror test:
# delete the `k` content tokens with the **lowest** attributions (the strongest evidence
# *against* the prediction, then the least useful). Write `bottom_k_flip_rate(model, tokenizer,
# attributions, k)` returning the share of predictions that flip (`a.target` is the class each
# attribution explains), using `content_positions`, `delete_positions` and `predict_ids`. The
# checker runs it on the notebook's classifier and the first attributions of 9.5. Then run it for
# k = 1, 2, 3 and compare with the random rows of the table in 9.5: if the attributions are
# faithful, deleting the least important tokens should flip *fewer* predictions than deleting
# random ones. Is that what you see?

# %%
def bottom_k_flip_rate(model, tokenizer, attributions, k: int) -> float:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["bottom_k_flip_rate"].hint()  # uncomment for a hint
ex["bottom_k_flip_rate"].check(bottom_k_flip_rate)

# %% [markdown]
# <details>
# <summary>Solution to exercise 4 (<code>course_utils/solutions/ch09.py</code>)</summary>
#
# ```python
# def bottom_k_flip_rate(model, tokenizer, attributions, k: int) -> float:
#     """Share of predictions that flip when the `k` lowest-scored content tokens are deleted."""
#     from ..interpretability import content_positions, delete_positions, predict_ids
#
#     edited, targets = [], []
#     for a in attributions:
#         candidates = content_positions(a.input_ids, tokenizer)
#         lowest = sorted(candidates, key=lambda i: (a.scores[i], i))[:k]
#         edited.append(delete_positions(a.input_ids, lowest))
#         targets.append(a.target)
#     probs = predict_ids(model, edited, tokenizer.pad_token_id)
#     return float(np.mean(probs.argmax(axis=1) != np.asarray(targets)))
# ```
#
# </details>

# %% [markdown]
# ## Summary
#
# The numbers of this run (every one computed above):

# %% tags=["course-summary"]
summary_numbers = {
    "LoRA / full trainable parameters (MiniLM; SmolLM2)": "; ".join(
        f"{tuned[(m, 'LoRA')]['trainable']:,} / {tuned[(m, 'full')]['trainable']:,}" for m in (ENCODER, DECODER)),
    "step memory over the loaded model, full → LoRA (MB)": "; ".join(
        f"{m}: {cost(m, 'full', 'peak − loaded MB'):,.0f} → {cost(m, 'LoRA', 'peak − loaded MB'):,.0f}"
        for m in (ENCODER, DECODER)),
    f"test accuracy full / LoRA ({N_TEST} reviews)": "; ".join(
        f"{m}: {acc_table.loc[(m, 'full'), 'test accuracy']:.1%} / {acc_table.loc[(m, 'LoRA'), 'test accuracy']:.1%}"
        for m in (ENCODER, DECODER)),
    "int8 vs fp32 MiniLM: size, speed, accuracy": f"{fp['file MB'] / q8['file MB']:.1f}x smaller, "
        f"{fp['s per 1,000 (batch 64)'] / q8['s per 1,000 (batch 64)']:.1f}x faster, "
        f"{q8['test accuracy'] - fp['test accuracy']:+.2%}",
    "SmolLM2 perplexity: as loaded → Q4_0 again": f"{base_ppl:.2f} → {ppl_table.loc['re-quantised to Q4_0 (4.5 bits)', 'held-out perplexity']:.2f}",
    f"canary exposure {REPEATS[-1]} copies → deduplicated (bits)": f"{top[last]:.1f} → {canary_table[f'deduplicated, {last}'].iloc[-1]:.1f} (max {max_bits:.1f})",
    f"deletion flip rate, k = {DELETE_K[-1]}: IG / attention / random": f"{ig_rate:.1%} / {att_rate:.1%} / {rnd_rate:.1%}",
    f"few-shot: random → retrieved ({K_SHOT} examples)": f"{best_random:.1%} → {knn_acc[best_scoring]:.1%} (neighbours' vote {rag.iloc[1]['accuracy']:.1%})",
    "notebook wall time": f"{(time.perf_counter() - notebook_start) / 60:.1f} min",
}  # fmt: skip
for key, value in summary_numbers.items():
    print(f"{key}: {value}")

# %% [markdown]
# - **Efficiency.** LoRA trains a fraction of a percent of the parameters and removes the
#   gradients and optimizer state of the rest — the part of memory that grows with the model. It
#   does not remove the activations or most of the compute: the backward pass still runs through
#   the frozen network. Gradient checkpointing shrinks the activations for some extra compute.
#   With one epoch of the small training set, MiniLM's LoRA arm did not learn; the follow-up
#   found the step budget to be the cause (more epochs lifted it well above the majority class,
#   training the pooler helped less), so an accuracy comparison of LoRA and full fine-tuning needs
#   each arm's own budget and learning rate, as in chapter 3. SmolLM2's two arms are within noise.
# - **Quantisation.** Dynamic int8 made chapter 5's classifier smaller and faster on this CPU at
#   no measurable accuracy cost (a few predictions changed); `torch.ao.quantization` is deprecated,
#   and its torchao successor needs `torch.compile` to be fast. The same dynamic int8 broke
#   SmolLM2's perplexity (leading explanation, untested: activation outliers). SmolLM2 arrived in
#   4 bits (Q4_1 matrices, a wider format for the embedding): what that cost is unknown offline; a
#   second rounding onto a different grid costs more the coarser the grid (Q8_0 barely, Q5_0
#   clearly, Q4_0 most).
# - **Scale.** On every axis the course's three models rank by size — but they differ in
#   everything else too, so they say nothing quantitative about scaling laws; a scaling law needs a
#   family varied one factor at a time.
# - **Privacy.** Fine-tuning memorised the most repeated secret until greedy decoding wrote it out
#   — after a name it never saw too, so it learned the sentence pattern rather than the person;
#   fewer copies gave no consistent effect (one canary per count, one seed); deduplication brought
#   the most repeated secret back to chance, and one epoch instead of three left it short of first
#   place.
#   Differential privacy is the defence with a guarantee; not training on secrets is the best one.
# - **Interpretability.** Integrated gradients converge on most reviews (small median delta; a few
#   need more steps) and pass a deletion test against random tokens; attention weights are a
#   different quantity: here they beat random deletion but flipped fewer predictions than
#   integrated gradients, so they must pass the same test before anyone calls them an explanation.
# - **Adaptive prompts.** Retrieved examples beat random ones (beyond noise on the paired
#   comparison) but not the zero-shot prompt (within noise) nor the neighbours' vote alone; the
#   follow-up showed why:
#   SmolLM2 mostly copies its examples' labels, and is wrong where they are.
#
# ## 小结
#
# - **效率。** LoRA 只训练不到百分之一的参数，省掉了其余参数的梯度和优化器状态——也就是随模型规模增长的那部分内存；但它省不掉激活值，也省不掉大部分计算：反向传播仍要穿过整个冻结的网络。梯度检查点用额外的计算换取更小的激活内存。只训练小训练集的一个轮次时，MiniLM 的 LoRA 没有学会任务；后续实验表明原因是训练步数太少（多训练几个轮次后准确率远高于多数类基线，同时训练 pooler 的帮助较小），因此比较 LoRA 与全量微调的准确率时，每种方法都要有自己的步数和学习率，正如第 3 章所做；SmolLM2 的两种方法差异在噪声范围内。
# - **量化。** 动态 int8 让第 5 章的分类器在这台 CPU 上更小、更快，准确率没有可测量的损失（少数预测改变了）；`torch.ao.quantization` 已被弃用，其继任者 torchao 需要 `torch.compile` 才能变快。SmolLM2 本身就是以 4 比特（矩阵为 Q4_1，嵌入层用更宽的格式）发布的：离线无法得知这带来了多少损失；同样的动态 int8 却让 SmolLM2 的困惑度大幅上升（主要解释是激活值中的离群特征，未经检验）；再舍入到另一种网格的代价随网格变粗而增大（Q8_0 几乎没有影响，Q5_0 明显，Q4_0 最大）。
# - **规模。** 课程的三个模型在每个维度上都按规模排序——但它们在其他方面也各不相同，因此无法对缩放定律作出任何定量结论；缩放定律需要一次只改变一个因素的模型族。
# - **隐私。** 微调记住了重复次数最多的秘密，直到贪心解码能把它原样写出——换成训练数据里从未出现的名字也一样，说明模型记住的是句式而不是人；副本较少时没有一致的效果（每个副本数只有一个金丝雀、一个种子）；去重让重复最多的秘密回到随机水平；只训练一个轮次而不是三个时，它还没有排到第一位。差分隐私是有理论保证的防御，而最好的办法是根本不用秘密来训练。
# - **可解释性。** 积分梯度在大多数评论上收敛（误差项的中位数很小，少数评论需要更多步数），并且在与随机删除的对照中通过了删除检验；注意力权重是另一种量：这里它胜过随机删除，但翻转的预测少于积分梯度，因此在被称为"解释"之前必须通过同样的检验。
# - **自适应提示。** 检索到的示例胜过随机示例（配对比较下超出噪声），但没有胜过零样本提示（差异在噪声之内），也没有胜过近邻标签投票本身；后续实验说明了原因：SmolLM2 主要照抄示例的标签，示例标签错时它也错。
#
# **Next:** chapter 10 answers the questions learners ask most often, each with an experiment,
# and collects the course's verified bibliography.
