"""Chapter 3 — The fine-tuning algorithm: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from torch import nn

from ..exercises import Case, Exercise, equal
from ..strategies import fit_probe
from ..training import apply_lora, count_parameters, freeze_layers


# -- Exercise 1: count the trainable parameters ------------------------------------------------
def count_trainable(model: nn.Module) -> int:
    """How many parameters of ``model`` the optimizer would update (``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# -- Exercise 2: unfreeze layers within a parameter budget --------------------------------------
def layers_for_budget(model: nn.Module, budget: int) -> int:
    """The largest k such that training the head plus the top k layers uses <= ``budget`` parameters.

    Returns 0 when only the head fits (the head always trains); the model's own layer count when
    everything fits.
    """
    n_layers = model.config.num_hidden_layers
    best = 0
    for k in range(n_layers + 1):
        if freeze_layers(model, "top-k", k) <= budget:
            best = k
    freeze_layers(model, "none")  # leave the model as we found it: everything trainable
    return best


# -- Exercise 3: LoRA's parameter count, analytically -------------------------------------------
def lora_parameter_count(hidden_size: int, num_layers: int, r: int, n_targets: int = 2) -> int:
    """Parameters LoRA adds to a BERT encoder: A (r x d) and B (d x r) per adapted projection.

    Each of the ``n_targets`` adapted ``d x d`` projections (query, value, ...) of each layer gets
    ``r * d + d * r`` new weights (LoRA adds no bias).
    """
    return num_layers * n_targets * 2 * r * hidden_size


# -- Exercise 4: memory of the training state ---------------------------------------------------
def training_state_bytes(n_total: int, n_trainable: int, bytes_per_value: int = 4) -> int:
    """Bytes for the weights, gradients and AdamW's two moment estimates (no activations).

    Every weight is stored; only trainable ones have a gradient and two AdamW state tensors.
    """
    return bytes_per_value * (n_total + 3 * n_trainable)


# -- Exercise 5 (an experiment): which layer should a frozen probe read? -------------------------
def probe_accuracy_by_layer(train_layers, y_train, val_layers, y_val) -> list[float]:
    """Validation accuracy of a converged probe (``fit_probe``) on each layer's features.

    ``train_layers`` and ``val_layers`` have the shape (reviews, layers + 1, hidden).
    """
    accuracies = []
    for layer in range(train_layers.shape[1]):
        probe = fit_probe(train_layers[:, layer], y_train)
        accuracies.append(float(probe.score(val_layers[:, layer], y_val)))
    return accuracies


# -- Exercise 6: interpret it ------------------------------------------------------------------
def last_layer_verdict(accuracies: list[float], n_val: int) -> str:
    """The verdict on the last layer: "best", "within noise" (another layer is higher by at most
    two binomial standard errors of the best accuracy) or "worse"."""
    best = max(range(len(accuracies)), key=lambda i: accuracies[i])
    if accuracies[-1] >= accuracies[best]:
        return "best"
    p = accuracies[best]
    noise = 2 * math.sqrt(p * (1 - p) / n_val)
    return "within noise" if accuracies[best] - accuracies[-1] <= noise else "worse"


def synthetic_layers(n: int, layers: int, informative: int, seed: int = 0):
    """Features where only layer ``informative`` separates the two labels (a hidden case)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, layers, 8))
    X[:, informative, 0] += 3.0 * (2 * y - 1)
    return X, y


def tiny_bert(hidden_size: int = 32, num_layers: int = 3, seed: int = 0) -> nn.Module:
    """A small randomly initialised BERT classifier (fast to build; for the hidden cases)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=200,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=64,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def peft_lora_count(hidden_size: int, num_layers: int, r: int, n_targets: int = 2) -> int:
    """What peft really adds: LoRA on a tiny BERT, counting the ``lora_`` parameters."""
    targets = ["query", "value", "key"][:n_targets]
    model = apply_lora(tiny_bert(hidden_size, num_layers), r=r, target_modules=targets)
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)


def _close_list(got, expected) -> bool:
    try:
        return equal([float(v) for v in got], expected, rel_tol=1e-6, abs_tol=1e-6)
    except (TypeError, ValueError):
        return False


def exercises(
    load_model: Callable[[], nn.Module], layer_features: tuple[dict, dict], probe_n: int
) -> dict[str, Exercise]:
    """Chapter 3's exercises.

    ``load_model()`` returns a fresh pretrained classifier (MiniLM); ``layer_features`` is the
    notebook's ``(features, labels)`` of section 3.3 (``frozen_features`` of the train, val and
    test reviews, and their labels); the experiment uses the first ``probe_n`` training reviews.
    """
    features, labels = layer_features
    real_case = (
        features["train"]["layers"][:probe_n], labels["train"][:probe_n],
        features["val"]["layers"], labels["val"],
    )  # fmt: skip
    synthetic = [synthetic_layers(60, 4, 2, seed=1), synthetic_layers(40, 3, 0, seed=2)]
    layer_cases = [Case((Xa, ya, Xb, yb), label=f"(synthetic: {Xa.shape[1]} layers, "
                        f"{len(ya)} train / {len(yb)} val reviews)")
                   for (Xa, ya), (Xb, yb) in [(synthetic[0], synthetic_layers(30, 4, 2, seed=3)),
                                              (synthetic[1], synthetic_layers(20, 3, 0, seed=4))]]  # fmt: skip
    layer_cases.append(Case(real_case, label=f"(the encoder's features: {probe_n} training "
                            f"reviews, {len(labels['val'])} validation reviews)"))  # fmt: skip

    def verdict_on_the_data() -> str:
        """The reference answer: the verdict of the measurement on the notebook's features."""
        return last_layer_verdict(probe_accuracy_by_layer(*real_case), len(labels["val"]))

    real = load_model()
    frozen_head = load_model()
    freeze_layers(frozen_head, "head")
    top2 = load_model()
    freeze_layers(top2, "top-k", 2)
    lora = apply_lora(load_model(), r=4)
    small = tiny_bert()
    small_top1 = tiny_bert(seed=1)
    freeze_layers(small_top1, "top-k", 1)
    count_cases = [
        Case((m,), expected=count_parameters(m, trainable_only=True), label=label)
        for m, label in [
            (real, "(MiniLM classifier, nothing frozen)"),
            (frozen_head, "(MiniLM, encoder frozen: head only)"),
            (top2, "(MiniLM, head + top 2 layers)"),
            (lora, "(MiniLM with LoRA r=4)"),
            (small_top1, "(tiny BERT, head + top 1 layer)"),
        ]
    ]

    def budget_case(model, budget, name):
        return Case((model, budget), label=f"({name}, budget={budget:,})")

    minilm = load_model()  # its own copy: the learner's function may freeze it
    budget_cases = [
        budget_case(minilm, 200_000, "MiniLM"),
        budget_case(minilm, 2_000_000, "MiniLM"),
        budget_case(minilm, 4_000_000, "MiniLM"),
        budget_case(minilm, 10_000_000, "MiniLM"),
        budget_case(minilm, 30_000_000, "MiniLM"),
        budget_case(small, 20_000, "tiny BERT"),
    ]
    lora_cases = [
        Case(
            (d, n, r, t),
            expected=peft_lora_count(d, n, r, t),
            label=f"(hidden_size={d}, num_layers={n}, r={r}, n_targets={t}); expected from peft",
        )
        for d, n, r, t in [(32, 3, 4, 2), (64, 2, 8, 2), (32, 4, 1, 3), (48, 1, 16, 2)]
    ]
    memory_cases = [
        Case(args)
        for args in [
            (22_713_986, 22_713_986),
            (22_713_986, 148_610),
            (22_713_986, 0),
            (1_000, 10, 2),
        ]
    ]

    budget_ex = Exercise(
        "layers_for_budget",
        cases=budget_cases,
        solution=layers_for_budget,
        hints=[
            "`freeze_layers(model, 'top-k', k)` freezes everything but the head and the top k "
            "layers, and returns how many parameters are left trainable.",
            "Try k = 0, 1, ..., model.config.num_hidden_layers and keep the largest k within budget.",
            "Finish with `freeze_layers(model, 'none')` so the model is fully trainable again.",
        ],
    )
    experiment = {
        "probe_accuracy_by_layer": Exercise(
            "probe_accuracy_by_layer",
            cases=layer_cases,
            solution=probe_accuracy_by_layer,
            compare=_close_list,
            hints=[
                "`train_layers[:, layer]` is the (reviews, hidden) matrix of one layer's features.",
                "For each layer: fit a probe on the training features of that layer and score it "
                "on the validation features of the same layer.",
                "Return one float per layer, in layer order (0 = the embeddings).",
            ],
        ),
        "last_layer_verdict": Exercise(
            "last_layer_verdict",
            solution=verdict_on_the_data,
            kind="value",
            hints=[
                "Run your exercise-5 function on the notebook's features and find the layer with "
                "the highest validation accuracy.",
                "Compare it with the last entry of the list; how large is two binomial standard "
                "errors for a validation set of this size at that accuracy?",
            ],
        ),
    }
    return {
        "count_trainable": Exercise(
            "count_trainable",
            cases=count_cases,
            solution=count_trainable,
            hints=[
                "`model.parameters()` yields every parameter tensor once.",
                "A frozen parameter has `p.requires_grad == False`.",
                "Sum `p.numel()` over the parameters that require a gradient.",
            ],
        ),
        "layers_for_budget": budget_ex,
        "lora_parameter_count": Exercise(
            "lora_parameter_count",
            cases=lora_cases,
            solution=lora_parameter_count,
            hints=[
                "LoRA replaces the update of a d x d weight W by B @ A with A: r x d and B: d x r.",
                "So each adapted projection adds r*d + d*r parameters; LoRA adds no bias.",
                "Multiply by the number of adapted projections per layer and the number of layers.",
            ],
        ),
        "training_state_bytes": Exercise(
            "training_state_bytes",
            cases=memory_cases,
            solution=training_state_bytes,
            hints=[
                "Every weight is stored, trainable or not: n_total values.",
                "Each trainable weight also has a gradient and AdamW's two moments (m and v).",
                "Multiply the number of values by bytes_per_value (4 for float32).",
            ],
        ),
        **experiment,
    }


def test_context() -> dict:
    """What ``exercises()`` needs, built the way the notebook builds it, on fewer reviews."""
    from ..data import load_movie_reviews
    from ..models import load_classifier, load_encoder
    from ..strategies import frozen_features

    encoder, tokenizer = load_encoder("minilm", device="cpu")
    reviews = load_movie_reviews()
    splits = {
        "train": reviews["train"].select(range(160)),
        "val": reviews["validation"].select(range(80)),
    }
    features = {
        k: frozen_features(encoder, tokenizer, list(v["text"]), 64) for k, v in splits.items()
    }
    labels = {k: np.array(list(v["label"])) for k, v in splits.items()}
    return {
        "load_model": lambda: load_classifier("minilm", device="cpu")[0],
        "layer_features": (features, labels),
        "probe_n": 160,
    }
