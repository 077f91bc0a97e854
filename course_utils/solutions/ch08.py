"""Chapter 8 — Tools and resources: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ..exercises import Case, Exercise


# -- Exercise 1: positions fed under a padding strategy -----------------------------------------
def positions_fed(lengths: Sequence[int], batch_size: int, max_length: int, padding: str) -> int:
    """Token positions processed when consecutive batches are padded as `padding` says."""
    if padding not in ("longest", "max_length"):
        raise ValueError(f"padding must be 'longest' or 'max_length', not {padding!r}")
    truncated = [min(n, max_length) for n in lengths]
    total = 0
    for start in range(0, len(truncated), batch_size):
        batch = truncated[start : start + batch_size]
        width = max_length if padding == "max_length" else max(batch)
        total += width * len(batch)
    return total


# -- Exercise 2: the clipping factor from per-layer norms ---------------------------------------
def clip_factor(layer_norms: Mapping[str, float], max_norm: float) -> float:
    """The factor gradient clipping applies, from per-layer gradient norms."""
    squares = [n * n for n in layer_norms.values() if not math.isnan(n)]
    total = math.sqrt(sum(squares))
    return 1.0 if total <= max_norm else max_norm / total


# -- Exercise 3: each process's share of a step -------------------------------------------------
def rank_share(step_indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """The examples of one optimizer step that process `rank` of `world_size` computes."""
    share = list(step_indices[rank::world_size])
    return share or list(step_indices[:1])


# -- Exercise 4: an experiment, the FLOPs rule at 512 tokens ------------------------------------
@lru_cache(maxsize=4)  # the checker asks twice (the learner's answer, then the expected value)
def flops_ratio(model_name: str = "minilm", tokens: int = 512) -> float:
    """Counted training FLOPs of one input of `tokens` tokens over the 6·N·tokens estimate."""
    import torch

    from ..models import load_classifier
    from ..pretraining import non_embedding_parameters
    from ..tools import training_flops

    model, _ = load_classifier(model_name, num_labels=2, device="cpu")
    model.train()
    ids = torch.full((1, tokens), 1000)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "labels": torch.zeros(1, dtype=torch.long)}  # fmt: skip
    counted = training_flops(model, batch)["total"]
    return counted / (6 * non_embedding_parameters(model) * tokens)


LENGTH_CASES = [
    ([5, 3, 8, 2], 2, 6, "longest"),
    ([5, 3, 8, 2], 2, 6, "max_length"),
    ([10, 10, 10], 2, 64, "longest"),
    ([1, 100, 7, 7, 7], 3, 50, "longest"),
    ([1, 100, 7, 7, 7], 3, 50, "max_length"),
    ([4], 8, 16, "longest"),
    ([], 4, 16, "longest"),
    ([30, 2, 2, 2, 2, 2, 2, 30], 4, 128, "longest"),
]

NORM_CASES = [
    ({"embeddings": 0.3, "layer 0": 0.4}, 1.0),  # total 0.5: no clipping
    ({"embeddings": 3.0, "layer 0": 4.0}, 1.0),  # total 5: factor 0.2
    ({"embeddings": float("nan"), "layer 0": 6.0, "head": 8.0}, 5.0),  # frozen group: 10 -> 0.5
    ({"layer 0": 1.0, "layer 1": 1.0, "layer 2": 1.0, "layer 3": 1.0}, 2.0),  # exactly 2: 1.0
    ({"head": 0.0}, 1.0),
    ({"a": 1e-3, "b": 2e-3, "c": 2e-3}, 1e-3),  # total 3e-3
]

SHARE_CASES = [
    ([10, 11, 12, 13], 0, 2),
    ([10, 11, 12, 13], 1, 2),
    ([10, 11, 12, 13, 14], 1, 2),
    ([10, 11, 12, 13, 14], 0, 2),
    ([7, 3, 9], 2, 4),
    ([7, 3, 9], 3, 4),  # nothing left for rank 3: it repeats the first example
    ([5], 1, 2),
    (list(range(12)), 2, 3),
]


def _length_case_label(lengths, batch_size, max_length, padding) -> str:
    return f"(lengths={lengths}, batch_size={batch_size}, max_length={max_length}, padding={padding!r})"


def exercises(model_name: str = "minilm") -> dict[str, Exercise]:
    """Chapter 8's exercises; `model_name` is the encoder the FLOPs experiment loads."""

    def close_ratio(got, expected) -> bool:
        try:
            return abs(float(got) - float(expected)) <= 0.01 * float(expected)
        except (TypeError, ValueError):
            return False

    return {
        "positions_fed": Exercise(
            "positions_fed",
            cases=[Case(args, label=_length_case_label(*args)) for args in LENGTH_CASES],
            solution=positions_fed,
            hints=[
                "First truncate: every length becomes min(length, max_length).",
                "Walk over the list in slices of batch_size; each slice is one batch.",
                "A batch costs its width times its size; the width is max_length for "
                "'max_length' padding and the slice's largest length for 'longest'.",
            ],
        ),
        "clip_factor": Exercise(
            "clip_factor",
            cases=[Case(args) for args in NORM_CASES],
            solution=clip_factor,
            hints=[
                "Norms of disjoint groups combine like the sides of a right triangle: the total "
                "is the square root of the sum of their squares.",
                "Skip NaN groups (math.isnan); they contribute no gradient.",
                "Clipping only scales down: at or below max_norm the factor is 1.",
            ],
        ),
        "rank_share": Exercise(
            "rank_share",
            cases=[Case(args) for args in SHARE_CASES],
            solution=rank_share,
            hints=[
                "A slice with a step does it: step_indices[start::step].",
                "If that slice is empty, return a list with the step's first example.",
            ],
        ),
        "flops_ratio_512": Exercise(
            "flops_ratio_512",
            kind="value",
            solution=flops_ratio if model_name == "minilm" else (lambda: flops_ratio(model_name)),
            compare=close_ratio,
            hints=[
                "Load with load_classifier(ENCODER, device='cpu'), call model.train(), and build "
                "a batch dict with input_ids of shape (1, 512), an attention_mask of ones and "
                "labels of shape (1,).",
                "training_flops(model, batch)['total'] is the counted number; the estimate is "
                "6 * non_embedding_parameters(model) * 512.",
                "Which part of the model's work grows with the square of the sequence length?",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs, as the notebook builds it (for the tests)."""
    return {"model_name": "minilm"}
