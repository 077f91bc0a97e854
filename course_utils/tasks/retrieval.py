"""Sentence embeddings, semantic search and contrastive fine-tuning (introduced in chapter 7).

- **Embedding** (`embed`, `encode`): a sentence's vector is the mean of its token vectors over
  the attention mask (padding excluded), L2-normalised. This is exactly how sentence-transformers
  trained and runs all-MiniLM-L6-v2 (its modules: Transformer -> Pooling(mean) -> Normalize;
  texts longer than 256 word pieces are truncated), so the course's bare MiniLM encoder gives
  the published embeddings.
- **Search** (`cosine_similarity`, `top_k`) and its metrics (`recall_at_k`, `mean_reciprocal_rank`,
  `retrieval_metrics`): each query has one or more relevant documents; recall@k is the share of a
  query's relevant documents found in its top k (for one relevant document: whether it is there),
  MRR the mean of 1 / rank of the first relevant document. Ties in score rank the lower document
  index first.
- **Contrastive fine-tuning** (`ContrastiveModel`, `tokenize_pairs`, `PairCollator`): pairs
  (anchor, positive), e.g. (headline, article). In a batch of n pairs, anchor i's positive is
  document i and the other n - 1 positives are its negatives ("in-batch negatives"). The loss is
  sentence-transformers' MultipleNegativesRankingLoss: cross-entropy over the n x n matrix of
  cosine similarities times `scale` (20), the target of row i being column i. The model is an
  `nn.Module` whose output has `.loss` and `.logits`, so it trains with `course_utils.training`'s
  `train` (pass ``data_collator=PairCollator(tokenizer)``) or `make_trainer` unchanged.

  The number of negatives is the micro-batch size minus one: gradient accumulation
  (`grad_accum_steps`) averages the losses of several micro-batches but does **not** enlarge the
  pool of in-batch negatives; only a larger `batch_size` does (sentence-transformers'
  CachedMultipleNegativesRankingLoss gets large pools in small memory with GradCache). For the
  same reason the evaluation loss depends on `eval_batch_size` (the pool it ranks against):
  compare runs with the same one, or better with `retrieval_metrics` over the whole corpus. Two
  anchors with the same positive in one batch make a false negative: deduplicate the pairs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

__all__ = [
    "ContrastiveModel",
    "ContrastiveOutput",
    "PairCollator",
    "cosine_similarity",
    "embed",
    "encode",
    "mean_pool",
    "mean_reciprocal_rank",
    "ranks_of_relevant",
    "recall_at_k",
    "retrieval_metrics",
    "tokenize_pairs",
    "top_k",
]

MINILM_MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
SCALE = 20.0  # MultipleNegativesRankingLoss's default scale (1 / temperature 0.05)


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where ``attention_mask == 1`` (sentence-transformers' formula)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def embed(
    encoder: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """Sentence vectors of a tokenised batch: the encoder, `mean_pool`, then L2 normalisation."""
    kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
    vectors = mean_pool(hidden, attention_mask)
    return F.normalize(vectors, p=2, dim=-1) if normalize else vectors


@torch.no_grad()
def encode(
    encoder: nn.Module,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = MINILM_MAX_LENGTH,
    normalize: bool = True,
) -> np.ndarray:
    """Embeddings of `texts` as a float32 array ``(len(texts), hidden)``, in the texts' order.

    Texts are sorted by length and batched (less padding), on the encoder's device. A
    `ContrastiveModel` may be passed as `encoder` (its inner encoder is used).
    """
    if isinstance(encoder, ContrastiveModel):
        encoder = encoder.encoder
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    texts = list(texts)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for begin in range(0, len(texts), batch_size):
        rows = order[begin : begin + batch_size]
        batch = tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        out[rows] = embed(encoder, **batch, normalize=normalize).float().cpu().numpy()
    encoder.train(was_training)
    return out


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The ``(len(a), len(b))`` matrix of cosine similarities between the rows of a and b."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return a @ b.T


# --------------------------------------------------------------------------------------------
# Search and its metrics
# --------------------------------------------------------------------------------------------


def _ranking(scores: np.ndarray) -> np.ndarray:
    """Document indices of each row, best first (ties: lower index first)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best documents of each query: indices ``(n_queries, k)`` and their scores."""
    scores = np.atleast_2d(scores)
    best = _ranking(scores)[:, :k]
    return best, np.take_along_axis(scores, best, axis=1)


def _relevant_sets(relevant, n_queries: int) -> list[set[int]]:
    sets = [{int(r)} if np.isscalar(r) else {int(x) for x in r} for r in relevant]
    if len(sets) != n_queries:
        raise ValueError(f"{len(sets)} relevance entries for {n_queries} queries")
    if any(not s for s in sets):
        raise ValueError("every query needs at least one relevant document")
    return sets


def ranks_of_relevant(scores: np.ndarray, relevant) -> list[list[int]]:
    """For each query, the 1-based ranks of its relevant documents, sorted.

    `relevant[i]` is the index of query i's relevant document, or a collection of indices.
    """
    scores = np.atleast_2d(scores)
    ranking = _ranking(scores)
    sets = _relevant_sets(relevant, len(scores))
    return [
        [rank + 1 for rank, doc in enumerate(row) if doc in wanted]
        for row, wanted in zip(ranking, sets, strict=True)
    ]


def recall_at_k(scores: np.ndarray, relevant, k: int) -> float:
    """Mean over queries of the share of relevant documents ranked in the top `k`."""
    sets = _relevant_sets(relevant, len(np.atleast_2d(scores)))
    ranks = ranks_of_relevant(scores, relevant)
    return float(
        np.mean([sum(r <= k for r in rs) / len(s) for rs, s in zip(ranks, sets, strict=True)])
    )


def mean_reciprocal_rank(scores: np.ndarray, relevant) -> float:
    """Mean over queries of 1 / (rank of the first relevant document)."""
    return float(np.mean([1.0 / rs[0] for rs in ranks_of_relevant(scores, relevant)]))


def retrieval_metrics(scores: np.ndarray, relevant, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """``{"recall@k" for k in ks, "mrr"}`` of a score matrix ``(n_queries, n_documents)``."""
    out = {f"recall@{k}": recall_at_k(scores, relevant, k) for k in ks}
    out["mrr"] = mean_reciprocal_rank(scores, relevant)
    return out


# --------------------------------------------------------------------------------------------
# Contrastive fine-tuning with in-batch negatives
# --------------------------------------------------------------------------------------------


@dataclass
class ContrastiveOutput(ModelOutput):
    """`loss`: MultipleNegativesRankingLoss; `logits`: the scaled similarity matrix ``(n, n)``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class ContrastiveModel(nn.Module):
    """A sentence encoder trained so that each anchor is closest to its own positive.

    Wraps a bare encoder (``AutoModel``, e.g. from `course_utils.models.load_encoder`); see the
    module docstring for the loss and the in-batch negatives. `save_pretrained` writes the inner
    encoder (and tokenizer), which `load_encoder(folder)` loads back for `encode`.
    """

    def __init__(self, encoder: nn.Module, scale: float = SCALE):
        super().__init__()
        self.encoder = encoder
        self.scale = scale
        self.config = encoder.config  # lets peft and Trainer read the architecture

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pos_input_ids: torch.Tensor,
        pos_attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        pos_token_type_ids: torch.Tensor | None = None,
        return_loss: bool = True,
    ) -> ContrastiveOutput:
        """Loss and scaled cosine similarities of anchors (rows) against positives (columns)."""
        anchors = embed(self.encoder, input_ids, attention_mask, token_type_ids)
        positives = embed(self.encoder, pos_input_ids, pos_attention_mask, pos_token_type_ids)
        logits = self.scale * anchors @ positives.T
        loss = None
        if return_loss:
            target = torch.arange(len(logits), device=logits.device)
            loss = F.cross_entropy(logits.float(), target)
        return ContrastiveOutput(loss=loss, logits=logits)

    def save_pretrained(self, folder: str | os.PathLike, tokenizer=None) -> None:
        """Save the inner encoder (safetensors) and, if given, the tokenizer into `folder`."""
        encoder = self.encoder
        if hasattr(encoder, "merge_and_unload"):  # LoRA adapters folded into the weights
            encoder = encoder.merge_and_unload()
        encoder.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)


PAIR_PREFIX = "pos_"
_TOKENIZER_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def tokenize_pairs(
    dataset,
    tokenizer,
    anchor_column: str = "anchor",
    positive_column: str = "positive",
    max_length: int = 128,
):
    """Tokenise (anchor, positive) pairs: the tokenizer's columns for the anchor, the same with
    a ``pos_`` prefix for the positive. The text columns stay (the model ignores them)."""

    def encode(batch):
        anchor = tokenizer(batch[anchor_column], truncation=True, max_length=max_length)
        positive = tokenizer(batch[positive_column], truncation=True, max_length=max_length)
        return {**anchor, **{PAIR_PREFIX + k: v for k, v in positive.items()}}

    from ..training.batching import tokenized_fingerprint

    settings = ("tokenize_pairs", anchor_column, positive_column, max_length)
    return dataset.map(
        encode, batched=True, new_fingerprint=tokenized_fingerprint(dataset, tokenizer, *settings)
    )


@dataclass
class PairCollator:
    """Pads the anchor side and the positive side of a batch of pairs, each to its own longest.

    Only the tokenizer's columns (and their ``pos_`` twins) are kept; any other column is dropped.
    """

    tokenizer: object
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        for prefix in ("", PAIR_PREFIX):
            names = [k for k in _TOKENIZER_COLUMNS if prefix + k in features[0]]
            side = [{k: f[prefix + k] for k in names} for f in features]
            padded = self.tokenizer.pad(
                side, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
            )
            batch.update({prefix + k: v for k, v in padded.items()})
        return batch
