"""Pretraining a tiny GPT, perplexity, and training cost estimates (introduced in chapter 2).

- `tiny_gpt`: a small decoder built from transformers' own Llama classes (no hand-rolled
  transformer), sized to train from scratch on a CPU in minutes.
- `pack_corpus`: tokenise texts and pack them into fixed-length blocks for causal language
  modelling (`datasets.map`), ready for `course_utils.training.train`.
- `perplexity`: exp(mean next-token cross-entropy) of a causal LM on held-out texts.
- `training_flops` / `training_memory_bytes`: back-of-the-envelope compute and memory of a
  training step, which chapter 2 checks against a measured step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

_EMBEDDING_TYPES = (nn.Embedding,)


def tiny_gpt_config(
    vocab_size: int,
    hidden_size: int = 192,
    num_layers: int = 3,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_length: int = 256,
    tokenizer=None,
    **kwargs: Any,
):
    """A `LlamaConfig` for a tiny decoder, used by `tiny_gpt`: a few layers, a small hidden size.

    The vocabulary is the tokenizer's (pass `vocab_size=len(tokenizer)`), so its perplexity is
    measured on the same tokens as the pretrained model that owns that tokenizer. Input and output
    embeddings are tied, as in SmolLM2.
    """
    from transformers import LlamaConfig

    special = {}
    if tokenizer is not None:
        special = {
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }  # no pad_token_id: Llama would freeze that embedding row, and SmolLM2 pads with EOS
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        intermediate_size=intermediate_size or 8 * hidden_size // 3 // 64 * 64 or 4 * hidden_size,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        **special,
        **kwargs,
    )


def tiny_gpt(tokenizer, seed: int = 0, **config_kwargs: Any):
    """A freshly initialised tiny GPT (`LlamaForCausalLM`) for `tokenizer`'s vocabulary (chapter 2).

    Built with `AutoModelForCausalLM.from_config`; `config_kwargs` go to `tiny_gpt_config`.
    """
    from transformers import AutoModelForCausalLM

    config = tiny_gpt_config(len(tokenizer), tokenizer=tokenizer, **config_kwargs)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def pack_corpus(
    texts,
    tokenizer,
    block_size: int = 128,
    text_column: str = "text",
    add_eos: bool = True,
    num_proc: int | None = None,
):
    """Tokenise texts and pack them into blocks of exactly `block_size` tokens (chapter 2).

    `texts` is a list of strings or a `datasets.Dataset` with a `text_column`. Each text ends
    with the EOS token (so the model learns where a review stops), all texts are concatenated,
    and the stream is cut into blocks; the incomplete tail is dropped. Returns a `Dataset` with
    `input_ids`, `attention_mask` and `labels` (= `input_ids`; the model shifts them), which
    `course_utils.training.train` trains on and evaluates as a causal language model.
    """
    from datasets import Dataset

    if not isinstance(texts, Dataset):
        texts = Dataset.from_dict({text_column: list(texts)})
    eos = [tokenizer.eos_token_id] if add_eos and tokenizer.eos_token_id is not None else []

    def tokenize(batch):
        ids = tokenizer(batch[text_column], add_special_tokens=False)["input_ids"]
        return {"input_ids": [seq + eos for seq in ids]}

    def group(batch):
        stream = [t for seq in batch["input_ids"] for t in seq]
        n = len(stream) // block_size * block_size
        blocks = [stream[i : i + block_size] for i in range(0, n, block_size)]
        return {
            "input_ids": blocks,
            "attention_mask": [[1] * block_size for _ in blocks],
            "labels": [list(b) for b in blocks],
        }

    tokenized = texts.map(
        tokenize, batched=True, remove_columns=texts.column_names, num_proc=num_proc
    )
    # one map batch = the whole corpus, so at most one incomplete block is dropped
    return tokenized.map(group, batched=True, batch_size=len(tokenized) or 1)


@torch.no_grad()
def perplexity(
    model,
    tokenizer,
    texts: Sequence[str],
    block_size: int = 128,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> float:
    """Perplexity, exp(mean cross-entropy per predicted token), of a causal LM on `texts` (chapter 2).

    The texts are packed with `pack_corpus` (same blocks for every model that shares the
    tokenizer), so two models with the same tokenizer are compared on exactly the same tokens.
    Lower is better; a model that guesses uniformly over a vocabulary of V tokens scores V.
    """
    blocks = pack_corpus(list(texts), tokenizer, block_size=block_size)
    if len(blocks) == 0:
        raise ValueError(f"the texts hold fewer than block_size={block_size} tokens")
    device = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, total_tokens = 0.0, 0
    ids = torch.tensor(blocks["input_ids"])
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size].to(device)
        logits = model(input_ids=batch).logits.float()
        loss = nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
        )
        total_loss += loss.item()
        total_tokens += batch[:, 1:].numel()
    model.train(was_training)
    return math.exp(total_loss / total_tokens)


def embedding_parameters(model: nn.Module) -> int:
    """Parameters of the embedding tables (token, position, token-type): look-ups, not matmuls."""
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        if isinstance(module, _EMBEDDING_TYPES) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    return total


def non_embedding_parameters(model: nn.Module) -> int:
    """Parameters that take part in matrix products: all parameters minus the embedding tables."""
    from .training import count_parameters

    return count_parameters(model) - embedding_parameters(model)


def _lm_head_matmul_parameters(model: nn.Module) -> int:
    """The output projection to the vocabulary, counted even when tied to the input embedding."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or not hasattr(head, "weight"):
        return 0
    tied = any(head.weight is m.weight for m in model.modules() if isinstance(m, _EMBEDDING_TYPES))
    return head.weight.numel() if tied else 0  # an untied head is already non-embedding


def training_flops(model: nn.Module, tokens: int, include_lm_head: bool = True) -> float:
    """Estimated FLOPs to train on `tokens` tokens: 6 × matmul parameters × tokens (chapter 2).

    Forward ≈ 2 FLOPs per parameter per token (one multiply, one add), backward ≈ twice that.
    Embedding look-ups cost no matmul, so embedding tables are left out; a causal LM's output
    projection *is* a matmul over the whole vocabulary, so with `include_lm_head` it is counted
    even when its weight is tied to the input embedding (for a tiny GPT with a 49k vocabulary it
    is most of the compute). Attention's sequence-length term (≈ 12·layers·hidden·seq per
    token) is left out, as in Kaplan et al. (2020); it is small for short sequences.
    """
    n = non_embedding_parameters(model)
    if include_lm_head:
        n += _lm_head_matmul_parameters(model)
    return 6.0 * n * tokens


def training_memory_bytes(
    model: nn.Module,
    batch_size: int,
    seq_len: int,
    bytes_per_value: int = 4,
    optimizer_states: int = 2,
) -> dict[str, float]:
    """Estimated memory of one training step, by part, in bytes (chapter 2).

    - `parameters`, `gradients`: one value per trainable parameter each (frozen ones get no
      gradient and no optimizer state);
    - `optimizer`: `optimizer_states` values per trainable parameter (AdamW keeps two moments);
    - `activations`: what the forward pass keeps for the backward pass, from Korthikanti et al.
      (2022), per layer s·b·h·(34 + 5·a·s/h) bytes at 16 bits (scaled to `bytes_per_value`),
      plus, for a causal LM, one copy of the logits over the vocabulary (their log-softmax,
      kept by the cross-entropy).

    Returns a dict with those four parts and `total`.
    """
    from .training import count_parameters

    config = model.config
    n_all = count_parameters(model)
    n_train = count_parameters(model, trainable_only=True)
    h = config.hidden_size
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    s, b = seq_len, batch_size
    per_layer_16bit = s * b * h * (34 + 5 * heads * s / h)
    activations = layers * per_layer_16bit * bytes_per_value / 2
    if _lm_head_matmul_parameters(model) or type(model).__name__.endswith("ForCausalLM"):
        activations += b * s * config.vocab_size * bytes_per_value
    parts = {
        "parameters": float(n_all * bytes_per_value),
        "gradients": float(n_train * bytes_per_value),
        "optimizer": float(optimizer_states * n_train * bytes_per_value),
        "activations": float(activations),
    }
    parts["total"] = sum(parts.values())
    return parts


class SavedTensorMeter:
    """Measures the bytes the autograd graph saves for the backward pass (chapter 2).

    Use as a context manager around a forward pass; `.bytes` is then the total size of the
    tensors kept for backward (each storage counted once; the weights of `model` are skipped):
    the activations part of training memory, measured rather than estimated.
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        self.bytes = 0
        # the weights are saved for backward too, but they are not activations: skip them
        self._seen: set[int] = (
            {p.untyped_storage().data_ptr() for p in model.parameters()} if model else set()
        )

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key not in self._seen:
                self._seen.add(key)
                self.bytes += storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            pass
        return tensor

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
