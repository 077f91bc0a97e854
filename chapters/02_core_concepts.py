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
# # 2. Core concepts
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/course-llm/finetuning-prompt-course/blob/main/chapters/02_core_concepts.ipynb)
#
# *Fine-tuning and Prompt Design for Language Models* — source §2 (核心概念与联系). The source
# describes language models, pretraining, fine-tuning and prompts in four short paragraphs with
# placeholder images; here each concept is opened up on the real models and measured.
#
# **In this chapter you will**
#
# - look inside the two course models: tokens (English and Chinese), embeddings, layers and
#   parameter counts per block, an attention map, and next-token probabilities;
# - **measure what pretraining buys**: pretrain a tiny GPT from scratch on the movie reviews,
#   compare its perplexity with SmolLM2's, then fine-tune it and a pretrained encoder on the same
#   small labelled set and compare their accuracy;
# - take a prompt apart into its elements (instruction, context, examples, output format) and see
#   what fine-tuning and prompt design each change;
# - draw encoder, decoder and encoder-decoder architectures;
# - estimate the FLOPs and memory of a training step and check the estimate against a measured one;
# - solve three auto-checked exercises.
#
# Full run (`SMOKE = False`): about 10.5 min on a 2-core CPU (measured: 628 s); SMOKE: about 1 min.

# %% [markdown]
# ## Set-up
#
# The first cell installs the course when the notebook runs on Google Colab; on your own machine
# (installed with `bash scripts/setup.sh`) it does nothing.

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
# The **parameters** below are the knobs of this notebook. `SMOKE = True` runs tiny settings (the
# course's tests run every notebook that way); the stored outputs come from a full run
# (`SMOKE = False`). `ENCODER` and `DECODER` take a course model name, a local folder or a
# Hugging Face Hub id; `DEVICE = "auto"` picks a CUDA GPU, then Apple's MPS, then the CPU.

# %% tags=["parameters"]
# Run All runs the full experiment that produced the stored outputs: 10.5 min on 2 CPU cores, no GPU.
# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).
SMOKE = False
DEVICE = "auto"  # "auto", "cpu", "cuda" or "mps"
ENCODER = "minilm"  # a course model, a local folder or a Hub id
DECODER = "smollm2"  # e.g. "HuggingFaceTB/SmolLM2-360M-Instruct" (online)
SEED = 0

# %%
import math
import tempfile
import time

import datasets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import transformers
from IPython.display import Markdown, display
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from transformers import AutoModel

from course_utils import models
from course_utils.data import load_chinese_reviews, load_movie_reviews
from course_utils.evaluation import compute_metrics
from course_utils.exercises import chapter_exercises
from course_utils.plots import plot_history
from course_utils.pretraining import (
    SavedTensorMeter,
    embedding_parameters,
    non_embedding_parameters,
    pack_corpus,
    perplexity,
    tiny_gpt,
    training_flops,
    training_memory_bytes,
)
from course_utils.training import TrainConfig, count_parameters, predict, train

transformers.utils.logging.disable_progress_bar()  # keep the stored outputs short
datasets.disable_progress_bars()
transformers.utils.logging.set_verbosity_error()
torch.manual_seed(SEED)
device = models.get_device(DEVICE)

BLOCK = 64  # tokens per pretraining block (a review is about 25 tokens)
PRETRAIN_STEPS = 6 if SMOKE else 300  # optimizer steps of pretraining (16 blocks each)
N_PPL = 12 if SMOKE else 240  # held-out test reviews for perplexity
N_LABELLED = 32 if SMOKE else 512  # labelled reviews for the small fine-tuning task
N_TEST = 48 if SMOKE else 984  # test reviews for accuracy (984 = all)
FT_EPOCHS = 1 if SMOKE else 4
FT_SEEDS = [0] if SMOKE else [0, 1, 2]  # seeds for fine-tuning the tiny GPTs
N_PROMPT = 3 if SMOKE else 48  # test reviews for the prompt-element ablation
STEP_BATCH = 2 if SMOKE else 8  # batch for the measured training step
STEP_REPS = 1 if SMOKE else 2  # timed repetitions of that step (after one warm-up step)
mode = "SMOKE (tiny settings)" if SMOKE else "full"
print(f"mode: {mode}; device: {device}; torch threads: {torch.get_num_threads()}")
T_START = time.perf_counter()

# %% [markdown]
# ## 2.1 What a language model is, on the real models
#
# A language model turns text into **tokens** (integer ids), each token into a vector (an
# **embedding**), passes the vectors through a stack of **layers** in which **attention** lets
# every position look at others, and ends in a **head**: a decoder such as SmolLM2 predicts a
# probability for every possible next token; an encoder such as MiniLM gives one vector per token
# that a task head (a classifier, say) builds on. We load both models; MiniLM with the "eager"
# attention implementation, the one that can return its attention weights.

# %%
encoder = AutoModel.from_pretrained(models.resolve_model(ENCODER), attn_implementation="eager")
encoder = encoder.to(device).eval()
enc_tokenizer = models.load_tokenizer(ENCODER)
decoder, dec_tokenizer = models.load_causal_lm(DECODER, device=DEVICE)
reviews = load_movie_reviews()
for name, model in [("encoder", encoder), ("decoder", decoder)]:
    print(f"{name}: {type(model).__name__}, {count_parameters(model) / 1e6:.1f}M parameters")

# %% [markdown]
# ### Tokens
#
# The two models cut text differently. MiniLM's WordPiece vocabulary is lower-case English
# (30,522 pieces; `##` marks a piece that continues a word); SmolLM2's byte-level BPE (49,152
# pieces; `Ġ` marks a leading space) can spell any text, including Chinese, out of bytes.

# %%
english = reviews["test"][0]["text"]
chinese_reviews = load_chinese_reviews()["test"]
chinese = next(t for t in chinese_reviews["text"] if 12 <= len(t) <= 40)
for label, text in [("English", english), ("Chinese", chinese)]:
    print(f"{label} review ({len(text)} characters): {text}")
    for name, tok in [("MiniLM", enc_tokenizer), ("SmolLM2", dec_tokenizer)]:
        pieces = tok.tokenize(text)
        unknown = sum(p == tok.unk_token for p in pieces)
        shown = " | ".join(pieces[:24]) + (" | ..." if len(pieces) > 24 else "")
        print(f"  {name:8s} {len(pieces):3d} tokens ({unknown} unknown): {shown}")

# %% [markdown]
# SmolLM2's pieces of Chinese look garbled because each is a few *bytes* of UTF-8, shown as
# characters; decoding the ids gives the text back exactly:

# %%
ids = dec_tokenizer(chinese, add_special_tokens=False)["input_ids"]
print("ids:", ids[:16], "...")
print("decoded == original:", dec_tokenizer.decode(ids) == chinese)
print(f"characters per token: English {len(english) / len(dec_tokenizer.tokenize(english)):.2f},"
      f" Chinese {len(chinese) / len(ids):.2f}")  # fmt: skip

# %% [markdown]
# ### Embeddings
#
# The first layer of each model is a table with one row (a vector) per token id. Mean-pooling
# MiniLM's last layer over the tokens of a sentence gives a **sentence embedding**; sentences with
# similar meaning get vectors pointing in similar directions (cosine similarity near 1).

# %%
for name, model in [("MiniLM", encoder), ("SmolLM2", decoder)]:
    table = model.get_input_embeddings().weight
    print(f"{name}: token embedding table {tuple(table.shape)} = {table.numel() / 1e6:.1f}M "
          f"parameters ({table.numel() / count_parameters(model):.0%} of the model)")  # fmt: skip


def embed(texts: list[str]) -> torch.Tensor:
    """Unit-length sentence embeddings: mean of MiniLM's last layer over real tokens."""
    batch = enc_tokenizer(texts, padding=True, truncation=True, max_length=128,
                          return_tensors="pt").to(device)  # fmt: skip
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).cpu()


sentences = [
    "The film was a delight from start to finish.",
    "I enjoyed every minute of this movie.",
    "The movie was a boring waste of time.",
    "Fine-tuning updates the weights of a model.",
    "Training changes the parameters of the network.",
]
similarity = (embed(sentences) @ embed(sentences).T).numpy()
fig, ax = plt.subplots(figsize=(7, 5))
im = ax.imshow(similarity, vmin=0, vmax=1, cmap="viridis")
short = [s[:28] + "…" for s in sentences]
ax.set_xticks(range(len(sentences)), short, rotation=35, ha="right")
ax.set_yticks(range(len(sentences)), short)
for i in range(len(sentences)):
    for j in range(len(sentences)):
        ax.text(j, i, f"{similarity[i, j]:.2f}", ha="center", va="center", fontsize=8,
                color="k" if similarity[i, j] > 0.6 else "w")  # fmt: skip
ax.set_title("Cosine similarity of MiniLM sentence embeddings")
ax.set_xlabel("sentence")
ax.set_ylabel("sentence")
fig.colorbar(im, ax=ax, label="cosine similarity")
plt.show()
print(f"two positive reviews: {similarity[0, 1]:.2f}; positive vs negative review: "
      f"{similarity[0, 2]:.2f}; two sentences about training: {similarity[3, 4]:.2f}")  # fmt: skip

# %% [markdown]
# Note that the negative review is still fairly close to the positive ones: the embedding captures
# the *topic* (a film) more than the *sentiment*, one reason why a task needs fine-tuning.
#
# ### Layers and parameters per block
#
# Both models are a stack of identical transformer blocks between an embedding table and a head.
# We count the parameters of each top-level block.


# %%
def blocks_table(model, name: str) -> pd.DataFrame:
    """Parameters per block: embeddings, each transformer layer, what comes after."""
    from course_utils.training import transformer_layers

    layers_name, layers = transformer_layers(model)
    rows, seen = [], set()
    for i, layer in enumerate(layers):
        rows.append((f"{layers_name}.{i}", count_parameters(layer)))
        seen |= {id(p) for p in layer.parameters()}
    embed_params = embedding_parameters(model)
    other = count_parameters(model) - embed_params - sum(n for _, n in rows)
    rows = [("embeddings", embed_params), *rows, ("other (norms, pooler, head)", other)]
    df = pd.DataFrame(rows, columns=["block", "parameters"])
    df.insert(0, "model", name)
    df["share"] = (df["parameters"] / count_parameters(model)).map("{:.1%}".format)
    return df


table = pd.concat([blocks_table(encoder, "MiniLM"), blocks_table(decoder, "SmolLM2")])
display(table.set_index(["model", "block"]))
layer = decoder.model.layers[0]
print("one SmolLM2 layer:")
for pname, p in layer.named_parameters():
    print(f"  {pname:32s} {str(tuple(p.shape)):14s} {p.numel():>9,}")

# %% [markdown]
# ### Attention
#
# In each layer, every token builds a query, compares it with the keys of all tokens, and takes a
# weighted mean of their values; the weights (one row per token, summing to 1) are the
# **attention map**. MiniLM is an encoder: every token may look both left and right.

# %%
sentence = "The plot was thin, but the actors saved the movie."
batch = enc_tokenizer(sentence, return_tensors="pt").to(device)
with torch.no_grad():
    out = encoder(**batch, output_attentions=True)
attentions = torch.stack(out.attentions).cpu()  # (layers, batch, heads, tokens, tokens)
tokens = enc_tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
print(f"{len(out.attentions)} layers x {attentions.shape[2]} heads, "
      f"{len(tokens)} x {len(tokens)} weights each")  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, (lyr, title) in zip(
    axes, [(0, "layer 1"), (attentions.shape[0] - 1, "layer 6")], strict=True
):
    weights = attentions[lyr, 0].mean(0).numpy()  # average over heads
    ax.imshow(weights, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90)
    ax.set_yticks(range(len(tokens)), tokens)
    ax.set_xlabel("attended token (key)")
    ax.set_ylabel("attending token (query)")
    ax.set_title(f"MiniLM attention, {title} (mean of heads)")
plt.tight_layout()
plt.show()
row_sums = attentions.sum(-1)
print(f"every row sums to 1: {torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-5)}")

# %% [markdown]
# ### Next-token prediction
#
# A decoder's head turns the last position's vector into a score (logit) for each of the 49,152
# tokens; softmax makes those probabilities. Here are SmolLM2's ten most likely next tokens:


# %%
def top_next_tokens(prefix: str, k: int = 10) -> pd.DataFrame:
    """The k most probable next tokens after `prefix`, with probabilities."""
    ids = dec_tokenizer(prefix, return_tensors="pt").to(device)
    with torch.no_grad():
        logits = decoder(**ids).logits[0, -1].float()
    probs = logits.softmax(-1)
    top = probs.topk(k)
    return pd.DataFrame({
        "token": [repr(dec_tokenizer.decode([int(i)])) for i in top.indices],
        "id": top.indices.tolist(),
        "probability": top.values.cpu().numpy().round(4),
    })  # fmt: skip


prefixes = ["The movie was", "The capital of France is"]
display(pd.concat({p: top_next_tokens(p) for p in prefixes}, axis=1))

# %% [markdown]
# ## 2.2 Pretraining versus fine-tuning, measured
#
# **Pretraining** is self-supervised: the model learns to predict the next token of plain,
# unlabelled text. **Fine-tuning** continues training a pretrained model on labelled examples of
# a task. To see what pretraining buys, we pretrain a tiny GPT ourselves, on a corpus this course
# can ship: the texts of the training reviews (their labels are not used). It uses SmolLM2's
# tokenizer, so both models are scored on exactly the same tokens.
#
# ### The corpus: texts packed into blocks
#
# Each review is tokenised and ends with an end-of-text token; all reviews are concatenated and
# cut into blocks of `BLOCK` tokens (no padding wasted). The held-out text is the test split.

# %%
train_texts = list(reviews["train"]["text"])
heldout_texts = list(reviews["test"].shuffle(seed=SEED).select(range(N_PPL))["text"])
corpus = pack_corpus(train_texts, dec_tokenizer, block_size=BLOCK)
heldout = pack_corpus(heldout_texts, dec_tokenizer, block_size=BLOCK)
corpus_tokens = len(corpus) * BLOCK
print(f"corpus: {len(train_texts)} reviews -> {len(corpus)} blocks of {BLOCK} tokens "
      f"= {corpus_tokens:,} tokens; held-out: {len(heldout)} blocks")  # fmt: skip
print("first block:", repr(dec_tokenizer.decode(corpus[0]["input_ids"])[:160]), "...")

# %% [markdown]
# ### The tiny GPT
#
# It is built from transformers' own classes (a `LlamaConfig`, the architecture of SmolLM2, and
# `AutoModelForCausalLM.from_config`), only much smaller, with random weights:

# %%
scratch = tiny_gpt(dec_tokenizer, hidden_size=128, num_layers=4, num_heads=4,
                   max_length=BLOCK, seed=SEED).to(device)  # fmt: skip
cfg = scratch.config
print(
    f"tiny GPT: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
    f"{cfg.num_attention_heads} heads, MLP {cfg.intermediate_size}, vocabulary {cfg.vocab_size:,}"
)
print(
    f"parameters: {count_parameters(scratch) / 1e6:.2f}M in all, of which "
    f"{embedding_parameters(scratch) / 1e6:.2f}M in the embedding table (shared with the output "
    f"layer) and {non_embedding_parameters(scratch) / 1e6:.2f}M in the layers; "
    f"SmolLM2 has {count_parameters(decoder) / count_parameters(scratch):.0f}x more"
)
ppl_random = perplexity(scratch, dec_tokenizer, heldout_texts, block_size=BLOCK)
print(f"perplexity before training: {ppl_random:,.0f} (guessing uniformly: {len(dec_tokenizer):,})")

# %% [markdown]
# **Perplexity** is exp(mean cross-entropy per predicted token): the number of tokens the model is
# as unsure between as if it picked uniformly among them. A random model is close to the
# vocabulary size. We pretrain with the course's own loop, `course_utils.training.train`
# (chapter 3 explains it), which treats blocks with `labels` as next-token prediction.

# %%
pretrain_config = TrainConfig(
    lr=3e-3, batch_size=16, max_steps=PRETRAIN_STEPS, num_epochs=1, warmup_ratio=0.05,
    scheduler="cosine", weight_decay=0.1, max_length=None, group_by_length=False,
    eval_every=max(PRETRAIN_STEPS // 4, 1), eval_batch_size=16, progress=False, seed=SEED,
)  # fmt: skip
pretrain_history = train(scratch, corpus, heldout, config=pretrain_config, tokenizer=dec_tokenizer)
pretrain_tokens = PRETRAIN_STEPS * pretrain_config.batch_size * BLOCK
print(
    f"pretrained for {pretrain_history.train_time_s / 60:.1f} min: {PRETRAIN_STEPS} steps, "
    f"{pretrain_tokens:,} tokens ({pretrain_tokens / corpus_tokens:.2f} passes over the corpus)"
)
fig = plot_history(pretrain_history, title="Pretraining the tiny GPT (next-token loss)")
plt.show()

# %%
t0 = time.perf_counter()
ppl = {
    "tiny GPT, random weights": ppl_random,
    "tiny GPT, pretrained here": perplexity(scratch, dec_tokenizer, heldout_texts, block_size=BLOCK),
    "SmolLM2-135M (pretrained on ~2T tokens)": perplexity(decoder, dec_tokenizer, heldout_texts,
                                                          block_size=BLOCK, batch_size=4),
}  # fmt: skip
ppl_table = pd.DataFrame({"held-out perplexity": ppl}).round(1)
display(ppl_table)
print(f"(perplexities in {time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# SmolLM2's training corpus size (about 2 trillion tokens for the 135M model) comes from its model
# card; the tiny GPT saw the number of tokens printed above. Now the second half of the experiment:
# fine-tune on the **same small labelled set** — `N_LABELLED` training reviews — and test on the
# test split:
#
# - (a) the tiny GPT *with random weights* (no pretraining at all),
# - (b) the tiny GPT *pretrained here*,
# - (c) MiniLM, pretrained by its authors on about a billion sentence pairs (on top of BERT-style
#   pretraining).
#
# Each gets a fresh classification head (`AutoModelForSequenceClassification`); for the GPTs the
# head reads the last token, for MiniLM the first.

# %%
small_train = reviews["train"].shuffle(seed=SEED).select(range(N_LABELLED))
test_set = reviews["test"].shuffle(seed=SEED).select(range(N_TEST))  # the split is label-sorted
folder = tempfile.mkdtemp(prefix="ch02_")


def as_classifier(causal_lm, name: str):
    """Save a causal LM and reload its body under a new classification head."""
    path = f"{folder}/{name}"
    causal_lm.save_pretrained(path)
    dec_tokenizer.save_pretrained(path)
    model, _ = models.load_classifier(path, num_labels=2, device=DEVICE)
    return model


def tiny_random(seed: int):
    return tiny_gpt(dec_tokenizer, hidden_size=128, num_layers=4, num_heads=4,
                    max_length=BLOCK, seed=seed)  # fmt: skip


# name -> (model factory for a seed, tokenizer, learning rate, seeds)
candidates = {
    "(a) tiny GPT, random weights": (
        lambda seed: as_classifier(tiny_random(seed), f"random{seed}"), dec_tokenizer, 1e-3,
        FT_SEEDS),
    "(b) tiny GPT, pretrained here": (
        lambda seed: as_classifier(scratch, "pretrained"), dec_tokenizer, 1e-3, FT_SEEDS),
    "(c) MiniLM, pretrained": (
        lambda seed: models.load_classifier(ENCODER, num_labels=2, device=DEVICE)[0],
        enc_tokenizer, 1e-4, FT_SEEDS[:1]),
}  # fmt: skip
results, runs, finetuned = {}, [], {}
for name, (make, tok, lr, seeds) in candidates.items():
    for seed in seeds:
        torch.manual_seed(seed)  # the new classification head
        model = make(seed)
        config = TrainConfig(lr=lr, num_epochs=FT_EPOCHS, batch_size=16, max_length=BLOCK,
                             eval_every=10**9, progress=False, seed=seed)  # fmt: skip
        history = train(model, small_train, config=config, tokenizer=tok)
        logits = predict(model, test_set, tokenizer=tok, batch_size=64, max_length=BLOCK)
        metrics = compute_metrics((logits, np.array(test_set["label"])))
        runs.append({"model": name, "seed": seed, "accuracy": metrics["accuracy"],
                     "F1": metrics["f1"], "time (s)": history.train_time_s})  # fmt: skip
    finetuned[name] = model
    mine = pd.DataFrame([r for r in runs if r["model"] == name])
    results[name] = {
        "accuracy (mean)": mine["accuracy"].mean(),
        "accuracy (std)": mine["accuracy"].std() if len(mine) > 1 else float("nan"),
        "F1 (mean)": mine["F1"].mean(),
        "seeds": len(mine),
        "parameters (M)": count_parameters(model) / 1e6,
        "fine-tuning time (s)": mine["time (s)"].mean(),
    }
ft_table = pd.DataFrame(results).T
display(ft_table.round(3))

# %% [markdown]
# The tiny GPTs are cheap, so each is fine-tuned with several seeds (a different head
# initialisation and data order): the spread tells how much of a difference is noise.

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
names = list(results)
accs = [results[n]["accuracy (mean)"] for n in names]
errs = [np.nan_to_num(results[n]["accuracy (std)"]) for n in names]
bars = ax.barh(names, accs, xerr=errs, color=["tab:gray", "tab:orange", "tab:blue"], capsize=4)
ax.axvline(0.5, color="k", ls="--", lw=1, label="chance (50%)")
ax.bar_label(bars, [f"{a:.1%}" for a in accs], padding=8)
ax.set_xlim(0, 1)
ax.set_xlabel(f"test accuracy ({N_TEST} reviews; mean ± std over seeds)")
ax.set_title(f"Fine-tuned on the same {N_LABELLED} labelled reviews")
ax.invert_yaxis()
ax.legend(loc="center right")
plt.tight_layout()
plt.show()

# %%
acc_a, acc_b, acc_c = accs
ppl_tiny = ppl["tiny GPT, pretrained here"]
ppl_smol = ppl["SmolLM2-135M (pretrained on ~2T tokens)"]
noise = max(2 * np.nanmax(errs[:2]), 0.01)  # differences below twice the spread are noise
effect = ("helped" if acc_b - acc_a > noise else "hurt" if acc_a - acc_b > noise
          else "made no difference beyond the seed-to-seed spread")  # fmt: skip
display(Markdown(
    f"**What the numbers say.** {pretrain_history.train_time_s / 60:.1f} min of pretraining on "
    f"{pretrain_tokens:,} tokens took the tiny GPT's held-out perplexity from {ppl_random:,.0f} to "
    f"{ppl_tiny:,.0f}: it learned a lot about the next token. SmolLM2, pretrained on vastly more "
    f"text, scores {ppl_smol:.1f}, {ppl_tiny / ppl_smol:.1f}x lower. Fine-tuned on the same "
    f"{N_LABELLED} labelled reviews, the tiny GPT reaches {acc_a:.1%} from random weights and "
    f"{acc_b:.1%} after our pretraining: our pretraining **{effect}** "
    f"({(acc_b - acc_a) * 100:+.1f} points, seed-to-seed spread ±{np.nanmax(errs[:2]) * 100:.1f}). "
    f"The properly pretrained MiniLM reaches {acc_c:.1%}, "
    f"{(acc_c - max(acc_a, acc_b)) * 100:+.1f} points over the better tiny GPT. **Lesson:** "
    f"minutes of pretraining on a few hundred thousand tokens teach word statistics, not the "
    f"knowledge a task needs; with little labelled data, pretraining at scale decides most of the "
    f"accuracy, and fine-tuning adapts that knowledge to the task — it cannot replace it."
))  # fmt: skip

# %% [markdown]
# Why can a few minutes of pretraining fail to help, or even hurt, the classifier? Some likely
# reasons, which you can test yourself (they were not measured here): the tiny GPT's last-token
# vector was trained only to predict the *next token*, so the classifier head starts from
# features tuned for another job; a learning rate that suits a random network (1e-3) may wreck
# what a pretrained one knows; and 300 thousand tokens teach little beyond which words follow
# which. Real pretraining uses millions of times more text, and MiniLM's was followed by training
# on sentence pairs, which is what makes its features useful for classification.
#
# ## 2.3 The elements of a prompt
#
# A **prompt** is the whole input of a model. Four elements recur (source §2.3): an
# **instruction** (what to do), **context** (the input to work on), **examples** (input → output
# pairs) and an **output format**. An instruction-tuned model such as SmolLM2 expects its input
# wrapped in a **chat template**: special tokens marking who speaks.

# %%
elements = {
    "instruction": "Classify the sentiment of the movie review.",
    "examples": ("Review: A joyless, plodding mess.\nSentiment: negative\n\n"
                 "Review: Warm, funny and beautifully acted.\nSentiment: positive\n\n"),
    "output format": "Answer with one word: positive or negative.",
}  # fmt: skip


def build_messages(review: str, use: tuple[str, ...]) -> list[dict]:
    parts = [elements["instruction"]] if "instruction" in use else []
    if "output format" in use:
        parts.append(elements["output format"])
    text = "\n".join(parts) + ("\n\n" if parts else "")
    if "examples" in use:
        text += elements["examples"]
    text += f"Review: {review}\nSentiment:"  # the context: the review to classify
    return [{"role": "user", "content": text}]


demo = reviews["test"][1]["text"]
prompt = dec_tokenizer.apply_chat_template(
    build_messages(demo, ("instruction", "examples", "output format")),
    tokenize=False, add_generation_prompt=True,
)  # fmt: skip
print(prompt)
ids = dec_tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
with torch.no_grad():
    answer = decoder.generate(**ids, max_new_tokens=5, do_sample=False)
print("SmolLM2 answers:", repr(dec_tokenizer.decode(answer[0, ids["input_ids"].shape[1]:],
                                                    skip_special_tokens=True)))  # fmt: skip

# %% [markdown]
# How much does each element matter? We read SmolLM2's answer as the more probable of the two
# label words at the first answer position (no parsing needed), for prompts with more and more
# elements, on `N_PROMPT` test reviews. (Chapter 6 studies prompts on the whole test set.)

# %%
label_ids = [dec_tokenizer(w, add_special_tokens=False)["input_ids"][0]
             for w in ("negative", "positive")]  # fmt: skip
prompt_reviews = reviews["test"].shuffle(seed=SEED).select(range(N_PROMPT))
variants = {
    "context only": (),
    "+ instruction": ("instruction",),
    "+ output format": ("instruction", "output format"),
    "+ examples (all four)": ("instruction", "output format", "examples"),
}
prompt_rows = {}
for vname, use in variants.items():
    correct, lengths = 0, []
    for row in prompt_reviews:
        text = dec_tokenizer.apply_chat_template(build_messages(row["text"], use), tokenize=False,
                                                 add_generation_prompt=True)  # fmt: skip
        ids = dec_tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.no_grad():
            logits = decoder(**ids).logits[0, -1]
        correct += int(logits[label_ids].argmax().item() == row["label"])
        lengths.append(ids["input_ids"].shape[1])
    prompt_rows[vname] = {"accuracy": correct / N_PROMPT, "mean prompt tokens": np.mean(lengths)}
prompt_table = pd.DataFrame(prompt_rows).T
display(prompt_table.round(3))
acc_p = prompt_table["accuracy"]
print(f"best prompt: {acc_p.idxmax()!r} ({acc_p.max():.1%}); all four elements: {acc_p.iloc[-1]:.1%} "
      f"({(acc_p.iloc[-1] - acc_p.iloc[0]) * 100:+.1f} points over the bare context). One review "
      f"is {100 / N_PROMPT:.1f} points here, so small differences are noise.")  # fmt: skip

# %% [markdown]
# More elements are not automatically better for a model as small as SmolLM2-135M: the
# instruction tells it the task, but a longer prompt with examples can pull its answers towards
# one label (the course measured this before; chapter 6 studies it on the whole test set). The
# generated answer above also shows that the model did not follow the one-word output format:
# reading the probabilities of the label words is more reliable than parsing free text.

# %% [markdown]
# ### What fine-tuning and prompt design each change
#
# Fine-tuning changes the **parameters** and leaves the input alone; prompt design changes the
# **input** and leaves every parameter alone. The table puts the measurements of this chapter
# side by side.

# %%
minilm_params = results["(c) MiniLM, pretrained"]["parameters (M)"] * 1e6
full_prompt_tokens = prompt_table.loc["+ examples (all four)", "mean prompt tokens"]
bare_tokens = prompt_table.loc["context only", "mean prompt tokens"]
compare = pd.DataFrame(
    {
        "fine-tuning (MiniLM, 2.2)": [
            f"all {minilm_params / 1e6:.1f}M parameters (+ a new head)",
            "unchanged: just the review",
            f"{N_LABELLED} labelled reviews",
            f"{results['(c) MiniLM, pretrained']['fine-tuning time (s)']:.0f} s of training",
            f"{acc_c:.1%} on {N_TEST} test reviews",
            "a new copy of the weights per task",
        ],
        "prompt design (SmolLM2, 2.3)": [
            "none (0 parameters)",
            f"{full_prompt_tokens - bare_tokens:.0f} extra tokens per request "
            f"({full_prompt_tokens:.0f} in all)",
            "a few examples inside the prompt",
            "none; every request costs the longer prompt",
            f"{prompt_table['accuracy'].iloc[-1]:.1%} on {N_PROMPT} test reviews",
            "one model, one prompt per task",
        ],
    },
    index=["what changes", "the input", "data needed", "training cost", "accuracy here",
           "what you ship"],
)  # fmt: skip
display(compare)

# %% [markdown]
# The two are complementary (source §2.4): a fine-tuned model still receives an input, and
# chapter 6 fine-tunes a model *on* a prompt format.
#
# ## 2.4 Encoder, decoder, encoder-decoder
#
# The source's figures are placeholder links; here is the real picture. An **encoder** (BERT,
# MiniLM) lets every token attend to every other one and outputs one vector per token: good for
# understanding tasks (classification, entity recognition, matching). A **decoder** (GPT, Llama,
# SmolLM2) uses *causal* attention — each token sees only the tokens before it — and predicts the
# next token: good for generation. An **encoder-decoder** (T5, BART) encodes the input with full
# attention and generates the output with a decoder that also attends to the encoder's vectors
# (cross-attention): good for translation and summarisation.


# %%
def box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                fc=color, ec="k", lw=1.2))  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def arrow(ax, xy0, xy1, **kw):
    ax.add_patch(FancyArrowPatch(xy0, xy1, arrowstyle="-|>", mutation_scale=12, lw=1.2, **kw))


fig, axes = plt.subplots(1, 3, figsize=(15, 5.5))
enc_c, dec_c, io_c = "#cfe2f3", "#fce5cd", "#eeeeee"
# encoder
ax = axes[0]
box(ax, 0.5, 0.1, 0.7, 0.1, "input tokens: the movie was great", io_c)
box(ax, 0.5, 0.42, 0.7, 0.3, "N x encoder block\nbidirectional self-attention\n+ feed-forward",
    enc_c)  # fmt: skip
box(ax, 0.5, 0.75, 0.7, 0.1, "one vector per token", io_c)
box(ax, 0.5, 0.92, 0.7, 0.1, "task head, e.g. positive / negative", "#d9ead3")
arrow(ax, (0.5, 0.15), (0.5, 0.27))
arrow(ax, (0.5, 0.57), (0.5, 0.70))
arrow(ax, (0.5, 0.80), (0.5, 0.87))
ax.set_title("Encoder (BERT, MiniLM)\nunderstanding: classify, tag, match")
# decoder
ax = axes[1]
box(ax, 0.5, 0.1, 0.7, 0.1, "tokens so far: the movie was", io_c)
box(ax, 0.5, 0.42, 0.7, 0.3, "N x decoder block\ncausal (masked) self-attention\n+ feed-forward",
    dec_c)  # fmt: skip
box(ax, 0.5, 0.75, 0.7, 0.1, "probabilities of the next token", io_c)
box(ax, 0.5, 0.92, 0.7, 0.1, "sample 'great', append, repeat", "#d9ead3")
arrow(ax, (0.5, 0.15), (0.5, 0.27))
arrow(ax, (0.5, 0.57), (0.5, 0.70))
arrow(ax, (0.5, 0.80), (0.5, 0.87))
arrow(ax, (0.86, 0.92), (0.86, 0.1), connectionstyle="arc3,rad=-0.3", color="tab:red")
ax.set_title("Decoder (GPT, Llama, SmolLM2)\ngeneration: continue the text")
# encoder-decoder
ax = axes[2]
box(ax, 0.25, 0.1, 0.42, 0.1, "source: the movie was great", io_c)
box(ax, 0.25, 0.45, 0.42, 0.3, "N x encoder block\nbidirectional\nself-attention", enc_c)
box(ax, 0.75, 0.1, 0.42, 0.1, "target so far: le film", io_c)
box(ax, 0.75, 0.45, 0.42, 0.3, "N x decoder block\ncausal self-attention\n+ cross-attention",
    dec_c)  # fmt: skip
box(ax, 0.75, 0.85, 0.42, 0.1, "next target token: était", io_c)
arrow(ax, (0.25, 0.15), (0.25, 0.30))
arrow(ax, (0.75, 0.15), (0.75, 0.30))
arrow(ax, (0.46, 0.45), (0.54, 0.45), color="tab:blue")
ax.text(0.5, 0.52, "encoder\nvectors", ha="center", fontsize=8, color="tab:blue")
arrow(ax, (0.75, 0.60), (0.75, 0.80))
ax.set_title("Encoder-decoder (T5, BART)\ntransform: translate, summarise")
for ax in axes:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("data flows upwards")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Three transformer architectures")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2.5 Compute: FLOPs and memory of a training step
#
# A training step costs about **6 FLOPs per parameter per token**: 2 for the forward pass (a
# multiply and an add per weight), 4 for the backward pass (gradients with respect to the inputs
# and to the weights). Only parameters used in matrix products count: an embedding row is
# looked up, not multiplied — but a decoder's output layer multiplies by the whole vocabulary
# table, so it counts even when it shares its weights with the input embedding.
#
# Memory (fp32, AdamW): 4 bytes for each parameter, 4 for its gradient, 8 for Adam's two moment
# estimates, plus the **activations** the forward pass keeps for the backward pass, which grow with
# batch size and sequence length. We estimate both for each model and measure a real step: its
# time (after one warm-up step) and the bytes autograd actually saved.


# %%
def measure_step(model, batch: dict, flops: float, reps: int = 2) -> dict:
    """Time a full training step (forward, backward, AdamW) and meter the saved activations."""
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                            fused=device.type in ("cpu", "cuda"))  # fmt: skip
    times = []
    for _ in range(reps + 1):  # the first step warms up (allocations, Adam's state)
        t0 = time.perf_counter()
        with SavedTensorMeter(model) as meter:
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step = min(times[1:])
    state_bytes = sum(t.numel() * t.element_size() for s in opt.state.values()
                      for t in s.values() if torch.is_tensor(t) and t.dim() > 0)  # fmt: skip
    grad_bytes = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters()
                     if p.grad is not None)  # fmt: skip
    model.eval()
    del opt
    return {"step (s)": step, "achieved GFLOP/s": flops / step / 1e9,
            "activations (MB)": meter.bytes / 1e6, "gradients (MB)": grad_bytes / 1e6,
            "optimizer (MB)": state_bytes / 1e6}  # fmt: skip


seq = BLOCK
step_models = {
    "MiniLM classifier": (finetuned["(c) MiniLM, pretrained"], enc_tokenizer, "cls"),
    "tiny GPT (LM)": (scratch, dec_tokenizer, "lm"),
    "SmolLM2-135M (LM)": (decoder, dec_tokenizer, "lm"),
}
rows = {}
texts = list(reviews["train"]["text"])[: STEP_BATCH * 4]
for name, (model, tok, kind) in step_models.items():
    enc = tok(" ".join(texts), return_tensors="pt", add_special_tokens=False)["input_ids"]
    ids = enc[0, : STEP_BATCH * seq].reshape(STEP_BATCH, seq).to(device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    batch["labels"] = ids if kind == "lm" else torch.zeros(STEP_BATCH, dtype=torch.long,
                                                           device=device)  # fmt: skip
    flops = training_flops(model, ids.numel())
    est = training_memory_bytes(model, STEP_BATCH, seq)
    measured = measure_step(model, batch, flops, reps=STEP_REPS)
    rows[name] = {
        "matmul params (M)": flops / 6 / ids.numel() / 1e6,
        "tokens / step": ids.numel(),
        "estimated GFLOP / step": flops / 1e9,
        **measured,
        "est. params+grads+Adam (MB)": (est["parameters"] + est["gradients"] + est["optimizer"])
        / 1e6,
        "meas. params+grads+Adam (MB)": count_parameters(model) * 4 / 1e6
        + measured["gradients (MB)"]
        + measured["optimizer (MB)"],
        "est. activations (MB)": est["activations"] / 1e6,
    }
compute_table = pd.DataFrame(rows).T
display(compute_table.round(2))

# %% [markdown]
# The state part of the estimate (parameters, gradients, Adam's moments) matches the tensors
# exactly; the activation formula (derived for GPT-style blocks with dropout) lands within a
# small factor of what autograd saved. Model FLOPs per second achieved:

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
gf = compute_table["achieved GFLOP/s"]
bars = ax.barh(gf.index, gf.values, color="tab:purple")
ax.bar_label(bars, [f"{v:.0f}" for v in gf.values], padding=3)
ax.set_xlabel("achieved model GFLOP/s (6 x matmul params x tokens / step time)")
ax.set_title(f"Training throughput on {device.type} (batch {STEP_BATCH} x {seq} tokens)")
ax.invert_yaxis()
plt.tight_layout()
plt.show()
act_ratio = compute_table["activations (MB)"] / compute_table["est. activations (MB)"]
print("measured / estimated activations:",
      ", ".join(f"{n} {r:.2f}" for n, r in act_ratio.items()))  # fmt: skip
smol = compute_table.loc["SmolLM2-135M (LM)"]
print(
    f"Full fine-tuning of SmolLM2 needs about {smol['meas. params+grads+Adam (MB)'] / 1e3:.1f} GB "
    f"before activations; at {smol['achieved GFLOP/s']:.0f} GFLOP/s, one pass over the "
    f"{corpus_tokens:,}-token review corpus would take about "
    f"{training_flops(decoder, corpus_tokens) / (smol['achieved GFLOP/s'] * 1e9) / 60:.0f} min "
    f"on this {device.type}."
)

# %% [markdown]
# ## Exercises
#
# Replace `raise NotImplementedError` with your code and run the check below it: ✅ means all
# hidden cases passed; ❌ shows the first failing input, what was expected and what your function
# returned. `.hint()` reveals one hint at a time; `.solution()` prints the reference solution.

# %%
ex = chapter_exercises(2)
ex

# %% [markdown]
# ### Exercise 1 — perplexity from token losses
#
# Write `perplexity_from_losses(losses)` that takes the cross-entropy (natural log) of each
# predicted token and returns the perplexity.


# %%
def perplexity_from_losses(losses: list[float]) -> float:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["perplexity_from_losses"].hint()  # uncomment for a hint
ex["perplexity_from_losses"].check(perplexity_from_losses)

# %% [markdown]
# <details>
# <summary>Solution to exercise 1 (<code>course_utils/solutions/ch02.py</code>)</summary>
#
# ```python
# def perplexity_from_losses(losses: Sequence[float]) -> float:
#     """Perplexity = exp(mean cross-entropy per predicted token)."""
#     return math.exp(sum(losses) / len(losses))
# ```
#
# </details>

# %% [markdown]
# ### Exercise 2 — training FLOPs
#
# Write `estimate_training_flops(n_params, n_embedding, tokens, tied_output=False)`: 6 FLOPs per
# matmul parameter per token, where embedding parameters are look-ups (not counted) — except that
# with `tied_output=True` the embedding table is also the output layer, a real matmul.


# %%
def estimate_training_flops(n_params: int, n_embedding: int, tokens: int,
                            tied_output: bool = False) -> float:  # fmt: skip
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["estimate_training_flops"].hint()  # uncomment for a hint
ex["estimate_training_flops"].check(estimate_training_flops)

# %% [markdown]
# <details>
# <summary>Solution to exercise 2 (<code>course_utils/solutions/ch02.py</code>)</summary>
#
# ```python
# def estimate_training_flops(
#     n_params: int, n_embedding: int, tokens: int, tied_output: bool = False
# ) -> float:
#     """6 FLOPs per matmul parameter per token; embedding look-ups are free, a tied output is not."""
#     matmul_params = n_params - n_embedding + (n_embedding if tied_output else 0)
#     return 6.0 * matmul_params * tokens
# ```
#
# </details>

# %% [markdown]
# ### Exercise 3 — the top-k next tokens
#
# Write `top_k_tokens(logits, k)` that takes a 1-D tensor of next-token logits and returns a list
# of `k` pairs `(token_id, probability)` (an `int` and a `float`), most probable first.


# %%
def top_k_tokens(logits: torch.Tensor, k: int) -> list[tuple[int, float]]:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["top_k_tokens"].hint()  # uncomment for a hint
ex["top_k_tokens"].check(top_k_tokens)

# %% [markdown]
# <details>
# <summary>Solution to exercise 3 (<code>course_utils/solutions/ch02.py</code>)</summary>
#
# ```python
# def top_k_tokens(logits: torch.Tensor, k: int) -> list[tuple[int, float]]:
#     """The k most probable token ids with their softmax probabilities, most probable first."""
#     probs = torch.softmax(logits.double(), dim=-1)
#     top = torch.topk(probs, k)
#     return [(int(i), float(p)) for i, p in zip(top.indices, top.values, strict=True)]
# ```
#
# </details>

# %%
print(f"notebook ran in {(time.perf_counter() - T_START) / 60:.1f} min ({mode})")

# %% [markdown]
# ## Summary
#
# - A language model maps **tokens** to **embeddings**, refines them through a stack of
#   **transformer blocks** in which **attention** mixes information between positions, and ends in
#   a **head** — next-token probabilities for a decoder, a task head on an encoder.
# - Tokenisers differ: MiniLM's English WordPiece splits Chinese into single characters, while
#   SmolLM2's byte-level BPE spells any text, at the cost of more tokens per character.
# - **Pretraining** (next-token prediction on unlabelled text) is where the knowledge comes from:
#   our tiny GPT, pretrained for minutes, stays far behind SmolLM2 in perplexity, and on a small
#   labelled set the properly pretrained MiniLM beats it clearly after fine-tuning (numbers above).
#   Our own few minutes of pretraining lowered perplexity a lot but did not make the tiny GPT a
#   better classifier: perplexity and usefulness for a task are different things.
# - A **prompt** has an instruction, context, examples and an output format; **fine-tuning** changes
#   parameters, **prompt design** changes the input.
# - Encoders understand, decoders generate, encoder-decoders transform one text into another.
# - Training costs about 6 × (matmul parameters) × tokens FLOPs, and in fp32 with AdamW 16 bytes
#   per parameter plus activations; both estimates were checked against a measured step.
#
# ## 小结
#
# - 语言模型把**词元**映射为**嵌入**向量，经过多层**Transformer 块**（其中的**注意力**在各位置之间交换信息）逐层加工，最后接一个**输出头**：解码器输出下一个词元的概率，编码器之上则接任务头。
# - 不同模型的分词器不同：MiniLM 的英文 WordPiece 把中文切成单个汉字，而 SmolLM2 的字节级 BPE 能表示任何文本，但每个字符需要更多词元。
# - **预训练**（在无标注文本上预测下一个词元）是模型知识的来源：我们只训练了几分钟的小 GPT 在困惑度上远远落后于 SmolLM2；在同一个小规模标注集上微调后，充分预训练的 MiniLM 的准确率明显更高（数字见上文）。我们自己几分钟的预训练大幅降低了困惑度，却没有让小 GPT 成为更好的分类器：困惑度低不等于对任务有用。
# - **提示词**由指令、上下文、示例和输出格式组成；**微调**改变模型参数，**提示词设计**改变模型输入。
# - 编码器擅长理解，解码器擅长生成，编码器-解码器擅长把一段文本转换为另一段文本。
# - 训练的计算量约为 6 ×（参与矩阵乘法的参数量）× 词元数 FLOPs；使用 fp32 和 AdamW 时，每个参数约需 16 字节内存，另加激活值；两个估计都用实测的训练步骤做了验证。
#
# **Next:** chapter 3 turns the fine-tuning algorithm into code step by step and compares its
# strategies — head only, top layers, full fine-tuning, LoRA — on the same budget.
