"""Model loading by registry name, local folder and Hub id; device choice; clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from course_utils import models
from course_utils.models import ModelNotFoundError

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "film",
    "is",
    "good",
    "bad",
    "a",
    "not",
]


@pytest.fixture
def tiny_bert_dir(tmp_path):
    """A tiny randomly initialised BERT saved like a Hub repository (config, safetensors, tokenizer)."""
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(VOCAB)})
    config = BertConfig(
        vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    folder = tmp_path / "tiny-bert"
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_device_auto_detection_prefers_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert models.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert models.get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.get_device() == torch.device("cuda")
    assert models.get_device("cpu") == torch.device("cpu")


def test_load_classifier_from_local_folder(tiny_bert_dir):
    model, tokenizer = models.load_classifier(
        tiny_bert_dir, labels=["neg", "neu", "pos"], device="cpu"
    )
    assert model.config.num_labels == 3 and model.config.id2label[2] == "pos"
    batch = tokenizer(["the film is good"], return_tensors="pt")
    assert model(**batch).logits.shape == (1, 3)


def test_load_token_classifier_needs_labels(tiny_bert_dir):
    with pytest.raises(ValueError, match="labels"):
        models.load_token_classifier(tiny_bert_dir)
    model, _ = models.load_token_classifier(
        tiny_bert_dir, labels=["O", "B-PER", "I-PER"], device="cpu"
    )
    assert model.config.num_labels == 3


def test_unknown_model_name_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    with pytest.raises(ModelNotFoundError, match="not a course model.*minilm"):
        models.load_classifier("no-such-model-anywhere")


def test_data_asset_is_not_a_model():
    with pytest.raises(ModelNotFoundError, match="data asset"):
        models.resolve_model("vader")


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        models.resolve_model(tmp_path)


def test_pickle_weights_are_never_loaded(tiny_bert_dir):
    """Only safetensors: a folder holding only a pickled checkpoint is refused."""
    model = BertForSequenceClassification.from_pretrained(tiny_bert_dir)
    (tiny_bert_dir / "model.safetensors").unlink()
    torch.save(model.state_dict(), tiny_bert_dir / "pytorch_model.bin")
    with pytest.raises(OSError):
        models.load_classifier(tiny_bert_dir, device="cpu")


def test_hub_id_loads_through_the_hub_client_offline(tiny_bert_dir, tmp_path):
    """A Hub id goes through huggingface_hub; a local hub cache stands in for the Hub."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--course-test--tiny-bert"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in tiny_bert_dir.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    script = textwrap.dedent(
        """
        from course_utils import models
        model, tokenizer = models.load_classifier("course-test/tiny-bert", device="cpu")
        print(type(model).__name__, model.config.hidden_size, len(tokenizer))
        """
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["BertForSequenceClassification", "16", str(len(VOCAB))]


@pytest.mark.assets
def test_registry_models_load_and_predict():
    model, tokenizer = models.load_classifier("minilm", device="cpu")
    logits = model(**tokenizer(["A gorgeous, witty film."], return_tensors="pt")).logits
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()
    encoder, _ = models.load_encoder("minilm", device="cpu")
    assert encoder.config.hidden_size == 384
    lm, lm_tokenizer = models.load_causal_lm("smollm2", device="cpu")
    ids = lm_tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        next_token = lm(**ids).logits[0, -1].argmax()
    assert lm_tokenizer.decode(next_token).strip() == "Paris"
