"""The end-to-end project's reusable pieces: the reference classifier and its helpers.

Introduced in chapter 5 (and used again by chapter 6, which compares prompting with it).

- `SMALL_BUDGET` and `small_train_set`: the chapter's smallest training run (256 reviews), the
  data budget chapter 6's prompt-based fine-tuning uses too.
- `choose_max_length`: a `max_length` from the token lengths of the training texts.
- `reference_classifier(smoke)`: chapter 5's final MiniLM classifier, trained once with the
  chapter's settings and saved with `save_pretrained`; later calls (chapter 6, a re-run) load it.
  Chapter 5 runs the same steps in view and stores its model with `save_reference` into
  `reference_dir(config)`, where `reference_classifier` finds it.
- `predict_texts`: label and score for a list of sentences, with `transformers.pipeline`.
- `augment_text`: a cheap text augmentation that keeps the label; `ensemble_probabilities`:
  average several models' class probabilities.
- `drop_negations` and `drop_random_words`: the edits of chapter 5's negation experiment (delete
  the negations of a review, or as many other words as a control).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .evaluation import to_probabilities
from .experiments import config_key, runs_dir

__all__ = [
    "NEGATIONS",
    "REFERENCE_SETTINGS",
    "SMALL_BUDGET",
    "augment_text",
    "choose_max_length",
    "drop_negations",
    "drop_random_words",
    "ensemble_probabilities",
    "is_negation",
    "load_reference",
    "predict_texts",
    "reference_classifier",
    "reference_config",
    "reference_dir",
    "reference_train_config",
    "save_reference",
    "small_train_set",
]

ROOT = Path(__file__).resolve().parent.parent  # the repository (runs/ lives there)
SMALL_BUDGET = 256  # reviews in the chapter's smallest training run (chapter 6 uses the same)

# The chapter's chosen settings for the final model (see chapter 5 for how they were chosen).
REFERENCE_SETTINGS: dict[str, Any] = {
    "model": "minilm",
    "lr": 1e-4,
    "num_epochs": 2,
    "batch_size": 32,
    "warmup_ratio": 0.1,
    "scheduler": "cosine",
    "weight_decay": 0.01,
    "max_length_percentile": 99,
    "seed": 0,
}
SMOKE_SETTINGS: dict[str, Any] = {"train_size": 32, "eval_size": 32, "num_epochs": 1}

# Words whose loss flips or weakens the sentiment of a sentence: augmentation never drops them.
NEGATIONS = frozenset(
    "not no never nor n't nothing nobody none neither cannot without hardly barely "
    "isn't aren't wasn't weren't don't doesn't didn't can't couldn't won't wouldn't "
    "shouldn't hasn't haven't hadn't but".split()
)


def small_train_set(reviews, seed: int = 0):
    """`SMALL_BUDGET` training reviews drawn at random (the splits keep the file's order)."""
    return reviews["train"].shuffle(seed=seed).select(range(SMALL_BUDGET))


def choose_max_length(lengths: Sequence[int], percentile: float = 99, multiple: int = 8) -> int:
    """The `percentile`-th percentile of the token lengths, rounded up to a multiple of `multiple`.

    With dynamic padding a longer `max_length` costs only for the few long texts, so covering
    99% of the texts untruncated is cheap; rounding to a multiple of 8 suits the hardware.
    """
    value = float(np.percentile(np.asarray(lengths), percentile))
    return int(-(-int(np.ceil(value)) // multiple) * multiple)


def reference_config(
    smoke: bool, max_length: int | None = None, model: str | None = None
) -> dict[str, Any]:
    """The configuration (a JSON-able dict) of the reference classifier; its hash names the run.

    `model` replaces the encoder (chapter 5's `ENCODER` parameter; default `"minilm"`).
    """
    from .data import DATA_VERSION

    config = dict(REFERENCE_SETTINGS, smoke=bool(smoke), version=1, data_version=DATA_VERSION)
    if model is not None:
        config["model"] = str(model)
    if smoke:
        config.update(SMOKE_SETTINGS)
    if max_length is not None:
        config["max_length"] = max_length
    return config


def reference_splits(config: dict[str, Any], reviews=None):
    """`(train, validation, test)` of the reference run: whole splits, or SMOKE's small draws."""
    if reviews is None:
        from .data import load_movie_reviews

        reviews = load_movie_reviews()
    splits = [reviews[name] for name in ("train", "validation", "test")]
    if config["smoke"]:
        sizes = [config["train_size"], config["eval_size"], config["eval_size"]]
        splits = [
            s.shuffle(seed=config["seed"]).select(range(n))
            for s, n in zip(splits, sizes, strict=True)
        ]
    return tuple(splits)


def reference_dir(config: dict[str, Any], root: str | os.PathLike | None = None) -> Path:
    """The folder of the reference run of `config`: `<root>/ch05-<model>-<key of config>`.

    `root` defaults to `<runs>/models` (`course_utils.experiments.runs_dir()`); a relative
    `root` starts at the repository's root, so every chapter's notebook finds the same folder.
    """
    root = runs_dir() / "models" if root is None else Path(root)
    if not root.is_absolute():  # from the repository's root, whatever the notebook's folder
        root = ROOT / root
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(config["model"])).name).strip("-")
    return root / f"ch05-{name}-{config_key(config)}"


def load_reference(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The saved `info` of a reference run (with `cached=True`), or `None` if there is none."""
    info_path = Path(model_dir) / "info.json"
    if not info_path.exists():
        return None
    return {**json.loads(info_path.read_text()), "cached": True}


def reference_train_config(config: dict[str, Any], progress: bool = False, **overrides):
    """The `TrainConfig` of the reference run, for `train` and `make_trainer` alike.

    The validation split is evaluated after every epoch and the epoch with the best validation
    accuracy is kept (early stopping with patience 1). `overrides` replace any field.
    """
    from .training import TrainConfig

    settings = dict(
        lr=config["lr"],
        num_epochs=config["num_epochs"],
        batch_size=config["batch_size"],
        eval_batch_size=128,
        max_length=config["max_length"],
        warmup_ratio=config["warmup_ratio"],
        scheduler=config["scheduler"],
        weight_decay=config["weight_decay"],
        eval_every="epoch",
        metric_for_best="accuracy",
        early_stopping_patience=1,
        seed=config["seed"],
        log_every=5,
        progress=progress,
    )
    return TrainConfig(**(settings | overrides))


def _token_lengths(texts: Sequence[str], tokenizer) -> list[int]:
    return [len(ids) for ids in tokenizer(list(texts))["input_ids"]]


def reference_info(config: dict[str, Any], history, splits, test_logits, val_logits) -> dict:
    """What a reference run saves next to its weights (`info.json`): a JSON-able dict.

    Keys: `config`, `test` and `validation` metrics, split sizes, training time and
    throughput, the `History` as a dict, and the test and validation logits (splits' order).
    """
    from .evaluation import classification_metrics

    _, eval_set, test_set = splits
    return {
        "config": config,
        "test": classification_metrics(np.asarray(test_set["label"]), np.asarray(test_logits)),
        "validation": history.best_metrics,
        "test_size": len(test_set),
        "train_size": len(splits[0]),
        "train_time_s": history.train_time_s,
        "samples_per_second": history.samples_per_second,
        "history": history.to_dict(),
        "test_logits": np.asarray(test_logits).tolist(),
        "validation_logits": np.asarray(val_logits).tolist(),
    }


def _train_reference(
    config: dict[str, Any], target: Path, progress: bool, device: str
) -> dict[str, Any]:
    """The reference run: the same steps chapter 5 shows in its section 5.5."""
    from .evaluation import compute_metrics
    from .models import load_classifier
    from .training import predict, seed_everything, train

    splits = reference_splits(config)
    train_set, eval_set, test_set = splits
    seed_everything(config["seed"])  # the new classification head is random: seed it
    model, tokenizer = load_classifier(config["model"], num_labels=2, device=device)
    train_config = reference_train_config(config, progress, device=device)
    history = train(model, train_set, eval_set, train_config, tokenizer, compute_metrics)
    kw = dict(batch_size=128, max_length=config["max_length"], device=device)
    test_logits = predict(model, test_set, tokenizer, **kw)
    val_logits = predict(model, eval_set, tokenizer, **kw)
    info = reference_info(config, history, splits, test_logits, val_logits)
    return save_reference(model, tokenizer, info, target)


def save_reference(model, tokenizer, info: dict[str, Any], target: Path) -> dict[str, Any]:
    """Save model, tokenizer and `info.json` into `target` atomically; return the saved info.

    The folder is written under a temporary name and renamed: it appears complete or not at
    all. If another process (a second notebook) saved the same configuration first, its folder
    is kept and its info returned.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "info.json").write_text(json.dumps(info, indent=1))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "info.json").exists():
            raise
        return json.loads((target / "info.json").read_text())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def reference_classifier(
    smoke: bool,
    root: str | os.PathLike | None = None,
    progress: bool = False,
    device: str = "auto",
) -> tuple[Path, dict[str, Any]]:
    """Chapter 5's final MiniLM classifier: `(model_dir, info)`, trained only the first time.

    Full mode trains on the whole training split with `REFERENCE_SETTINGS` (the validation split
    picks the best epoch; the test split is predicted once, at the end); `smoke=True` trains a
    tiny version (64 reviews, 1 epoch) in seconds. The model and tokenizer are saved with
    `save_pretrained` into `root/ch05-minilm-<key>`, where the key hashes the configuration, so
    another configuration never reuses them; when that folder exists it is loaded, not retrained.
    `info` holds `cached` (whether the folder was loaded), the configuration, the test and validation metrics, the training `History` (as
    a dict) and the test and validation logits (in the splits' order). A relative `root` starts at the repository's root, so every
    chapter's notebook finds the same folder. Load the model with `load_classifier(model_dir)` or
    `transformers.pipeline("text-classification", model=str(model_dir))`. `root` defaults to
    `<runs>/models` (`course_utils.experiments.runs_dir()`); `device` is where a first run
    trains (`"auto"`, `"cpu"`, `"cuda"`, `"mps"`) — the saved model does not depend on it beyond
    floating-point rounding, so it is not part of the key.
    """
    from .data import load_movie_reviews
    from .models import load_tokenizer

    tokenizer = load_tokenizer(REFERENCE_SETTINGS["model"])
    texts = load_movie_reviews()["train"]["text"]
    max_length = choose_max_length(
        _token_lengths(texts, tokenizer), REFERENCE_SETTINGS["max_length_percentile"]
    )
    config = reference_config(smoke, max_length)
    model_dir = reference_dir(config, root)
    if (info := load_reference(model_dir)) is not None:
        return model_dir, info
    return model_dir, {**_train_reference(config, model_dir, progress, device), "cached": False}


def predict_texts(model_dir: str | os.PathLike, texts: Sequence[str], device: str = "auto"):
    """`[{"label": ..., "score": ...}, ...]` for `texts`, from a saved classifier folder.

    A thin wrapper over `transformers.pipeline("text-classification", ...)`, which reads the
    label names from the saved config and truncates texts longer than the model allows. `device`
    as everywhere in the course (`"auto"`: CUDA, then Apple MPS, then CPU).
    """
    from transformers import pipeline

    from .models import get_device

    classify = pipeline("text-classification", model=str(model_dir), device=get_device(device))
    return classify(list(texts), truncation=True)


def _bare(word: str) -> str:
    return word.lower().strip(".,!?;:\"'()")


def is_negation(word: str) -> bool:
    """Whether `word` (punctuation around it ignored) is a negation: "not", "never", "isn't"...

    The words of `NEGATIONS` except the contrast word "but".
    """
    return _bare(word) in NEGATIONS - {"but"}


def drop_negations(text: str) -> str:
    """`text` without its negation words (`is_negation`); the other words keep their order."""
    return " ".join(w for w in text.split() if not is_negation(w))


def drop_random_words(text: str, n: int, seed: int = 0) -> str:
    """`text` with `n` of its non-negation words deleted at random (a control for
    `drop_negations`: as many words gone, but not the negations). At least one word stays."""
    words = text.split()
    candidates = [i for i, w in enumerate(words) if not is_negation(w)]
    n = max(0, min(n, len(candidates), len(words) - 1))
    gone = set(random.Random(seed).sample(candidates, n))
    return " ".join(w for i, w in enumerate(words) if i not in gone)


def augment_text(
    text: str,
    seed: int | random.Random = 0,
    p_delete: float = 0.1,
    n_swaps: int = 1,
    protected: frozenset[str] = NEGATIONS,
) -> str:
    """A noisy copy of `text` that keeps its sentiment: random deletions and adjacent swaps.

    Each word is dropped with probability `p_delete`, except negations and contrast words
    (`protected`: dropping "not" would flip the label); then `n_swaps` random pairs of
    neighbouring words trade places. The result is never empty. Same seed, same output.
    """
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    words = text.split()
    kept = [w for w in words if w.lower().strip(".,!?;:") in protected or rng.random() >= p_delete]
    words = kept or words
    for _ in range(n_swaps if len(words) > 1 else 0):
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def ensemble_probabilities(
    outputs: Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """The (weighted) mean of several models' class probabilities, `(n, num_classes)`.

    Each element of `outputs` may be logits or probabilities (see
    `course_utils.evaluation.to_probabilities`); averaging probabilities, not logits, keeps one
    over-confident model from out-voting the others.
    """
    probs = np.stack([to_probabilities(o) for o in outputs])
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), probs, axes=1)
