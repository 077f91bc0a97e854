"""Which parameters train: counting them, freezing layers, LoRA adapters.

Introduced in chapters 2 (counting) and 3 (freezing, LoRA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

__all__ = ["apply_lora", "count_parameters", "freeze_layers", "task_type", "transformer_layers"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once), optionally only the trainable ones.

    Introduced in chapter 2. Uses what the libraries provide: a peft model's
    `get_nb_trainable_parameters()`, a transformers model's `num_parameters(only_trainable=)`;
    any other module sums `numel()` over `parameters()` (which yields a tied tensor once).
    """
    if hasattr(model, "get_nb_trainable_parameters"):  # a peft model
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable if trainable_only else total)
    if hasattr(model, "num_parameters"):  # a transformers PreTrainedModel
        return int(model.num_parameters(only_trainable=trainable_only))
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def transformer_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The stack of transformer blocks and its name (e.g. `bert.encoder.layer`).

    Introduced in chapter 2. Found by structure, not by name, so it works for BERT, Llama,
    DistilBERT, Qwen...: the largest `ModuleList` of identical blocks (of `num_hidden_layers`).
    """
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and len({type(m) for m in mod}) == 1
    ]
    if n_layers is not None:
        candidates = [c for c in candidates if len(c[1]) == n_layers] or candidates
    if not candidates:
        raise ValueError(f"could not find the transformer layers of {type(model).__name__}")
    return max(candidates, key=lambda c: sum(p.numel() for p in c[1].parameters()))


def freeze_layers(model: nn.Module, mode: str = "head", k: int = 2) -> int:
    """Choose what trains: `"none"` (all), `"head"` (head only), `"top-k"` (head + top k layers).

    Introduced in chapter 3. The "head" is every parameter registered after the last transformer
    block: for `BertForSequenceClassification` the pooler and the classifier, for a causal LM the
    final norm (and the LM head unless it is tied to the embeddings). Returns the number of
    trainable parameters.
    """
    if mode not in ("none", "head", "top-k"):
        raise ValueError(f"mode must be none, head or top-k, not {mode!r}")
    for p in model.parameters():
        p.requires_grad_(mode == "none")
    if mode == "none":
        return count_parameters(model, trainable_only=True)

    layers_name, layers = transformer_layers(model)
    names = [name for name, _ in model.named_parameters()]
    last_layer = max(i for i, n in enumerate(names) if n.startswith(layers_name + "."))
    trainable = set(names[last_layer + 1 :])  # the head: everything after the last block
    if mode == "top-k":
        first = len(layers) - max(0, min(k, len(layers)))
        prefixes = tuple(f"{layers_name}.{i}." for i in range(first, len(layers)))
        trainable |= {n for n in names if n.startswith(prefixes)}
    for name, p in model.named_parameters():
        if name in trainable:
            p.requires_grad_(True)
    return count_parameters(model, trainable_only=True)


_TASKS = (
    ("ForSequenceClassification", "SEQ_CLS"),
    ("ForTokenClassification", "TOKEN_CLS"),
    ("ForQuestionAnswering", "QUESTION_ANS"),
    ("ForCausalLM", "CAUSAL_LM"),
)


def task_type(model: nn.Module) -> str | None:
    """peft's name for the model's task (`"SEQ_CLS"`, `"CAUSAL_LM"`, ...), or `None`.

    Used by `train` and `apply_lora`. Reads through peft and DDP wrappers (`.module`, `.base_model.model`)
    so it gives the same answer before and after `accelerator.prepare`.
    """
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)  # DDP, compile
        if inner is None and hasattr(model, "get_base_model"):
            inner = model.get_base_model()
        if inner is None or inner is model:
            break
        model = inner
    name = type(model).__name__
    return next((task for suffix, task in _TASKS if name.endswith(suffix)), None)


def apply_lora(
    model: nn.Module,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.1,
    target_modules: Sequence[str] | str | None = None,
    **kwargs: Any,
):
    """Wrap `model` with LoRA adapters via `peft.get_peft_model`; returns the `PeftModel`.

    Introduced in chapter 3. Only the adapters (and, for classification, the new head) train.
    `target_modules=None` lets peft pick the attention projections it knows for the
    architecture (`query`/`value` for BERT, `q_proj`/`v_proj` for Llama).
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules)
        if isinstance(target_modules, (list, tuple))
        else target_modules,
        task_type=task_type(model),
        **kwargs,
    )
    return get_peft_model(model, config)


def prepare_trainable(model: nn.Module, lora: dict | None, freeze: str, freeze_k: int) -> nn.Module:
    """Apply a run's LoRA or freezing choice; returns the model to train (maybe a `PeftModel`)."""
    if lora is not None:
        return model if hasattr(model, "get_base_model") else apply_lora(model, **lora)
    if freeze != "none":
        freeze_layers(model, freeze, freeze_k)
    return model
