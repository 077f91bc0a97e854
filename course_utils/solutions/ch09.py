"""Chapter 9 — Trends and challenges: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..exercises import Case, Exercise, equal


# -- Exercise 1: exposure of a canary -----------------------------------------------------------
def exposure_bits(logprobs: Sequence[float], index: int) -> float:
    """log2(number of candidates) - log2(rank of candidate `index`); rank 1 = most likely.

    Candidates exactly as likely as the true one do not push it down (ties count in its favour).
    """
    logprobs = np.asarray(logprobs, dtype=float)
    rank = 1 + int((logprobs > logprobs[index]).sum())
    return math.log2(len(logprobs)) - math.log2(rank)


# -- Exercise 2: symmetric int8 quantisation of a weight matrix ----------------------------------
def absmax_int8(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8 quantisation: `(q, scale)` with `weights ≈ q * scale[:, None]`.

    Each row's scale maps its largest absolute value to 127; a row of zeros gets scale 1.
    """
    w = np.asarray(weights, dtype=np.float64)
    scale = np.abs(w).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


# -- Exercise 3: the nearest training examples -------------------------------------------------
def nearest_examples(query: np.ndarray, bank: np.ndarray, k: int) -> list[int]:
    """Indices of the `k` rows of `bank` most cosine-similar to `query`, the most similar last.

    Ties go to the smaller index (it counts as the more similar one).
    """
    bank = np.asarray(bank, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    sims = bank @ query / (np.linalg.norm(bank, axis=1) * np.linalg.norm(query))
    order = sorted(range(len(bank)), key=lambda i: (-sims[i], i))[:k]
    return order[::-1]


# -- Exercise 4: an experiment — delete the least important tokens ------------------------------
def bottom_k_flip_rate(model, tokenizer, attributions, k: int) -> float:
    """Share of predictions that flip when the `k` lowest-scored content tokens are deleted."""
    from ..interpretability import content_positions, delete_positions, predict_ids

    edited, targets = [], []
    for a in attributions:
        candidates = content_positions(a.input_ids, tokenizer)
        lowest = sorted(candidates, key=lambda i: (a.scores[i], i))[:k]
        edited.append(delete_positions(a.input_ids, lowest))
        targets.append(a.target)
    probs = predict_ids(model, edited, tokenizer.pad_token_id)
    return float(np.mean(probs.argmax(axis=1) != np.asarray(targets)))


# -- hidden cases -------------------------------------------------------------------------------
EXPOSURE_CASES = [
    ([-1.0, -3.0, -0.5, -2.0], 2),
    ([-1.0, -3.0, -0.5, -2.0], 1),
    ([-1.0, -3.0, -0.5, -2.0], 0),
    ([0.0] * 8, 5),  # all tied: the secret is (one of) the most likely
    (list(np.linspace(-20, -1, 1000)), 999),
    (list(np.linspace(-20, -1, 1000)), 0),
    ([-2.0, -2.0, -5.0, -1.0, -2.0], 4),
]


def _int8_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(9)
    mixed = rng.normal(size=(4, 6))
    mixed[2] = 0.0  # a row of zeros
    return [
        np.array([[1.0, -0.5, 0.25], [127.0, 0.0, -63.5]]),
        rng.normal(scale=0.02, size=(8, 16)),
        mixed,
        np.array([[-3.0, 3.0, 1.5, -1.5]]),
    ]


def _nearest_cases() -> list[tuple]:
    rng = np.random.default_rng(3)
    bank = rng.normal(size=(30, 5))
    return [
        (bank[7] * 2.5, bank, 1),  # a scaled copy of row 7: cosine 1
        (rng.normal(size=5), bank, 4),
        (rng.normal(size=5), bank * rng.uniform(0.1, 10, size=(30, 1)), 3),  # lengths do not matter
        (np.array([1.0, 0.0]), np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 3),
    ]


def _same_quantisation(got, expected) -> bool:
    try:
        q, scale = got
        q_ref, scale_ref = expected
        return (
            np.asarray(q).dtype == np.int8
            and np.array_equal(np.asarray(q), q_ref)
            and np.allclose(np.asarray(scale, dtype=float).ravel(), scale_ref, rtol=1e-6)
        )
    except (TypeError, ValueError):
        return False


def _same_indices(got, expected) -> bool:
    try:
        return [int(i) for i in got] == list(expected)
    except (TypeError, ValueError):
        return False


def exercises(model=None, tokenizer=None, attributions=None) -> dict[str, Exercise]:
    """Chapter 9's exercises; the last one runs on the notebook's classifier and attributions."""
    ex = {
        "exposure_bits": Exercise(
            "exposure_bits",
            cases=[Case((logp, i)) for logp, i in EXPOSURE_CASES],
            solution=exposure_bits,
            compare=lambda got, expected: equal(float(got), expected, rel_tol=1e-9, abs_tol=1e-9),
            hints=[
                "The rank of the true secret is 1 + the number of candidates with a strictly "
                "higher log-probability.",
                "Exposure = log2(len(logprobs)) - log2(rank); `math.log2` does both.",
            ],
        ),
        "absmax_int8": Exercise(
            "absmax_int8",
            cases=[Case((w,)) for w in _int8_cases()],
            solution=absmax_int8,
            compare=_same_quantisation,
            hints=[
                "One scale per row: the row's largest |w| divided by 127.",
                "Divide, round to the nearest integer (`np.rint`), clip to [-127, 127], then "
                "`.astype(np.int8)`.",
                "A row of zeros would divide by zero: give it scale 1.",
            ],
        ),
        "nearest_examples": Exercise(
            "nearest_examples",
            cases=[Case(args) for args in _nearest_cases()],
            solution=nearest_examples,
            compare=_same_indices,
            hints=[
                "Cosine similarity: the dot product divided by both vectors' lengths.",
                "Sort the indices by (-similarity, index), keep the first k...",
                "...and reverse them, so that the most similar example comes last, right before "
                "the review to classify.",
            ],
        ),
    }
    if model is not None and attributions:
        ex["bottom_k_flip_rate"] = Exercise(
            "bottom_k_flip_rate",
            cases=[Case((model, tokenizer, attributions, k)) for k in (1, 2)],
            solution=bottom_k_flip_rate,
            compare=lambda got, expected: equal(float(got), expected, abs_tol=1e-9),
            hints=[
                "For each attribution: its content positions (`content_positions`), sorted by "
                "score from the lowest up; keep k.",
                "Delete them with `delete_positions`, predict every edited review at once with "
                "`predict_ids(model, edited, tokenizer.pad_token_id)`.",
                "A flip: the new argmax differs from `a.target`, the class that was explained.",
            ],
        )
    return ex


def test_context() -> dict:
    """What ``exercises()`` needs, built small: a tiny BERT classifier and its attributions."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from ..interpretability import integrated_gradients

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += "good great bad awful the movie plot was very and".split()
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                        num_labels=2, pad_token_id=0)  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    texts = ["the movie was good", "a bad and awful plot", "very very great", "the plot was bad"]
    return {
        "model": model,
        "tokenizer": tokenizer,
        "attributions": integrated_gradients(model, tokenizer, texts, n_steps=8),
    }
