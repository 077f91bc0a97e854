"""Pretraining a tiny GPT, perplexity, and training cost estimates (introduced in chapter 2).

- `tiny_gpt`: a small decoder built from transformers' own Llama classes (no hand-rolled
  transformer), sized to train from scratch on a CPU in minutes.
- `pack_corpus`: tokenise texts and pack them into fixed-length blocks for causal language
  modelling (`datasets.map`), ready for `course_utils.training.train`.
- `perplexity`: exp(mean next-token cross-entropy) of a causal LM on held-out texts, packed
  into blocks; `text_perplexity`: the same with every text scored on its own (no packing, no
  separator), the format-neutral comparison.
- `decoder_features`: what a frozen decoder offers a probe per text (mean of the last layer over
  the real tokens, and the last real token's vector).
- `decoder_classifier`: a causal LM's body under a new classification head that reads either the
  last real token (`LlamaForSequenceClassification`'s way) or the mean over the tokens.
- `gguf_round_trip`: a model's weights quantised to GGUF block formats and back (the rounding
  SmolLM2's Q4_1 file went through), to measure what that rounding costs.
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

    from .training.batching import tokenized_fingerprint

    fingerprint = tokenized_fingerprint(texts, tokenizer, "pack_corpus", text_column, add_eos)
    tokenized = texts.map(
        tokenize, batched=True, remove_columns=texts.column_names, num_proc=num_proc,
        new_fingerprint=fingerprint,
    )  # fmt: skip
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


def _right_padded(seqs: Sequence[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists as one right-padded batch (pad id 0, masked out) and its attention mask."""
    width = max(len(seq) for seq in seqs)
    batch = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for row, seq in enumerate(seqs):
        batch[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return batch.to(device), mask.to(device)


@torch.no_grad()
def text_perplexity(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 16,
    max_length: int | None = None,
    add_eos: bool = False,
    device: str | torch.device | None = None,
) -> float:
    """Perplexity with every text scored on its own: no packing, no separator (chapter 2).

    Each text is a sequence of its own (padded in batches, padding ignored); its first token is
    context only and every later token is predicted, so every model that shares the tokenizer
    is scored on the same tokens and no model benefits from having learned a separator between
    texts. `add_eos=True` appends the EOS token and scores it too. Lower is better.
    """
    device = torch.device(device) if device else next(model.parameters()).device
    eos = [tokenizer.eos_token_id] if add_eos else []
    ids = [seq[:max_length] if max_length else seq
           for seq in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]  # fmt: skip
    seqs = [seq + eos for seq in ids if len(seq + eos) >= 2]
    if not seqs:
        raise ValueError("text_perplexity needs texts of at least two tokens")
    was_training = model.training
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # little padding
    total_loss, total_tokens = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch, mask = _right_padded([seqs[i] for i in order[start : start + batch_size]], device)
        logits = model(input_ids=batch, attention_mask=mask).logits.float()
        targets = batch[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        total_loss += nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        ).item()
        total_tokens += int(mask[:, 1:].sum())
    model.train(was_training)
    return math.exp(total_loss / total_tokens)


@torch.no_grad()
def decoder_features(
    model,
    tokenizer,
    texts: Sequence[str],
    max_length: int | None = 128,
    batch_size: int = 32,
    append_eos: bool = False,
) -> dict[str, Any]:
    """What a frozen decoder offers a probe, per text: its last layer pooled two ways (chapter 2).

    `model` is a causal LM (its body runs, not the output layer) or a bare decoder (`AutoModel`).
    Returns float32 NumPy arrays (texts, hidden): `"mean"` — the mean of the last layer's vectors
    over the real tokens; `"last"` — the vector of the last real token (the only position of a
    causal model that has seen the whole text; what `LlamaForSequenceClassification` reads).
    `append_eos=True` ends every text with the EOS token first (the separator a model pretrained
    on packed texts saw after each one).
    """
    import numpy as np

    body = getattr(model, "base_model", model)
    device = next(body.parameters()).device
    was_training = body.training
    body.eval()
    eos = [tokenizer.eos_token_id] if append_eos else []
    ids = [(seq[: max_length - len(eos)] if max_length else seq) + eos
           for seq in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]  # fmt: skip
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    mean = np.zeros((len(ids), body.config.hidden_size), dtype=np.float32)
    last = np.zeros_like(mean)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch, mask = _right_padded([ids[i] for i in rows], device)
        hidden = body(input_ids=batch, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = ((hidden * m).sum(1) / m.sum(1).clamp(min=1)).cpu().numpy()
        final = hidden[torch.arange(len(rows), device=device), mask.sum(1) - 1].cpu().numpy()
        mean[rows], last[rows] = pooled, final
    body.train(was_training)
    return {"mean": mean, "last": last}


class MeanPooledDecoderForSequenceClassification(nn.Module):
    """A decoder body (`LlamaModel`, ...) with a linear head on the mean of its last layer (chapter 2).

    The mean runs over the real (unpadded) tokens; `score` maps it to the labels, as
    `LlamaForSequenceClassification`'s head maps the last token. Returns a
    `SequenceClassifierOutput` (cross-entropy loss when `labels` are given), so `train` and
    `predict` treat it like any transformers classifier.
    """

    def __init__(self, body: nn.Module, num_labels: int = 2) -> None:
        super().__init__()
        self.model = body
        self.config = body.config
        self.config.num_labels = num_labels
        self.score = nn.Linear(self.config.hidden_size, num_labels, bias=False)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ):
        """Logits from the mean-pooled last layer; the loss too when `labels` are given."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        logits = self.score((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def decoder_classifier(
    lm: nn.Module,
    pooling: str = "last",
    num_labels: int = 2,
    pad_token_id: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """A copy of causal LM `lm`'s body under a new classification head (chapter 2).

    `pooling="last"` builds transformers' own `AutoModelForSequenceClassification` (for Llama:
    the head reads the last token that is not `pad_token_id`); `pooling="mean"` builds
    `MeanPooledDecoderForSequenceClassification`. The body's weights are copied from `lm` (which
    is left untouched); the head is initialised from `seed`.
    """
    import copy

    from transformers import AutoModel, AutoModelForSequenceClassification

    if pooling not in ("last", "mean"):
        raise ValueError(f"pooling must be 'last' or 'mean', not {pooling!r}")
    config = copy.deepcopy(lm.config)
    config.num_labels = num_labels
    if pad_token_id is not None:
        config.pad_token_id = pad_token_id
    torch.manual_seed(seed)
    if pooling == "mean":
        model = MeanPooledDecoderForSequenceClassification(
            AutoModel.from_config(config), num_labels
        )
    else:
        model = AutoModelForSequenceClassification.from_config(config)
    model.model.load_state_dict(getattr(lm, "base_model", lm).state_dict())
    device = next(lm.parameters()).device
    return model.to(device)


def gguf_round_trip(
    model: nn.Module, matrix_format: str = "Q4_1", embedding_format: str | None = "Q8_0"
) -> dict[str, int]:
    """Quantise a model's weights to GGUF block formats and back, in place (chapter 2).

    Every 2-D weight of the transformer blocks is rounded to `matrix_format` and the token
    embedding (tied to the output layer in SmolLM2 and the tiny GPT) to `embedding_format`
    (`None`: left alone), with the `gguf` package's own NumPy code; 1-D tensors (norms, biases)
    stay float, as in GGUF files. SmolLM2's `Q4_1` file holds its block matrices in Q4_1 and its
    embedding in Q8_0 (chapter 9 reads that off the weights): the defaults apply the same
    rounding to another model. Returns the number of parameters rounded per format.
    """
    from gguf import GGMLQuantizationType, quants

    embedding = (
        model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else None
    )
    counts: dict[str, int] = {}
    seen: set[int] = set()
    with torch.no_grad():
        for _, param in model.named_parameters():
            if param.dim() != 2 or id(param) in seen:
                continue
            seen.add(id(param))
            fmt = embedding_format if param is embedding else matrix_format
            if fmt is None:
                continue
            qtype = GGMLQuantizationType[fmt]
            w = param.detach().float().cpu().numpy()
            back = quants.dequantize(quants.quantize(w, qtype), qtype).reshape(w.shape)
            param.copy_(torch.from_numpy(back).to(param.dtype))
            counts[fmt] = counts.get(fmt, 0) + param.numel()
    return counts


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
