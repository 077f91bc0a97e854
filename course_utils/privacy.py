"""Memorisation of planted secrets: canaries and their exposure (introduced in chapter 9).

Carlini et al. (2019, *The Secret Sharer*, https://arxiv.org/abs/1802.08232) measure how much a
model memorised a training sentence by planting a **canary** — a sentence with a random secret,
such as ``"Anna Kowalski's PIN code is 4815."`` — in the training data, and ranking the true
secret among *every* possible secret by the model's log-probability. With a candidate space
``R`` (here every string of `length` symbols from an alphabet, e.g. 10,000 four-digit PINs)
and the true secret at rank ``r`` (1 = the most likely candidate),

    exposure = log2 |R| - log2 r

is 0 bits when the secret is the least likely candidate, about 1 bit on average for a secret the
model never saw, and log2 |R| (13.3 bits for four digits) when it is the model's first choice.

- `Canary`: a planted sentence, its prefix and its secret;
- `make_canaries`: canaries with fresh random secrets, one per prefix;
- `candidate_logprobs`: the exact log-probability of every candidate secret after a prefix (one
  batched pass over all candidates, the prefix's key/value cache shared);
- `exposure` / `canary_exposure`: the rank of the true secret, in bits;
- `greedy_extraction`: what greedy decoding writes after the prefix (is the secret extracted?).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "Canary",
    "canary_exposure",
    "candidate_logprobs",
    "exposure",
    "greedy_extraction",
    "make_canaries",
]

DIGITS = "0123456789"


@dataclass(frozen=True)
class Canary:
    """A planted sentence: `prefix` + `secret` + `suffix` (e.g. "Anna's PIN code is " "4815" ".")."""

    prefix: str
    secret: str
    suffix: str = "."

    @property
    def text(self) -> str:
        return self.prefix + self.secret + self.suffix


def make_canaries(
    prefixes: Sequence[str], length: int = 4, seed: int = 0, alphabet: str = DIGITS
) -> list[Canary]:
    """One canary per prefix (e.g. ``"Anna's PIN code is "``), each with a fresh random secret.

    The secrets are `length` symbols of `alphabet` drawn with a seeded generator: the same
    seed gives the same secrets on every machine.
    """
    if length < 1:
        raise ValueError(f"a secret needs at least one symbol, not length={length}")
    rng = random.Random(seed)
    return [Canary(p, "".join(rng.choice(alphabet) for _ in range(length))) for p in prefixes]


def _symbol_ids(tokenizer, alphabet: Sequence[str]) -> list[int]:
    """One token id per symbol; refused if a symbol is several tokens, unknown, or shared."""
    ids = [tokenizer(symbol, add_special_tokens=False)["input_ids"] for symbol in alphabet]
    unknown = tokenizer.unk_token_id
    if any(len(p) != 1 or p[0] == unknown for p in ids) or len({p[0] for p in ids}) < len(ids):
        raise ValueError(
            f"the candidate space needs one token per symbol of {''.join(alphabet)!r}, and this "
            "tokenizer splits, shares or does not know some of them (SmolLM2's and Llama 3's "
            "tokenizers give each digit its own token)"
        )
    return [p[0] for p in ids]


def _prefix_ids(tokenizer, canary: Canary, alphabet: Sequence[str]) -> list[int]:
    """The prefix's tokens, checked to be exactly how the whole canary is tokenised."""
    if any(s not in alphabet for s in canary.secret):
        raise ValueError(f"the secret {canary.secret!r} uses symbols outside {alphabet!r}")
    prefix = tokenizer(canary.prefix)["input_ids"]
    full = tokenizer(canary.text)["input_ids"]
    symbol_ids = _symbol_ids(tokenizer, alphabet)
    secret = [symbol_ids[alphabet.index(s)] for s in canary.secret]
    n = len(prefix)
    if full[:n] != prefix or full[n : n + len(secret)] != secret:
        raise ValueError(
            f"the canary {canary.text!r} does not tokenise as its prefix followed by one token "
            "per symbol of the secret; end the prefix with a space (SmolLM2) or choose an "
            "alphabet whose symbols are single tokens"
        )
    return prefix


@torch.no_grad()
def candidate_logprobs(
    model,
    prefix_ids: Sequence[int],
    symbol_ids: Sequence[int],
    length: int,
    batch_size: int = 1000,
) -> np.ndarray:
    """Log-probability of every candidate secret after `prefix_ids`, in lexicographic order.

    The candidates are all ``len(symbol_ids) ** length`` sequences of `length` symbols; entry
    ``i`` is the candidate whose symbols are the base-``len(symbol_ids)`` digits of ``i`` (with
    the decimal digits in order, entry 4815 is the secret "4815"). Each log-probability is taken
    over the whole vocabulary: the model could have written anything. The candidates form a tree,
    evaluated level by level: the prefix runs once, then each level feeds one symbol to every
    node of the level above, reusing its key/value cache (for four digits: 1 + 10 + 100 + 1,000
    one-token steps instead of 10,000 sequences). The last level runs `batch_size` rows at a time.
    """
    if length < 1:
        raise ValueError(f"length must be at least 1, not {length}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    symbols = torch.tensor(list(symbol_ids), device=device)
    k, n_prefix = len(symbols), len(prefix_ids)
    out = model(input_ids=torch.tensor([list(prefix_ids)], device=device), use_cache=True)
    cache = out.cache
    totals = torch.log_softmax(out.logits[0, -1].float(), dim=-1)[symbols]  # (k,)
    for level in range(1, length):  # totals holds the k**level sequences of `level` symbols
        parents = k ** (level - 1)  # rows of the cache: the sequences of level - 1 symbols
        last_level = level == length - 1
        chunk = max(1, batch_size // k) if last_level else parents
        pieces = []
        for start in range(0, parents, chunk):
            rows = torch.arange(start, min(start + chunk, parents), device=device)
            part = cache
            if chunk < parents:  # a slice of the cache, so memory stays bounded
                part = copy.deepcopy(cache)
                part.batch_select_indices(rows)
            part.batch_repeat_interleave(k)  # each parent once per next symbol
            positions = torch.full((len(rows) * k, 1), n_prefix + level - 1, device=device)
            logits = model(
                input_ids=symbols.repeat(len(rows))[:, None],
                position_ids=positions,
                cache=part,
                use_cache=True,
            ).logits[:, -1]
            pieces.append(torch.log_softmax(logits.float(), dim=-1)[:, symbols])
        totals = (totals[:, None] + torch.cat(pieces)).reshape(-1)
    model.train(was_training)
    return totals.cpu().numpy().astype(np.float64)


def exposure(logprobs: np.ndarray, index: int) -> float:
    """``log2 |R| - log2 rank`` of candidate `index`; rank 1 = the most likely candidate.

    The rank counts the candidates strictly more likely than the true one, plus one (ties go
    in the secret's favour, as a careful attacker would try it first among equals).
    """
    logprobs = np.asarray(logprobs)
    if not 0 <= index < len(logprobs):
        raise ValueError(f"index {index} is outside the candidate space of {len(logprobs)}")
    rank = 1 + int((logprobs > logprobs[index]).sum())
    return math.log2(len(logprobs)) - math.log2(rank)


def canary_exposure(
    model, tokenizer, canary: Canary, alphabet: str = DIGITS, batch_size: int = 250
) -> dict[str, float]:
    """Exposure of `canary` in `model`: bits, rank, candidate-space size and the secret's log-prob."""
    prefix = _prefix_ids(tokenizer, canary, alphabet)
    symbol_ids = _symbol_ids(tokenizer, alphabet)
    logp = candidate_logprobs(model, prefix, symbol_ids, len(canary.secret), batch_size)
    index = _index(canary.secret, alphabet)
    rank = 1 + int((logp > logp[index]).sum())
    return {
        "exposure": exposure(logp, index),
        "rank": rank,
        "candidates": len(logp),
        "logprob": float(logp[index]),
    }


def _index(secret: str, alphabet: str) -> int:
    value = 0
    for symbol in secret:
        value = value * len(alphabet) + alphabet.index(symbol)
    return value


@torch.no_grad()
def greedy_extraction(model, tokenizer, canary: Canary, alphabet: str = DIGITS) -> str:
    """The `len(secret)` tokens greedy decoding writes after the canary's prefix, as text."""
    prefix = _prefix_ids(tokenizer, canary, alphabet)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids = torch.tensor([prefix], device=device)
    output = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=len(canary.secret),
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.train(was_training)
    return tokenizer.decode(output[0, len(prefix) :], skip_special_tokens=True)
