"""course_utils.project: the reference classifier's cache, the pipeline helper, augmentation,
ensembles and the small training budget (tiny models, no training of MiniLM)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from conftest import make_sentiment_dataset

from course_utils import project


def test_small_train_set_is_a_shuffled_fixed_draw():
    from datasets import DatasetDict

    train = make_sentiment_dataset(600, seed=3)
    reviews = DatasetDict({"train": train})
    a, b = project.small_train_set(reviews), project.small_train_set(reviews)
    assert len(a) == project.SMALL_BUDGET == 256
    assert a["text"] == b["text"]  # the same 256 every time
    assert a["text"] != train.select(range(256))["text"]  # not the file's first rows
    assert project.small_train_set(reviews, seed=1)["text"] != a["text"]


def test_choose_max_length():
    lengths = list(range(1, 101))  # 1..100
    assert project.choose_max_length(lengths, percentile=50, multiple=1) == 51
    assert project.choose_max_length(lengths, percentile=99) == 104  # 99.01 -> 100 -> 104
    assert project.choose_max_length([5, 5, 5], percentile=99) == 8


def test_augment_text_keeps_negations_and_is_seeded():
    text = "the plot is not good and the actors were never convincing at all"
    out = project.augment_text(text, seed=1, p_delete=0.5, n_swaps=0)
    assert "not" in out.split() and "never" in out.split()
    assert project.augment_text(text, seed=7) == project.augment_text(text, seed=7)
    assert sorted(project.augment_text(text, seed=2, p_delete=0.0, n_swaps=3).split()) == sorted(
        text.split()
    )  # swaps only reorder
    assert project.augment_text("fine", seed=0, p_delete=1.0) == "fine"  # never empty
    rng = random.Random(0)
    assert isinstance(project.augment_text(text, seed=rng), str)


def test_ensemble_probabilities():
    logits = np.array([[2.0, 0.0], [0.0, 2.0]])
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    out = project.ensemble_probabilities([logits, probs])
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    p0 = np.exp(2) / (1 + np.exp(2))
    np.testing.assert_allclose(out[0, 0], (p0 + 0.2) / 2)
    weighted = project.ensemble_probabilities([logits, probs], weights=[1.0, 0.0])
    np.testing.assert_allclose(weighted[0, 0], p0)


def test_predict_texts_with_a_saved_model(tiny_bert, tmp_path):
    model, tokenizer = tiny_bert
    model.config.id2label = {0: "negative", 1: "positive"}
    model.config.label2id = {"negative": 0, "positive": 1}
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    texts = ["a good movie", "boring plot"]
    out = project.predict_texts(tmp_path, texts, device="cpu")
    # the pipeline's answer is the saved model's own top class and its softmax probability
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(
            model(**tokenizer(texts, padding=True, return_tensors="pt")).logits, -1
        )
    expected = [(model.config.id2label[int(p.argmax())], float(p.max())) for p in probs]
    assert [row["label"] for row in out] == [label for label, _ in expected]
    np.testing.assert_allclose([row["score"] for row in out], [s for _, s in expected], atol=1e-5)


def test_reference_classifier_trains_once_then_loads(tiny_bert, tmp_path, monkeypatch):
    model, tokenizer = tiny_bert
    calls = []

    def fake_train(config, target, progress, device="auto"):
        calls.append(config)
        target.mkdir(parents=True)
        model.save_pretrained(target)
        info = {"config": config, "test": {"accuracy": 0.5}}
        (target / "info.json").write_text(json.dumps(info))
        return info

    monkeypatch.setattr(project, "_train_reference", fake_train)
    monkeypatch.setattr(project, "_token_lengths", lambda texts, tok: [10] * len(texts))
    # no real assets: the tokenizer and the reviews that pick max_length are tiny stand-ins
    from datasets import DatasetDict

    from course_utils import data, models

    monkeypatch.setattr(models, "load_tokenizer", lambda name: tokenizer)
    reviews = DatasetDict({"train": make_sentiment_dataset(32)})
    monkeypatch.setattr(data, "load_movie_reviews", lambda *args, **kwargs: reviews)
    first_dir, first = project.reference_classifier(smoke=True, root=tmp_path)
    second_dir, second = project.reference_classifier(smoke=True, root=tmp_path)
    assert len(calls) == 1 and first_dir == second_dir
    assert first.pop("cached") is False and second.pop("cached") is True and second == first
    assert first_dir.name.startswith("ch05-minilm-") and (first_dir / "info.json").exists()
    assert first["config"]["smoke"] is True and first["config"]["max_length"] == 16
    assert project.config_key(project.reference_config(False, 16)) != project.config_key(
        project.reference_config(True, 16)
    )


def test_reference_config_smoke_is_tiny():
    smoke = project.reference_config(True, 64)
    full = project.reference_config(False, 64)
    assert smoke["train_size"] == 32 and smoke["num_epochs"] == 1
    assert (
        "train_size" not in full and full["num_epochs"] == project.REFERENCE_SETTINGS["num_epochs"]
    )
    with pytest.raises(KeyError):
        full["eval_size"]


def test_saving_a_run_is_atomic_and_the_first_finished_wins(tiny_bert, tmp_path):
    """Two notebooks training the same configuration at once: the second keeps the first's."""
    model, tokenizer = tiny_bert
    target = tmp_path / "ch05-minilm-abc"
    first = project.save_reference(model, tokenizer, {"test": {"accuracy": 0.6}}, target)
    second = project.save_reference(model, tokenizer, {"test": {"accuracy": 0.7}}, target)
    assert first == second == {"test": {"accuracy": 0.6}}
    assert json.loads((target / "info.json").read_text()) == first
    assert [p.name for p in tmp_path.iterdir()] == [target.name], "a temporary folder was left"


def test_negation_edits():
    text = "It is not good, and I didn't laugh; never again."
    assert project.drop_negations(text) == "It is good, and I laugh; again."
    assert project.is_negation("Not") and project.is_negation("(never)")
    assert not project.is_negation("but") and not project.is_negation("nothingness")
    control = project.drop_random_words(text, 3, seed=1)
    words, kept = text.split(), control.split()
    assert len(kept) == len(words) - 3
    assert {"not", "didn't", "never"} <= {w.strip(".,;") for w in kept}  # negations stay
    assert (
        control
        == project.drop_random_words(text, 3, seed=1)
        != project.drop_random_words(text, 3, seed=2)
    )
    assert project.drop_random_words("fine", 5) == "fine"  # never empty
    assert project.drop_random_words("not bad", 5) == "not"


def test_reference_dir_and_splits(tmp_path):
    from datasets import DatasetDict

    config = project.reference_config(True, 16)
    assert (
        project.reference_dir(config, tmp_path).name == f"ch05-minilm-{project.config_key(config)}"
    )
    other = project.reference_config(True, 16, model="sentence-transformers/all-MiniLM-L12-v2")
    assert project.reference_dir(other, tmp_path).name.startswith("ch05-all-MiniLM-L12-v2-")
    assert project.load_reference(tmp_path / "missing") is None
    reviews = DatasetDict({s: make_sentiment_dataset(100, seed=i)
                           for i, s in enumerate(["train", "validation", "test"])})  # fmt: skip
    train, val, test = project.reference_splits(config, reviews)
    assert (len(train), len(val), len(test)) == (32, 32, 32)  # SMOKE_SETTINGS
    assert train["text"] == reviews["train"].shuffle(seed=0).select(range(32))["text"]
    full = project.reference_splits(project.reference_config(False, 16), reviews)
    assert [len(s) for s in full] == [100, 100, 100]
