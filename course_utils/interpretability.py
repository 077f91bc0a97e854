"""Which tokens did a classifier use? Integrated gradients, attention, and a deletion test.

Introduced in chapter 9.

- `integrated_gradients`: per-token attributions of a sequence classifier's predicted-class
  probability (Sundararajan et al., 2017, https://arxiv.org/abs/1703.01365), computed with
  captum's `LayerIntegratedGradients` on the input-embedding layer, with the convergence delta
  (how far the attributions are from summing to ``p(x) - p(baseline)``);
- `cls_attention`: the last layer's attention from the first token ([CLS]) to every token,
  averaged over heads (needs a model loaded with ``attn_implementation="eager"``);
- `delete_positions`, `predict_ids`, `top_positions`, `random_positions`: the **deletion test**
  of faithfulness: remove the tokens an explanation ranks highest and see whether the
  prediction flips more often than when as many random tokens are removed (DeYoung et al., 2020,
  *ERASER*, https://arxiv.org/abs/1911.03429).

Special tokens ([CLS], [SEP], padding) are never ranked or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "Attribution",
    "cls_attention",
    "content_positions",
    "delete_positions",
    "integrated_gradients",
    "predict_ids",
    "random_positions",
    "top_positions",
]


@dataclass
class Attribution:
    """One text's attributions: its tokens, ids, one score per token, and the IG diagnostics."""

    tokens: list[str]
    input_ids: list[int]
    scores: np.ndarray  # one per token, towards `target`; special tokens included (score ~0)
    target: int  # the class explained (the predicted one unless told)
    probability: float  # p(target | text)
    baseline_probability: float  # p(target | baseline), the all-[PAD] input
    delta: float  # sum(scores) - (probability - baseline_probability)


def content_positions(input_ids: Sequence[int], tokenizer) -> list[int]:
    """Positions of the tokens that carry text (not [CLS], [SEP], [PAD] or other specials)."""
    special = set(tokenizer.all_special_ids)
    return [i for i, t in enumerate(input_ids) if t not in special]


def _baseline(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """The reference input: special tokens kept in place, every other token replaced by [PAD]."""
    special = torch.tensor(sorted(tokenizer.all_special_ids), device=input_ids.device)
    keep = torch.isin(input_ids, special)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return torch.where(keep, input_ids, torch.full_like(input_ids, pad))


def integrated_gradients(
    model,
    tokenizer,
    texts: Sequence[str],
    targets: Sequence[int] | None = None,
    n_steps: int = 32,
    max_length: int | None = 128,
) -> list[Attribution]:
    """Integrated-gradients attributions of each text's predicted (or `targets`) class.

    The path runs from the baseline (every content token replaced by [PAD]) to the text in the
    space of the input embeddings, in `n_steps` steps (captum's Gauss-Legendre rule); the score
    of a token is the sum over its embedding dimensions. A small `delta` says the steps were
    enough: the scores then sum to the change in probability from the baseline to the text.
    """
    from captum.attr import LayerIntegratedGradients

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def probability(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits.float(), dim=-1)

    lig = LayerIntegratedGradients(probability, model.get_input_embeddings())
    results = []
    for i, text in enumerate(texts):
        enc = tokenizer(text, truncation=max_length is not None, max_length=max_length,
                        return_tensors="pt").to(device)  # fmt: skip
        ids, mask = enc["input_ids"], enc["attention_mask"]
        base = _baseline(ids, tokenizer)
        with torch.no_grad():
            p = probability(ids, mask)[0]
            p_base = probability(base, mask)[0]
        target = int(p.argmax()) if targets is None else int(targets[i])
        attributions, delta = lig.attribute(
            inputs=ids,
            baselines=base,
            additional_forward_args=(mask,),
            target=target,
            n_steps=n_steps,
            internal_batch_size=n_steps,
            return_convergence_delta=True,
        )
        results.append(
            Attribution(
                tokens=tokenizer.convert_ids_to_tokens(ids[0]),
                input_ids=ids[0].tolist(),
                scores=attributions.sum(-1)[0].detach().cpu().numpy().astype(np.float64),
                target=target,
                probability=float(p[target]),
                baseline_probability=float(p_base[target]),
                delta=float(delta.reshape(-1)[0]),
            )
        )
    model.train(was_training)
    return results


@torch.no_grad()
def cls_attention(model, input_ids: Sequence[int], layer: int = -1) -> np.ndarray:
    """Attention from the first token to every token in `layer`, averaged over heads.

    The model must return attention weights: load it with ``attn_implementation="eager"``.
    """
    device = next(model.parameters()).device
    ids = torch.tensor([list(input_ids)], device=device)
    out = model(input_ids=ids, output_attentions=True)
    if not out.attentions or out.attentions[layer] is None:
        raise ValueError(
            "the model returned no attention weights; load it with "
            'attn_implementation="eager" (SDPA attention does not expose them)'
        )
    return out.attentions[layer][0].mean(0)[0].float().cpu().numpy()


def top_positions(scores: Sequence[float], candidates: Sequence[int], k: int) -> list[int]:
    """The `k` positions among `candidates` with the highest scores (ties: the earlier one)."""
    order = sorted(candidates, key=lambda i: (-float(scores[i]), i))
    return order[: max(0, k)]


def random_positions(candidates: Sequence[int], k: int, rng: np.random.Generator) -> list[int]:
    """`k` positions drawn at random, without replacement, from `candidates`."""
    k = min(max(0, k), len(candidates))
    return sorted(int(i) for i in rng.choice(list(candidates), size=k, replace=False))


def delete_positions(input_ids: Sequence[int], positions: Sequence[int]) -> list[int]:
    """The token ids with the tokens at `positions` removed (the sequence gets shorter)."""
    drop = set(positions)
    return [t for i, t in enumerate(input_ids) if i not in drop]


@torch.no_grad()
def predict_ids(model, sequences: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64):
    """Class probabilities, ``(n, num_labels)``, for token-id sequences (right-padded batches)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(list(seq))
            mask[row, : len(seq)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0))
