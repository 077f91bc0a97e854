"""Chapter 2 — Core concepts: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..exercises import Case, Exercise


# -- Exercise 1: perplexity from token losses ----------------------------------------------------
def perplexity_from_losses(losses: Sequence[float]) -> float:
    """Perplexity = exp(mean cross-entropy per predicted token)."""
    return math.exp(sum(losses) / len(losses))


# -- Exercise 2: training FLOPs ------------------------------------------------------------------
def estimate_training_flops(
    n_params: int, n_embedding: int, tokens: int, tied_output: bool = False
) -> float:
    """6 FLOPs per matmul parameter per token; embedding look-ups are free, a tied output is not."""
    matmul_params = n_params - n_embedding + (n_embedding if tied_output else 0)
    return 6.0 * matmul_params * tokens


# -- Exercise 3: the top-k next tokens -------------------------------------------------------------
def top_k_tokens(logits: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The k most probable token ids with their softmax probabilities, most probable first."""
    probs = torch.softmax(logits.double(), dim=-1)
    top = torch.topk(probs, k)
    return [(int(i), float(p)) for i, p in zip(top.indices, top.values, strict=True)]


def _close_pairs(got, expected) -> bool:
    try:
        return len(got) == len(expected) and all(
            int(g[0]) == e[0] and math.isclose(float(g[1]), e[1], rel_tol=1e-4, abs_tol=1e-6)
            for g, e in zip(got, expected, strict=True)
        )
    except (TypeError, IndexError, ValueError):
        return False


def exercises(**_context) -> dict[str, Exercise]:
    """Chapter 2's exercises (they need nothing from the notebook)."""
    gen = torch.Generator().manual_seed(2)
    logit_cases = [
        Case((torch.tensor([0.0, 2.0, 1.0, -1.0]), 2), label="(tensor([0., 2., 1., -1.]), k=2)"),
        Case((torch.randn(50, generator=gen) * 3, 5), label="(50 random logits, k=5)"),
        Case((torch.tensor([1.0, 1.5]), 2), label="(tensor([1., 1.5]), k=2)"),
        Case((torch.randn(49152, generator=gen) * 4, 10), label="(49152 random logits, k=10)"),
    ]
    return {
        "perplexity_from_losses": Exercise(
            "perplexity_from_losses",
            cases=[
                Case(([math.log(4)] * 3,), label="([ln 4, ln 4, ln 4])"),
                Case(([0.0, 0.0],), label="([0.0, 0.0])"),
                Case(([1.0, 2.0, 3.0, 0.5],), label="([1.0, 2.0, 3.0, 0.5])"),
                Case(([math.log(49152)],), label="([ln 49152])"),
            ],
            solution=perplexity_from_losses,
            hints=[
                "Average the losses first (their mean), then undo the logarithm.",
                "`math.exp(sum(losses) / len(losses))`.",
            ],
        ),
        "estimate_training_flops": Exercise(
            "estimate_training_flops",
            cases=[
                Case(
                    (22_700_000, 12_000_000, 1000),
                    label="(22.7M params, 12M embedding, 1000 tokens)",
                ),
                Case(
                    (135_000_000, 28_300_000, 256, True),
                    label="(135M, 28.3M embedding, 256 tokens, tied_output=True)",
                ),
                Case(
                    (7_000_000, 6_300_000, 1024, False), label="(7M, 6.3M embedding, 1024 tokens)"
                ),
                Case(
                    (7_000_000, 6_300_000, 1024, True),
                    label="(7M, 6.3M embedding, 1024 tokens, tied_output=True)",
                ),
            ],  # fmt: skip
            solution=estimate_training_flops,
            hints=[
                "The matmul parameters are n_params - n_embedding.",
                "With tied_output=True the embedding table is used again as the output layer: "
                "add n_embedding back.",
                "Multiply by 6 (2 forward + 4 backward) and by the number of tokens.",
            ],
        ),
        "top_k_tokens": Exercise(
            "top_k_tokens",
            cases=logit_cases,
            solution=top_k_tokens,
            compare=_close_pairs,
            hints=[
                "`torch.softmax(logits, dim=-1)` turns logits into probabilities.",
                "`torch.topk(probs, k)` returns `.values` and `.indices`, largest first.",
                "Build the pairs with `int(i)` and `float(p)`.",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs (nothing)."""
    return {}
