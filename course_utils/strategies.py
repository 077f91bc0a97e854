"""Chapter 3's fine-tuning strategies: which parameters train, how the head reads the encoder,
and what a strategy costs in memory.

Introduced in chapter 3, which compares them on one budget:

- `MeanPooledClassifier`: the pretrained encoder with a linear head on the **mean** of its last
  layer's token vectors (how sentence-transformers models such as all-MiniLM-L6-v2 were
  trained to be read), next to `AutoModelForSequenceClassification`, whose BERT head reads the
  `[CLS]` vector through the pooler; `load_strategy_model` builds either (pretrained or
  randomly initialised);
- `apply_strategy`: full fine-tuning, head only, head + top-k layers or LoRA, with the *same*
  head trained in every strategy (LoRA too: `head_modules` names it for `modules_to_save`);
- `training_memory`: weights, gradients, AdamW state and the activations autograd saves,
  counted exactly (`activation_bytes`);
- `frozen_features` and `fit_probe`: the frozen encoder's features (every layer mean-pooled,
  `[CLS]`, the pooler's output) and a logistic-regression probe trained to convergence on them,
  chapter 4's probe, to tell the pooling from the training budget.

Everything finds the encoder's parts by structure (`course_utils.training.transformer_layers`),
so a swapped encoder (DistilBERT, RoBERTa, ...) works too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from .training import apply_lora, count_parameters, freeze_layers

__all__ = [
    "MeanPooledClassifier",
    "MeanPooledForSequenceClassification",
    "activation_bytes",
    "apply_strategy",
    "fit_probe",
    "frozen_features",
    "head_modules",
    "load_strategy_model",
    "lora_targets",
    "training_memory",
]


class MeanPooledForSequenceClassification(nn.Module):
    """A pretrained encoder (`AutoModel`) with a linear head on its mean-pooled token vectors.

    Introduced in chapter 3. The features are the mean of the last layer's vectors over the real
    (unpadded) tokens, then dropout, then `classifier` (hidden size -> `num_labels`). Returns a
    `SequenceClassifierOutput` with the cross-entropy loss when `labels` are given, so `train`,
    `predict`, `freeze_layers` and `apply_lora` treat it like any transformers classifier (the
    class name ends in `ForSequenceClassification`, which is how `task_type` recognises one).
    """

    def __init__(self, encoder: nn.Module, num_labels: int = 2, dropout: float | None = None):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.config.num_labels = num_labels
        hidden = self.config.hidden_size
        if dropout is None:
            dropout = getattr(self.config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Logits from the mean-pooled last layer; the loss too when `labels` are given. Extra
        keyword arguments (peft passes `output_attentions`, `return_dict`...) are ignored."""
        if attention_mask is None:
            shape = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
            attention_mask = torch.ones(shape, dtype=torch.long, device=self.device)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if inputs_embeds is not None:
            inputs = {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


MeanPooledClassifier = MeanPooledForSequenceClassification  # the short name the chapter uses


def load_strategy_model(
    name: str,
    head: str = "cls",
    pretrained: bool = True,
    num_labels: int = 2,
    device: str = "auto",
) -> nn.Module:
    """A classifier for chapter 3: `head="cls"` (the architecture's own head: BERT's pooler on
    `[CLS]`) or `head="mean"` (`MeanPooledClassifier`); `pretrained=False` gives the same shape
    with random weights (`from_config`). Seed torch first: the new head is random.
    """
    import transformers

    from .models import get_device, load_classifier, load_encoder, resolve_model

    if head not in ("cls", "mean"):
        raise ValueError(
            f"head must be 'cls' (the model's own) or 'mean' (mean pooling), not {head!r}"
        )
    if pretrained and head == "cls":
        return load_classifier(name, num_labels=num_labels, device=device)[0]
    if pretrained:
        encoder = load_encoder(name, device=device)[0].train()
        return MeanPooledClassifier(encoder, num_labels).to(get_device(device))
    config = transformers.AutoConfig.from_pretrained(resolve_model(name), num_labels=num_labels)
    if head == "cls":
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    else:
        model = MeanPooledClassifier(transformers.AutoModel.from_config(config), num_labels)
    return model.to(get_device(device))


def head_modules(model: nn.Module) -> list[str]:
    """Names of the modules that hold the head's parameters (what `freeze_layers(model, "head")`
    leaves trainable), e.g. `["bert.pooler.dense", "classifier"]` for BERT.

    Used to give LoRA the same trainable head as the other strategies: peft trains only
    `classifier` by default, and would keep BERT's pooler frozen. Leaves the model fully trainable.
    """
    freeze_layers(model, "head")
    names = [n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad]
    freeze_layers(model, "none")
    return list(dict.fromkeys(names))  # in order, once each


# names of the attention's query and value projections in common encoders (BERT, RoBERTa:
# query/value; DistilBERT: q_lin/v_lin; DeBERTa: query_proj/value_proj; many others: q_proj/v_proj)
_QUERY_NAMES = ("query", "q_lin", "query_proj", "q_proj")
_VALUE_NAMES = ("value", "v_lin", "value_proj", "v_proj")


def lora_targets(model: nn.Module) -> list[str]:
    """The projections LoRA adapts: peft's default for the architecture where it has one (BERT:
    `["query", "value"]`), else the attention's query and value projections found by name among
    the model's linear layers (DistilBERT: `["q_lin", "v_lin"]`, which peft does not know)."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in DEFAULTS:
        return list(DEFAULTS[model_type])
    linear = {
        name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)
    }
    targets = [
        next((n for n in names if n in linear), None) for names in (_QUERY_NAMES, _VALUE_NAMES)
    ]
    if None in targets:
        raise ValueError(
            f"cannot tell which layers of this {model_type or type(model).__name__} are the "
            "attention's query and value projections; pass strategy['targets'], e.g. "
            "{'kind': 'lora', 'r': 8, 'targets': ['q_proj', 'v_proj']}"
        )
    return targets


def apply_strategy(model: nn.Module, strategy: dict[str, Any]) -> nn.Module:
    """Choose what trains; returns the model to train (a `PeftModel` for LoRA).

    `strategy` is `{"kind": "full"}`, `{"kind": "head"}`, `{"kind": "top-k", "k": 2}` or
    `{"kind": "lora", "r": 8}`. Every kind trains the same head (see `head_modules`); LoRA uses
    `alpha = 2r` (the same scale for every rank) and adapts the attention's query and value
    projections (`lora_targets`; `strategy["targets"]` overrides them).
    """
    kind = strategy.get("kind")
    if kind == "lora":
        r = int(strategy["r"])
        head = head_modules(model)
        targets = strategy.get("targets") or lora_targets(model)
        return apply_lora(model, r=r, alpha=2 * r, dropout=0.1, target_modules=targets,
                          modules_to_save=head)  # fmt: skip
    modes = {"full": "none", "head": "head", "top-k": "top-k"}
    if kind not in modes:
        raise ValueError(f"strategy kind must be full, head, top-k or lora, not {kind!r}")
    freeze_layers(model, modes[kind], int(strategy.get("k", 0)))
    return model


def activation_bytes(model: nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward in one training-mode forward pass.

    A `saved_tensors_hooks` pack hook sees every tensor saved for backward; weights (and views of
    them) are left out, and a storage saved twice counts once. The graph keeps nothing (this
    forward pass is never backpropagated); the storages are held only until the count is done.
    A pack hook that returned the tensor itself made each saved output refer to its own graph
    node, a cycle Python's garbage collector cannot see: every call leaked its graph (about
    400 MB for MiniLM on 16 x 64 tokens), and chapter 3, which calls it once per run, peaked at
    13.4 GB.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}
    alive = []  # the saved storages, held until the count is done so no address is reused

    def pack(t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
            alive.append(storage)

    def unpack(_: None) -> torch.Tensor:
        raise RuntimeError("activation_bytes' forward pass keeps no tensors: it cannot backprop")

    was_training = model.training
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        model(**batch)  # the forward pass is the point: the hook sees every saved tensor
    model.train(was_training)
    return sum(saved.values())


def training_memory(
    model: nn.Module, batch: dict[str, torch.Tensor], bytes_per_value: int = 4
) -> dict[str, float]:
    """Training memory in MiB: weights, gradients, AdamW's two moments, saved activations.

    Every weight is stored; each trainable one also has a gradient and two AdamW moments. The
    activations are measured on `batch` (`activation_bytes`). Short-lived temporaries are left
    out, so a GPU's peak allocation reads somewhat higher.
    """
    n_all = count_parameters(model)
    n_train = count_parameters(model, trainable_only=True)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    parts = {
        "weights": bytes_per_value * n_all,
        "gradients": bytes_per_value * n_train,
        "adam": 2 * bytes_per_value * n_train,
        "activations": activation_bytes(model, batch),
    }
    return {k: v / 2**20 for k, v in parts.items()}


@torch.no_grad()
def frozen_features(
    encoder: nn.Module, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 64
) -> dict[str, np.ndarray]:
    """What a frozen encoder (`AutoModel`, e.g. from `load_encoder`) offers a probe, per text.

    Returns float32 arrays: `"layers"` (texts, layers + 1, hidden) — the mean over the real tokens
    of the embeddings (index 0) and of each layer's output; `"mean"` — the last of those;
    `"cls"` — the last layer's first-token vector; and, when the encoder has a pooler (BERT),
    `"pooler"` — that vector through it (what `BertForSequenceClassification` classifies).
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    pooler = getattr(encoder, "pooler", None)
    out: dict[str, list[np.ndarray]] = {"layers": [], "cls": []}
    if pooler is not None:
        out["pooler"] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)  # fmt: skip
        hidden = encoder(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden[-1].dtype)
        means = [(h * mask).sum(1) / mask.sum(1).clamp(min=1) for h in hidden]
        out["layers"].append(torch.stack(means, dim=1).float().cpu().numpy())
        out["cls"].append(hidden[-1][:, 0].float().cpu().numpy())
        if pooler is not None:
            out["pooler"].append(pooler(hidden[-1]).float().cpu().numpy())
    features = {k: np.concatenate(v) for k, v in out.items()}
    features["mean"] = features["layers"][:, -1]
    return features


def fit_probe(X: np.ndarray, y: np.ndarray, l2: float = 1e-2):
    """A logistic-regression probe trained to convergence on standardised features.

    Chapter 4's probe: each feature standardised with the training mean and standard deviation,
    then the mean cross-entropy plus `l2 / 2 * ||w||^2` minimised (scikit-learn's
    `LogisticRegression` with `C = 1 / (l2 * n)`, lbfgs; the bias is not penalised). Returns the
    fitted scikit-learn pipeline (`.score(X, y)` is the accuracy).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"fit_probe needs as many labels as feature rows (got {len(X)} and {len(y)})"
        )
    probe = LogisticRegression(C=1.0 / (l2 * len(X)), max_iter=5000)
    return make_pipeline(StandardScaler(), probe).fit(X, y)
