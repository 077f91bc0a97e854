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
# # 1. Introduction
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/course-llm/finetuning-prompt-course/blob/main/chapters/01_introduction.ipynb)
#
# *Fine-tuning and Prompt Design for Language Models* — a hands-on course that turns every claim
# of its source article (§1 here) into something you run and measure.
#
# **In this chapter you will**
#
# - see what the course covers, who it is for, and which chapter covers which part of the source;
# - learn the vocabulary with a bilingual glossary (English / 中文), corrected where the source is wrong;
# - check that your machine is ready (the `doctor`);
# - get one real prediction from each of the course's two pretrained models, an **encoder**
#   (MiniLM, BERT family) and a **decoder** (SmolLM2-135M-Instruct, GPT family), on a laptop CPU;
# - learn how to swap in a bigger model from the Hugging Face Hub on Colab or a GPU;
# - solve four auto-checked exercises, the last one a small experiment on what Chinese text costs
#   a byte-level tokenizer.

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
# The **parameters** below are the knobs of this notebook. `SMOKE = True` runs tiny settings (that
# is how the course's tests run every notebook in seconds); the outputs stored with this notebook
# come from a full run (`SMOKE = False`, via `python scripts/run_notebooks.py`). `ENCODER` and
# `DECODER` take a course model name, a local folder or a Hugging Face Hub id (see *Swapping in a
# Hub model* below); `DEVICE = "auto"` picks a CUDA GPU, then Apple's MPS, then the CPU.

# %% tags=["parameters"]
# Run All runs the full experiment that produced the stored outputs: 19 s on 2 CPU cores, no GPU.
# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).
SMOKE = False
DEVICE = "auto"  # "auto", "cpu", "cuda" or "mps"
ENCODER = "minilm"  # a course model, a local folder or a Hub id
DECODER = "smollm2"  # e.g. "HuggingFaceTB/SmolLM2-360M-Instruct" (online)
SEED = 0

# %%
import time

import matplotlib.pyplot as plt
import torch
import transformers

from course_utils import models
from course_utils.data import Field, load_jsonl, load_movie_reviews
from course_utils.exercises import chapter_exercises

transformers.utils.logging.disable_progress_bar()  # keep the stored outputs short
torch.manual_seed(SEED)
N_REVIEWS = 32 if SMOKE else 984  # reviews for the zero-shot test (984 = all)
MAX_NEW_TOKENS = 12 if SMOKE else 60
mode = "SMOKE (tiny settings)" if SMOKE else "full"
print(f"mode: {mode}; device: {models.get_device(DEVICE)}")

# %% [markdown]
# ## 1.1 Purpose and scope
#
# Language models learn general skills from enormous amounts of text (**pretraining**); we then
# make them do *our* task in one of two ways, and this course teaches both, side by side, on the
# same data:
#
# - **fine-tuning** — keep training the pretrained weights (all of them, a few layers, or a small
#   add-on such as LoRA) on labelled examples of the task, by gradient descent on a loss $L$:
#   $\theta \leftarrow \theta - \alpha \, \nabla_\theta L(\theta)$;
# - **prompt design** — leave the weights alone and write the input (instruction, examples,
#   output format) so that the model does the task.
#
# The source article promises the basic concepts and principles of fine-tuning, the elements and
# strategies of prompt design, their use in a real project, and an outlook on trends and
# challenges. The course keeps that scope and adds what an article cannot: every claim becomes an
# experiment you run, every figure is a real plot of a real measurement, and where the article is
# wrong (a wrong update rule in §4.1, code that does not run in §5.2, references that do not
# exist in §10) the course says so and teaches the correct version.
#
# Everything runs on a 2-core laptop CPU without internet access to model hubs: the two default
# models and the data sets come from ordinary PyPI packages, pinned and checksummed. A GPU is
# used automatically when there is one.

# %% [markdown]
# ## 1.2 Who this course is for
#
# - **Beginners with some Python** who know roughly what a neural network is and want to see how
#   language models are adapted in practice. The maths is introduced when needed (chapter 4).
# - **Developers** who want to choose between prompting and fine-tuning with numbers, not slogans:
#   accuracy, cost, time and memory are measured on the same data.
# - **Engineers** who will use language models for data analysis or products and need a reliable
#   workflow: clean splits, honest evaluation, reproducible runs, error analysis.
#
# You need Python 3.10+, under 1 GB of disk for the models and data (the `doctor` in 1.5 prints
# each asset's size), about 2 GB for the Python packages (PyTorch's CPU build, transformers,
# Jupyter), and patience for a few minutes of CPU training in the later chapters. No GPU, no
# accounts, no API keys.

# %% [markdown]
# ## 1.3 The course map
#
# The course follows the source article's ten chapters. The right-hand column says what you *do*
# in each one.
#
# | Chapter | Source | What you do |
# | --- | --- | --- |
# | 1. Introduction | §1 | Glossary, environment check, a first prediction from each model. |
# | 2. Core concepts | §2 | Inspect tokens, embeddings and attention; pretrain a tiny GPT and compare it with SmolLM2. |
# | 3. The fine-tuning algorithm | §3 | Compare head-only, top-k layers, full fine-tuning and LoRA on one budget. |
# | 4. The mathematics | §4 | Derive cross-entropy and backpropagation by hand; gradient descent and optimisers. |
# | 5. Project: a classifier end to end | §5 | Train, evaluate and analyse a sentiment classifier; test it out of domain. |
# | 6. Prompt design | §2.3, §2.4, §8.1, §9.2 | Zero- and few-shot prompting, calibration, prompt selection, LoRA on the prompt format, prompt injection. |
# | 7. Applications | §6 | NER, question answering, semantic search, instruction tuning, chat. |
# | 8. Tools and resources | §7 | The Hugging Face stack in practice; profiling, debugging, reproducibility. |
# | 9. Trends and challenges | §8 | Efficiency, quantisation, privacy (a planted canary), interpretability. |
# | 10. FAQ and further reading | §9, §10 | Common questions answered by experiments; a verified reading list. |

# %% [markdown]
# ## 1.4 Glossary · 术语表
#
# The glossary lives in `data/glossary.jsonl`, one term per line with an English and a Chinese
# name and definition. It starts from the source's §1.4 and adds the terms the course uses. Where
# the source's definition is misleading, the entry has a `correction`. We load it with the course's
# validating JSONL reader (a typo in the file would stop here with the line number).

# %% tags=["nbval-check-output"]
GLOSSARY_SCHEMA = {
    "en": Field(str),
    "zh": Field(str),
    "abbr": Field(str),
    "def_en": Field(str),
    "def_zh": Field(str),
    "source": Field(str),
    "correction": Field(str),
}
glossary = load_jsonl("glossary.jsonl", GLOSSARY_SCHEMA).to_list()
from_source = [e for e in glossary if e["source"].startswith("§1.4")]
added = len(glossary) - len(from_source)
print(f"{len(glossary)} terms: {len(from_source)} from the source's §1.4, {added} new")
corrected = sum(bool(e["correction"]) for e in glossary)
print(f"{corrected} entries correct or refine the source")

# %%
from IPython.display import Markdown


def glossary_table(entries) -> Markdown:
    rows = ["| Term | 术语 | Definition | 定义 |", "| --- | --- | --- | --- |"]
    for e in entries:
        name = f"**{e['en']}**" + (f" ({e['abbr']})" if e["abbr"] else "")
        rows.append(f"| {name} | {e['zh']} | {e['def_en']} | {e['def_zh']} |")
    return Markdown("\n".join(rows))


glossary_table(glossary)

# %% [markdown]
# The corrections, side by side with what the source says, are worth reading once:

# %%
for e in glossary:
    if e["correction"]:
        print(f"• {e['en']} / {e['zh']}: {e['correction']}")

# %% [markdown]
# ## 1.5 Environment check
#
# `python -m course_utils doctor` checks Python, the packages, the device and the course's
# pinned assets (models and data, fetched once by `python -m course_utils fetch` and then used
# offline). Every line should say `OK`; a `FAIL` line says how to fix it. Here we call the same
# function from Python:

# %%
from course_utils.doctor import doctor

status = doctor()
print(f"\ntorch {torch.__version__}, transformers {transformers.__version__}, "
      f"{torch.get_num_threads()} CPU threads")  # fmt: skip
print("all checks passed" if status == 0 else "some checks failed: see FAIL above")

# %% [markdown]
# ## 1.6 First contact: the encoder
#
# **MiniLM** (all-MiniLM-L6-v2) is a small BERT: 6 Transformer layers that read a whole text at
# once and turn it into vectors. Pretrained as a language model and then trained on over a billion
# sentence pairs to tell similar from dissimilar ones, its averaged token vectors
# (a *sentence embedding*) place texts of similar meaning close together. It has no task head yet
# — chapter 3 adds one and fine-tunes it — but it can already make a prediction: which sentences
# mean similar things.
#
# First, what the model actually reads: **tokens**.

# %%
t0 = time.perf_counter()
encoder, enc_tokenizer = models.load_encoder(ENCODER, device=DEVICE)
device = encoder.device
n_params = sum(p.numel() for p in encoder.parameters())
print(f"{ENCODER}: {type(encoder).__name__}, {n_params / 1e6:.1f}M parameters, "
      f"loaded in {time.perf_counter() - t0:.1f} s on {device}")  # fmt: skip

# %% tags=["nbval-check-output"]
sentence = "Fine-tuning adapts a pretrained model to your task."
print(enc_tokenizer.tokenize(sentence))
print(enc_tokenizer(sentence)["input_ids"])

# %% [markdown]
# WordPiece splits rare words into pieces (`##` marks a piece that continues a word), lower-cases
# everything (this model is *uncased*) and adds the special tokens `[CLS]` (id 101) and `[SEP]`
# (102) around the text. Now the sentence embedding: the mean of the last layer's token vectors,
# scaled to length 1, so that a dot product is the cosine similarity.


# %%
def embed(texts: list[str]) -> torch.Tensor:
    """Unit-length sentence embeddings: mean of the last layer over real tokens."""
    batch = enc_tokenizer(texts, padding=True, truncation=True, max_length=128,
                          return_tensors="pt").to(device)  # fmt: skip
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state  # (texts, tokens, 384)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    return torch.nn.functional.normalize(mean, dim=-1).cpu()


sentences = [
    "The film was wonderful, I loved it.",
    "A moving, beautifully acted movie.",
    "The movie was a boring waste of time.",
    "How do I fine-tune a language model?",
    "Training a pretrained model on my own data.",
    "The recipe needs two eggs and flour.",
]
vectors = embed(sentences)
similarity = (vectors @ vectors.T).numpy()

fig, ax = plt.subplots(figsize=(7, 5.5))
im = ax.imshow(similarity, cmap="viridis", vmin=0, vmax=1)
labels = [s if len(s) < 32 else s[:30] + "…" for s in sentences]
ax.set_xticks(range(len(sentences)), labels, rotation=40, ha="right", fontsize=8)
ax.set_yticks(range(len(sentences)), labels, fontsize=8)
for i in range(len(sentences)):
    for j in range(len(sentences)):
        ax.text(j, i, f"{similarity[i, j]:.2f}", ha="center", va="center", fontsize=7,
                color="white" if similarity[i, j] < 0.6 else "black")  # fmt: skip
ax.set_title("MiniLM: cosine similarity of sentence embeddings")
fig.colorbar(im, ax=ax, label="cosine similarity")
fig.tight_layout()
plt.show()

# %% [markdown]
# Topic dominates: the three film sentences are close to each other, the two fine-tuning
# sentences too, and the recipe is far from everything. But look at the negative review: it is
# much closer to the two positive ones than to any off-topic sentence, although it says the
# opposite. **Sentence embeddings encode
# what a text is about more than what it feels** — which is exactly why we fine-tune the encoder for
# sentiment in chapters 3 and 5. How far can the pretrained embeddings get on their own? A
# *zero-shot* classifier: call a review positive when its embedding is closer to "This is a
# positive movie review." than to the negative description. We measure it on real movie-review
# snippets with human ratings (the course's main data set, Hutto & Gilbert 2014).

# %% tags=["course-summary"]
reviews = load_movie_reviews()["test"].shuffle(seed=SEED).select(range(N_REVIEWS))
descriptions = ["This is a negative movie review.", "This is a positive movie review."]
label_vectors = embed(descriptions)
t0 = time.perf_counter()
texts = reviews["text"]
review_vectors = torch.cat([embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
predictions = (review_vectors @ label_vectors.T).argmax(dim=1)
accuracy = (predictions == torch.tensor(reviews["label"])).float().mean().item()
n_pos = sum(reviews["label"])
majority = max(n_pos, len(reviews) - n_pos) / len(reviews)
seconds = time.perf_counter() - t0
print(f"zero-shot accuracy on {len(reviews)} test reviews: {accuracy:.1%} "
      f"(always the majority label: {majority:.1%}); {seconds:.1f} s")  # fmt: skip
names = ["negative", "positive"]
examples = zip(texts[:4], reviews["label"][:4], predictions.tolist()[:4], strict=True)
for text, label, pred in examples:
    mark = "✓" if label == pred else "✗"
    print(f"  {mark} predicted {names[pred]:<8} | {text[:70]}")

# %% [markdown]
# Better than guessing, far from good: the pretrained encoder knows *something* about sentiment
# without any training, and chapter 5 shows how far fine-tuning takes it on the same test split.

# %% [markdown]
# ## 1.7 First contact: the decoder
#
# **SmolLM2-135M-Instruct** is a small GPT-style (Llama architecture) model: it reads the tokens so
# far and predicts the next one. It was pretrained on about two trillion tokens and then
# instruction-tuned to follow a chat format. Its tokenizer is *byte-level BPE*: it never meets an
# unknown character (each Chinese character is three UTF-8 bytes, merged into fewer tokens where
# its training text was frequent), whereas MiniLM's English vocabulary turns most Chinese
# characters into `[UNK]` (unknown). The cell counts both on one English and one Chinese review.

# %%
t0 = time.perf_counter()
decoder, dec_tokenizer = models.load_causal_lm(DECODER, device=DEVICE)
n_params = sum(p.numel() for p in decoder.parameters())
print(f"{DECODER}: {type(decoder).__name__}, {n_params / 1e6:.1f}M parameters, "
      f"loaded in {time.perf_counter() - t0:.1f} s on {decoder.device}")  # fmt: skip

# %% tags=["nbval-check-output"]
review_zh = "这部电影真好看！"  # "This film is really good!"
for name, tok in [("MiniLM", enc_tokenizer), ("SmolLM2", dec_tokenizer)]:
    for text in [sentence, review_zh]:
        pieces = tok.tokenize(text)
        print(f"{name:<8} {len(pieces):>2} tokens: {pieces}")
zh_chars = sum("\u4e00" <= ch <= "\u9fff" for ch in review_zh)
zh_tokens = len(dec_tokenizer.tokenize(review_zh))
unk = enc_tokenizer.tokenize(review_zh).count(enc_tokenizer.unk_token)
print(f"the Chinese review: {zh_chars} Chinese characters -> {zh_tokens} SmolLM2 tokens "
      f"({zh_tokens / zh_chars:.2f} per character, punctuation included); "
      f"MiniLM: {unk} of {len(enc_tokenizer.tokenize(review_zh))} tokens are [UNK]")  # fmt: skip

# %% [markdown]
# A language model's basic prediction is a probability for every possible next token. Here are the
# most likely continuations of a prompt:

# %%
prompt = "The capital of France is"
inputs = dec_tokenizer(prompt, return_tensors="pt").to(decoder.device)
with torch.no_grad():
    logits = decoder(**inputs).logits[0, -1]  # scores for the token after the prompt
probs = torch.softmax(logits.float(), dim=-1)
top = torch.topk(probs, 8)
words = [repr(dec_tokenizer.decode(i)) for i in top.indices]

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(words[::-1], top.values.cpu().numpy()[::-1], color="tab:blue")
ax.set_xlabel("probability of the next token")
ax.set_title(f"SmolLM2: next token after {prompt!r}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Instruction tuning taught the model to answer messages written in its **chat template** (the
# special tokens that mark who speaks). We generate greedily (always the most likely token), so
# the answer is reproducible:

# %%
question = "In one sentence: what does fine-tuning a language model mean?"
messages = [{"role": "user", "content": question}]
chat = dec_tokenizer.apply_chat_template(
    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
).to(decoder.device)
print(dec_tokenizer.decode(chat["input_ids"][0]))  # what the model really reads
t0 = time.perf_counter()
with torch.no_grad():
    output = decoder.generate(**chat, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
seconds = time.perf_counter() - t0
new_tokens = output[0, chat["input_ids"].shape[1] :]
answer = dec_tokenizer.decode(new_tokens, skip_special_tokens=True)
n_new = len(new_tokens)
print(f"{n_new} tokens in {seconds:.1f} s ({n_new / seconds:.0f} tokens/s):\n{answer}")

# %% [markdown]
# A 135M-parameter model answers fluently, and often imprecisely: small models are fast and cheap,
# but they need good prompts (chapter 6) or fine-tuning (chapters 3, 5 and 7) to be reliable.

# %% [markdown]
# ## 1.8 Swapping in a Hub model (Colab or a GPU)
#
# Every notebook takes its models from the parameters cell, and every loader accepts three kinds of
# names: a course model (`"minilm"`, `"smollm2"`, offline once fetched), a local folder written by
# `save_pretrained`, or a **Hugging Face Hub id** when you are online. On Colab (use *Runtime →
# Change runtime type → GPU*) or on your own GPU, edit the parameters cell, e.g.
#
# ```python
# ENCODER = "sentence-transformers/all-mpnet-base-v2"   # a larger sentence encoder
# DECODER = "HuggingFaceTB/SmolLM2-360M-Instruct"       # or "Qwen/Qwen2.5-0.5B-Instruct"
# DEVICE = "auto"                                        # picks the GPU
# ```
#
# or run the notebook from the command line with papermill:
#
# ```bash
# papermill chapters/01_introduction.ipynb /tmp/ch01.ipynb -p SMOKE False -p DECODER HuggingFaceTB/SmolLM2-360M-Instruct
# ```
#
# Loading never runs code from the model repository and reads only safetensors weights. Offline,
# a Hub id fails at once with a message that says what to do instead:

# %%
try:
    hub_tokenizer = models.load_tokenizer("HuggingFaceTB/SmolLM2-360M-Instruct")
    print("online: loaded", type(hub_tokenizer).__name__, "from the Hub")
except models.ModelNotFoundError as error:
    print("offline:", error)

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
    1,
    tokenizers={"minilm": enc_tokenizer, "smollm2": dec_tokenizer},
    embed=embed,
    glossary=glossary,
)
ex

# %% [markdown]
# ### Exercise 1 — count tokens
#
# Write `count_tokens(text, tokenizer)` returning how many tokens `tokenizer` splits `text` into,
# **without** special tokens such as `[CLS]` and `[SEP]`. It is checked with both course
# tokenizers on English, Chinese and empty text.


# %%
def count_tokens(text: str, tokenizer) -> int:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["count_tokens"].hint()  # uncomment for a hint
ex["count_tokens"].check(count_tokens)

# %% [markdown]
# <details>
# <summary>Solution to exercise 1 (<code>course_utils/solutions/ch01.py</code>)</summary>
#
# ```python
# def count_tokens(text: str, tokenizer) -> int:
#     """How many tokens ``tokenizer`` splits ``text`` into, without special tokens."""
#     return len(tokenizer(text, add_special_tokens=False)["input_ids"])
# ```
#
# </details>

# %% [markdown]
# ### Exercise 2 — predict with the encoder
#
# Write `most_similar(query, candidates, embed)` returning the **index** of the candidate sentence
# closest in meaning to `query`, using the `embed` function above (it returns unit-length rows).


# %%
def most_similar(query: str, candidates: list[str], embed) -> int:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["most_similar"].hint()  # uncomment for a hint
ex["most_similar"].check(most_similar)

# %% [markdown]
# <details>
# <summary>Solution to exercise 2 (<code>course_utils/solutions/ch01.py</code>)</summary>
#
# ```python
# def most_similar(query: str, candidates: Sequence[str], embed: Callable) -> int:
#     """The index of the candidate closest in meaning to ``query`` (cosine similarity)."""
#     vectors = embed([query, *candidates])  # one unit-length row per text
#     scores = vectors[1:] @ vectors[0]  # dot products of unit vectors = cosine similarities
#     return int(scores.argmax())
# ```
#
# </details>

# %% [markdown]
# ### Exercise 3 — find a glossary term
#
# Write `find_term(term, glossary)` returning the glossary entry (a dict) whose English name,
# Chinese name or abbreviation is `term`, ignoring case and surrounding spaces, or `None` if there
# is none. For example `find_term("微调", glossary)["en"]` is `"Fine-tuning"`.


# %%
def find_term(term: str, glossary: list[dict]) -> dict | None:
    raise NotImplementedError  # your code here


# %% tags=["nbval-check-output"]
# ex["find_term"].hint()  # uncomment for a hint
ex["find_term"].check(find_term)

# %% [markdown]
# <details>
# <summary>Solution to exercise 3 (<code>course_utils/solutions/ch01.py</code>)</summary>
#
# ```python
# def find_term(term: str, glossary: Sequence[Mapping]) -> Mapping | None:
#     """The glossary entry whose English name, Chinese name or abbreviation is ``term``.
#
#     Case and surrounding spaces do not matter; returns ``None`` when there is no such entry.
#     """
#     key = term.strip().casefold()
#     for entry in glossary:
#         names = {entry["en"].casefold(), entry["zh"].casefold()}
#         if entry.get("abbr"):
#             names.add(entry["abbr"].casefold())
#         if key in names:
#             return entry
#     return None
# ```
#
# </details>

# %% [markdown]
# ### Exercise 4 — an experiment: what does Chinese cost SmolLM2?
#
# Measure it on the glossary: take the entries whose Chinese name (`entry["zh"]`) is made of
# Chinese characters only, count SmolLM2's tokens for those names (`dec_tokenizer`, without
# special tokens) and divide by their number of characters. Then choose the explanation:
#
# - `"a"`: every Chinese character is one token of SmolLM2's vocabulary;
# - `"b"`: byte-level BPE starts from each character's 3 UTF-8 bytes and merges only combinations
#   frequent in its mostly English training text, so most characters take more than one token;
# - `"c"`: SmolLM2 maps Chinese characters to an unknown token, as MiniLM does.
#
# Set `CHINESE_COST = (your tokens per character, rounded to 2 decimals, "a" | "b" | "c")`.

# %%
CHINESE_COST = ...  # (a float you measured, a letter)

# %% tags=["nbval-check-output"]
# ex["chinese_cost"].hint()  # uncomment for a hint
ex["chinese_cost"].check(CHINESE_COST)

# %% [markdown]
# <details>
# <summary>Solution to exercise 4 (<code>course_utils/solutions/ch01.py</code>)</summary>
#
# ```python
# def chinese_cost(tokenizer, glossary: Sequence[Mapping]) -> tuple[float, str]:
#     """SmolLM2 tokens per Chinese character over the glossary's all-Chinese names, and why."""
#     names = chinese_names(glossary)
#     tokens = sum(len(tokenizer(name, add_special_tokens=False)["input_ids"]) for name in names)
#     return tokens / sum(len(name) for name in names), "b"
# ```
#
# </details>

# %% [markdown]
# ## Summary
#
# - The course teaches the two ways of adapting a pretrained language model — **fine-tuning** its
#   weights and **designing prompts** — side by side, measured on the same data, on a CPU.
# - Its vocabulary is in a bilingual glossary that also corrects the source (pretraining is
#   *self-supervised* training on unlabelled text; a prompt is the whole input, not a few words).
# - The encoder (MiniLM, 22.7M parameters) turns text into vectors that capture topic well and
#   sentiment only weakly: zero-shot sentiment from its embeddings scores about 66% on the test
#   reviews, against 50% for guessing — better than chance, far from good.
# - The decoder (SmolLM2, 135M parameters) predicts the next token and answers chat messages,
#   fluently but not always precisely.
# - Every notebook swaps in a Hub model through its parameters cell, and uses a GPU when present.
#
# ## 小结
#
# - 本课程并列讲授调整预训练语言模型的两种方法——**微调**模型参数与**设计提示词**——并在同一数据上、用 CPU 实际测量比较。
# - 术语采用中英双语术语表，并纠正了原文的不准确之处（预训练是在无标注文本上的*自监督*训练；提示词是完整的输入，而不只是几个词）。
# - 编码器（MiniLM，2270 万参数）把文本变成向量，能很好地表示主题，但对情感的表示较弱：仅靠其嵌入做零样本情感分类，在测试影评上的准确率约为 66%（随机猜测约 50%）——好于随机，但远远不够好。
# - 解码器（SmolLM2，1.35 亿参数）预测下一个词元并回答对话消息，语言流畅但不一定准确。
# - 每个笔记本都可以通过参数单元格换用 Hugging Face Hub 上的模型，并在有 GPU 时自动使用 GPU。
#
# **Next:** chapter 2 opens the models up — tokens, embeddings, attention — and measures what
# pretraining buys by training a tiny GPT from scratch.
