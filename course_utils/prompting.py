"""Prompting a causal language model as a classifier (introduced in chapter 6).

The pieces, each small and usable alone:

- `PromptTemplate` + `render_prompt`: a task instruction (the system message), optional few-shot
  examples as earlier chat turns, and the text to classify, rendered with the tokenizer's own
  chat template (`tokenizer.apply_chat_template`);
- `label_token_ids` and `label_logprobs`: a **verbalizer** — the log-probability of each label
  word as the model's next token. Batched: one forward pass per batch, and only the last position's
  logits are computed. When all prompts share a prefix (the instruction and the few-shot
  examples), the prefix is run once and its key/value cache is reused by every batch;
- `calibrate`: contextual calibration (Zhao et al., 2021): divide the label probabilities by those
  the model gives a content-free input such as ``"N/A"``;
- `label_auc`: a threshold-free score of a verbalizer (the AUC of the label-word log-odds), which
  separates what a prompt knows about the reviews from its bias towards one label;
- `binomial_se` and `paired_gap`: the noise of an accuracy, and of the difference between two
  classifiers scored on the same examples;
- `generate` + `parse_label` + `parse_json`: answers as generated text, parsed robustly.

Every function works with any Hugging Face causal LM and tokenizer with a chat template.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "PromptTemplate",
    "binomial_se",
    "calibrate",
    "common_prefix_length",
    "generate",
    "label_auc",
    "label_logprobs",
    "label_token_ids",
    "normalize_labels",
    "paired_gap",
    "parse_json",
    "parse_label",
    "render_prompt",
]


@dataclass(frozen=True)
class PromptTemplate:
    """How a classification prompt is written.

    `instruction` becomes the system message; `user` formats a text into the user's message (it
    must contain ``{text}``); `label_words[i]` is the answer for label `i`, used as the assistant's
    reply in few-shot examples and as the verbalizer's target. `answer_prefix` is text the
    assistant's reply starts with before the label word (e.g. ``"Sentiment:"``); leave it empty to
    score the reply's first token.
    """

    instruction: str = "Classify the sentiment of the movie review as positive or negative."
    label_words: tuple[str, ...] = ("negative", "positive")
    user: str = "{text}"
    answer_prefix: str = ""
    name: str = field(default="", compare=False)

    def messages(self, text: str, examples: Sequence[tuple[str, int]] = ()) -> list[dict[str, str]]:
        """The chat: system instruction, one user/assistant pair per example, then `text`."""
        chat = [{"role": "system", "content": self.instruction}] if self.instruction else []
        for example_text, label in examples:
            chat.append({"role": "user", "content": self.user.format(text=example_text)})
            chat.append(
                {"role": "assistant", "content": self.answer_prefix + self.label_words[label]}
            )
        chat.append({"role": "user", "content": self.user.format(text=text)})
        return chat


def render_prompt(
    tokenizer, template: PromptTemplate, text: str, examples: Sequence[tuple[str, int]] = ()
) -> str:
    """The exact string the model reads: the chat template applied, ready for the answer.

    The assistant turn is opened (`add_generation_prompt=True`) and `template.answer_prefix`
    appended, so the next token the model predicts is the start of the answer.
    """
    rendered = tokenizer.apply_chat_template(
        template.messages(text, examples), add_generation_prompt=True, tokenize=False
    )
    return rendered + template.answer_prefix


def label_token_ids(tokenizer, label_words: Sequence[str], strict: bool = True) -> list[int]:
    """The token id of each label word (its first token; `strict` demands a single token)."""
    ids = []
    for word in label_words:
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not pieces or (strict and len(pieces) > 1):
            raise ValueError(
                f"label word {word!r} is {len(pieces)} tokens; pick a single-token word "
                "or pass strict=False to score its first token"
            )
        ids.append(pieces[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"label words {list(label_words)} share their first token")
    return ids


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all `sequences`."""
    if not sequences:
        return 0
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for seq in sequences[1:]:
        i = 0
        while i < n and seq[i] == first[i]:
            i += 1
        n = i
    return n


def _encode(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    # the chat template already holds the special tokens: add none
    if not prompts:
        return []
    return tokenizer(list(prompts), add_special_tokens=False)["input_ids"]


@torch.no_grad()
def label_logprobs(
    model,
    tokenizer,
    prompts: Sequence[str],
    token_ids: Sequence[int],
    batch_size: int = 32,
    share_prefix: bool = True,
    min_prefix: int = 8,
) -> np.ndarray:
    """Log-probability (over the whole vocabulary) of each label token after each prompt.

    Returns an array of shape ``(len(prompts), len(token_ids))``. Prompts are tokenised whole (so
    the tokens are exactly those of the string), sorted by length and batched; within a batch the
    varying part is left-padded and masked, with explicit position ids, so every row's last
    position is its real last token and only that position's logits are computed. With
    `share_prefix`, the token prefix common to all prompts (at least `min_prefix` tokens) is run
    once and its key/value cache copied into every batch.
    """
    encoded = _encode(tokenizer, prompts)
    if not encoded:
        return np.zeros((0, len(token_ids)), dtype=np.float32)
    device = next(model.parameters()).device
    n_prefix = common_prefix_length(encoded) if share_prefix else 0
    n_prefix = min(n_prefix, min(len(e) for e in encoded) - 1)  # keep >= 1 token per row
    prefix_cache = None
    if n_prefix >= min_prefix:
        prefix = torch.tensor([encoded[0][:n_prefix]], device=device)
        prefix_cache = model(input_ids=prefix, use_cache=True).cache
    else:
        n_prefix = 0
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids_tensor = torch.tensor(list(token_ids), device=device)
    order = np.argsort([len(e) for e in encoded], kind="stable")
    out = np.zeros((len(encoded), len(token_ids)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        tails = [encoded[i][n_prefix:] for i in rows]
        width = max(len(t) for t in tails)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long)
        mask[:, :n_prefix] = 1
        for r, tail in enumerate(tails):
            input_ids[r, width - len(tail) :] = torch.tensor(tail)
            mask[r, n_prefix + width - len(tail) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, n_prefix:]
        kwargs = {}
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(rows))
            kwargs["cache"] = cache  # transformers 5 calls it `cache` (was `past_key_values`)
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=prefix_cache is not None,
            logits_to_keep=1,
            **kwargs,
        ).logits[:, -1]
        logp = torch.log_softmax(logits.float(), dim=-1)[:, ids_tensor]
        out[rows] = logp.cpu().numpy()
    return out


def normalize_labels(logprobs: np.ndarray) -> np.ndarray:
    """Log-probabilities renormalised over the label words only (each row sums to 1 in p)."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    return logprobs - np.logaddexp.reduce(logprobs, axis=-1, keepdims=True)


def calibrate(logprobs: np.ndarray, content_free_logprobs: np.ndarray) -> np.ndarray:
    """Contextual calibration: label log-probabilities with the content-free bias divided out.

    `content_free_logprobs` are the label log-probabilities for one or more content-free inputs
    (``"N/A"``, ``""``, ...) with the same prompt; their mean label distribution `p_cf` is the
    model's bias. Returns ``log(p / p_cf)`` renormalised over the labels: with
    `W = diag(1 / p_cf)`, the calibrated prediction is ``argmax(W p)``.
    """
    cf = np.atleast_2d(normalize_labels(content_free_logprobs))
    p_cf = np.exp(cf).mean(axis=0)
    return normalize_labels(normalize_labels(logprobs) - np.log(p_cf))


def label_auc(logprobs: np.ndarray, labels: Sequence[int]) -> float:
    """AUC of the log-odds ``log p(label 1) - log p(label 0)`` of a two-label verbalizer.

    Introduced in chapter 6. The AUC is the probability that a random positive example gets a
    higher log-odds than a random negative one (ties count half): it does not depend on a
    threshold, so a constant label bias, or contextual calibration (which shifts every log-odds
    by the same constant), leaves it unchanged. 0.5 is chance; `nan` when one class is missing.
    """
    from sklearn.metrics import roc_auc_score

    logprobs = np.asarray(logprobs, dtype=np.float64)
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, logprobs[:, 1] - logprobs[:, 0]))


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on `n` independent examples: sqrt(p(1-p)/n).

    Introduced in chapter 6. About 95% of repeated measurements fall within 1.96 of it.
    """
    return float(np.sqrt(accuracy * (1 - accuracy) / n)) if n > 0 else float("nan")


def paired_gap(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> tuple[float, float]:
    """Accuracy of `a` minus that of `b` on the same examples, and its 95% half-width.

    Introduced in chapter 6. The examples are paired, so the noise is that of the per-example
    differences (normal approximation): two classifiers that err on the same examples differ
    less by chance than two independent accuracies would.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("paired_gap needs two equally long 1-d sequences (at least 2 examples)")
    diff = a - b
    return float(diff.mean()), float(1.96 * diff.std(ddof=1) / np.sqrt(len(diff)))


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 16,
    batch_size: int = 16,
    **generate_kwargs,
) -> tuple[list[str], float]:
    """Greedy answers to `prompts` (batched, left-padded) and the seconds it took.

    Introduced in chapter 6. Prompts are sorted by length so a batch pads little; the tokenizer
    pads on the left (`padding_side="left"`), so every prompt ends where generation starts.
    Generation stops at the tokenizer's end-of-sequence token (for a chat model, the end of
    the turn) or after `max_new_tokens`; `generate_kwargs` go to `model.generate` (e.g.
    `eos_token_id=[...]` to stop at other tokens too).
    """
    device = next(model.parameters()).device
    order = np.argsort([len(ids) for ids in _encode(tokenizer, prompts)], kind="stable")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    answers: list[str] = [""] * len(prompts)
    start_time = time.perf_counter()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer([prompts[i] for i in rows], add_special_tokens=False,
                              padding=True, return_tensors="pt").to(device)  # fmt: skip
            output = model.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id,
                **generate_kwargs,
            )  # fmt: skip

            width = batch["input_ids"].shape[1]
            for r, i in enumerate(rows):
                answers[i] = tokenizer.decode(output[r, width:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return answers, time.perf_counter() - start_time


def parse_label(text: str, label_words: Sequence[str]) -> int | None:
    """The label whose word appears first in `text` (whole word, any case); `None` if none does."""
    best, best_pos = None, None
    for label, word in enumerate(label_words):
        match = re.search(rf"(?<![\w]){re.escape(word.strip().lower())}(?![\w])", text.lower())
        if match and (best_pos is None or match.start() < best_pos):
            best, best_pos = label, match.start()
    return best


def _repair_json(candidate: str) -> str:
    fixed = candidate.replace("\u201c", '"').replace("\u201d", '"')
    if "'" in fixed and '"' not in fixed:
        fixed = fixed.replace("'", '"')
    fixed = re.sub(r",\s*([}\]])", r"\1", fixed)  # trailing commas
    fixed = re.sub(r"([{,]\s*)([A-Za-z_][\w-]*)\s*:", r'\1"\2":', fixed)  # bare keys
    depth = fixed.count("{") - fixed.count("}")
    if fixed.count('"') % 2:  # cut off inside a string
        fixed += '"'
    return fixed + "}" * max(depth, 0)


def parse_json(text: str, strict: bool = False) -> dict | None:
    """The first JSON object in `text`, or `None`.

    `strict=True` accepts only a reply that is exactly one JSON object (surrounding spaces
    allowed). Otherwise the parser is forgiving: it skips code fences and chatter before the
    first ``{``, ignores text after the object, and repairs single quotes, trailing commas,
    unquoted keys and a missing closing brace.
    """
    if strict:
        try:
            value = json.loads(text.strip())
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    start = text.find("{")
    if start < 0:
        return None
    candidate = text[start:]
    for attempt in (candidate, _repair_json(candidate)):
        try:
            value, _ = json.JSONDecoder().raw_decode(attempt)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    end = candidate.find("}")  # a repaired prefix up to the first closing brace
    if end >= 0:
        try:
            value = json.loads(_repair_json(candidate[: end + 1]))
            return value if isinstance(value, dict) else None
        except ValueError:
            return None
    return None
