"""Chapter 2 — Core concepts: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import math
from collections import Counter
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


# -- Exercise 4: an experiment: a baseline for perplexity --------------------------------------------
def unigram_experiment(
    train_ids: Sequence[Sequence[int]],
    heldout_ids: Sequence[Sequence[int]],
    vocab_size: int,
    model_ppl: float,
) -> tuple[float, str]:
    """Perplexity of token frequencies alone (add-one counts from the training reviews), scored
    like `text_perplexity` (every token but each review's first); and the letter that reads it."""
    counts = Counter(t for seq in train_ids for t in seq)
    total = sum(counts.values())
    nll, n = 0.0, 0
    for seq in heldout_ids:
        for t in seq[1:]:
            nll -= math.log((counts[t] + 1) / (total + vocab_size))
            n += 1
    unigram_ppl = math.exp(nll / n)
    letter = "a" if model_ppl < unigram_ppl / 2 else "b" if model_ppl < unigram_ppl else "c"
    return unigram_ppl, letter


def _experiment_matches(got, expected) -> bool:
    """The measured perplexity within 1% of the reference run's, and the right letter."""
    try:
        value, letter = got
        return math.isclose(float(value), expected[0], rel_tol=1e-2) and (
            str(letter).strip().lower() == expected[1]
        )
    except (TypeError, ValueError):
        return False


def _close_pairs(got, expected) -> bool:
    try:
        return len(got) == len(expected) and all(
            int(g[0]) == e[0] and math.isclose(float(g[1]), e[1], rel_tol=1e-4, abs_tol=1e-6)
            for g, e in zip(got, expected, strict=True)
        )
    except (TypeError, IndexError, ValueError):
        return False


def exercises(
    train_ids=None, heldout_ids=None, vocab_size: int = 0, model_ppl: float = 0.0
) -> dict[str, Exercise]:
    """Chapter 2's exercises; the experiment (exercise 4) uses the notebook's token ids of the
    training and held-out reviews, the vocabulary size and the tiny GPT's perplexity."""

    def experiment_on_the_notebooks_data() -> tuple[float, str]:
        """The reference answer: `unigram_experiment` on the notebook's reviews."""
        return unigram_experiment(train_ids, heldout_ids, vocab_size, model_ppl)

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
        "unigram_baseline": Exercise(
            "unigram_baseline",
            kind="value",
            solution=experiment_on_the_notebooks_data,
            compare=_experiment_matches,
            hints=[
                "Count every token id of `train_ids` (`collections.Counter`); a token's probability "
                "is (its count + 1) / (all counts + vocab_size), so unseen tokens are not impossible.",
                "Score each held-out review from its second token on (the first is context in "
                "`text_perplexity` too): add -log(probability) per token, divide by the number of "
                "tokens scored, then exp().",
                "Compare `TINY_PPL` with your perplexity: less than half of it is 'a', below it but "
                "more than half is 'b', not below it is 'c'.",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs, without a tokenizer: a few token-id sequences."""
    train = [[2, 3, 4, 2, 5], [3, 3, 2, 6], [4, 2, 7, 8, 2]] * 4
    heldout = [[2, 3, 9, 2], [5, 4, 2]]
    return {"train_ids": train, "heldout_ids": heldout, "vocab_size": 10, "model_ppl": 3.0}
