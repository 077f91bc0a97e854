"""course_utils.strategies (chapter 3): the mean-pooled head, the strategies, training memory.

Tiny random BERT and DistilBERT models saved to a temporary folder stand in for MiniLM, so the
loaders run exactly as in the chapter (a local folder is a model name) and the swapped encoder
(no `model.bert`) is covered.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from course_utils.strategies import (
    MeanPooledClassifier,
    activation_bytes,
    apply_strategy,
    frozen_features,
    head_modules,
    load_strategy_model,
    lora_targets,
    training_memory,
)
from course_utils.training import TrainConfig, count_parameters, predict, train

KINDS = [
    {"kind": "full"},
    {"kind": "head"},
    {"kind": "top-k", "k": 1},
    {"kind": "lora", "r": 2},
]


def _save(model, tokenizer, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory, tiny_tokenizer):
    """Two saved tiny encoders+heads: a BERT (with a pooler) and a DistilBERT (without)."""
    torch.manual_seed(0)
    common = {"vocab_size": len(tiny_tokenizer), "max_position_embeddings": 64, "num_labels": 2}
    bert = BertForSequenceClassification(
        BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            pad_token_id=tiny_tokenizer.pad_token_id, **common,
        )
    )  # fmt: skip
    distil = DistilBertForSequenceClassification(
        DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, pad_token_id=0, **common)
    )
    root = tmp_path_factory.mktemp("encoders")
    return {
        "bert": _save(bert, tiny_tokenizer, root / "bert"),
        "distilbert": _save(distil, tiny_tokenizer, root / "distilbert"),
    }


def _batch(tokenizer, data, n=8):
    batch = tokenizer(list(data["text"][:n]), padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor(list(data["label"][:n]))
    return dict(batch)


def test_mean_pooling_ignores_padding(tiny_folders, tiny_tokenizer):
    torch.manual_seed(0)
    model = load_strategy_model(tiny_folders["bert"], head="mean", device="cpu").eval()
    alone = tiny_tokenizer(["good movie"], return_tensors="pt")
    padded = tiny_tokenizer(["good movie", "a very very dull and boring plot"], padding=True,
                            return_tensors="pt")  # fmt: skip
    assert padded["attention_mask"][0].sum() < padded["attention_mask"].shape[1]  # it is padded
    with torch.no_grad():
        one = model(**alone).logits[0]
        two = model(**padded).logits[0]
    torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)


def test_mean_pooled_logits_are_a_linear_map_of_the_mean(tiny_folders, tiny_tokenizer):
    torch.manual_seed(0)
    model = load_strategy_model(tiny_folders["bert"], head="mean", device="cpu").eval()
    batch = tiny_tokenizer(["good fun", "awful and dull film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = model.classifier((hidden * mask).sum(1) / mask.sum(1))
        out = model(**batch, labels=torch.tensor([1, 0]))
    torch.testing.assert_close(out.logits, expected)
    torch.testing.assert_close(
        out.loss, torch.nn.functional.cross_entropy(expected, torch.tensor([1, 0]))
    )


def test_unknown_head_and_kind_are_clear_errors(tiny_folders):
    with pytest.raises(ValueError, match="head must be"):
        load_strategy_model(tiny_folders["bert"], head="max", device="cpu")
    model = load_strategy_model(tiny_folders["bert"], device="cpu")
    with pytest.raises(ValueError, match="strategy kind"):
        apply_strategy(model, {"kind": "adapters"})


def test_random_initialisation_differs_from_pretrained(tiny_folders):
    # the saved "pretrained" tiny model was itself initialised under seed 0: seed another one
    torch.manual_seed(1)
    pretrained = load_strategy_model(tiny_folders["bert"], device="cpu")
    torch.manual_seed(1)
    random = load_strategy_model(tiny_folders["bert"], pretrained=False, device="cpu")
    name = "bert.encoder.layer.0.attention.self.query.weight"
    params_p, params_r = dict(pretrained.named_parameters()), dict(random.named_parameters())
    assert params_p.keys() == params_r.keys()
    assert not torch.equal(params_p[name], params_r[name])


def test_lora_targets_by_architecture(tiny_folders):
    bert = load_strategy_model(tiny_folders["bert"], device="cpu")
    assert lora_targets(bert) == ["query", "value"]  # peft's own default for BERT
    distil = load_strategy_model(tiny_folders["distilbert"], device="cpu")
    assert lora_targets(distil) == ["q_lin", "v_lin"]  # peft has none: found by name
    lora = apply_strategy(distil, {"kind": "lora", "r": 2})
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in lora.named_parameters()
               if ".lora_A" in n}  # fmt: skip
    assert adapted == {"q_lin", "v_lin"}
    with pytest.raises(ValueError, match="query and value projections"):
        lora_targets(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_head_modules_by_structure(tiny_folders):
    bert = load_strategy_model(tiny_folders["bert"], device="cpu")
    assert head_modules(bert) == ["bert.pooler.dense", "classifier"]
    assert count_parameters(bert, trainable_only=True) == count_parameters(bert)  # left trainable
    distil = load_strategy_model(tiny_folders["distilbert"], device="cpu")
    assert head_modules(distil) == ["pre_classifier", "classifier"]
    mean = load_strategy_model(tiny_folders["distilbert"], head="mean", device="cpu")
    assert head_modules(mean) == ["classifier"]


@pytest.mark.parametrize("encoder", ["bert", "distilbert"])
@pytest.mark.parametrize("head", ["cls", "mean"])
def test_every_strategy_trains_the_same_head(tiny_folders, encoder, head):
    """LoRA's trainable head is the other strategies' head (the pooler too, for BERT)."""
    heads = {}
    for strategy in KINDS:
        torch.manual_seed(0)
        model = apply_strategy(load_strategy_model(tiny_folders[encoder], head, device="cpu"),
                               strategy)  # fmt: skip
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        heads[strategy["kind"]] = {
            n.replace("base_model.model.", "").replace("modules_to_save.default.", "")
            for n in trainable
            if "lora_" not in n and "layer" not in n
        }
    assert heads["head"] == heads["top-k"] == heads["lora"]
    assert heads["head"] <= heads["full"]


@pytest.mark.parametrize("encoder", ["bert", "distilbert"])
@pytest.mark.parametrize("strategy", KINDS, ids=lambda s: s["kind"])
def test_strategies_train_and_predict(tiny_folders, tiny_tokenizer, sentiment_data, encoder,
                                      strategy):  # fmt: skip
    train_data, val_data = sentiment_data
    torch.manual_seed(0)
    model = apply_strategy(load_strategy_model(tiny_folders[encoder], "mean", device="cpu"),
                           strategy)  # fmt: skip
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    config = TrainConfig(lr=1e-2, max_steps=4, batch_size=16, device="cpu", progress=False)
    history = train(model, train_data, None, config, tokenizer=tiny_tokenizer)
    assert history.total_steps == 4 and history.steps[-1]["loss"] < history.steps[0]["loss"] + 1
    for name, p in history.model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"{name} is frozen but changed"
    logits = predict(history.model, val_data, tiny_tokenizer, device="cpu")
    assert logits.shape == (len(val_data), 2)


def test_training_memory_counts_trainable_state(tiny_folders, tiny_tokenizer, sentiment_data):
    batch = _batch(tiny_tokenizer, sentiment_data[0])
    full = load_strategy_model(tiny_folders["bert"], device="cpu")
    n = count_parameters(full)
    mem_full = training_memory(full, batch)
    assert mem_full["weights"] == pytest.approx(4 * n / 2**20)
    assert mem_full["adam"] == pytest.approx(2 * mem_full["gradients"])
    head = apply_strategy(load_strategy_model(tiny_folders["bert"], device="cpu"), {"kind": "head"})
    mem_head = training_memory(head, batch)
    assert mem_head["weights"] == mem_full["weights"]
    assert mem_head["gradients"] < mem_full["gradients"]
    assert 0 < mem_head["activations"] < mem_full["activations"]  # backward stops at the head


def test_activation_bytes_grow_with_the_batch(tiny_folders, tiny_tokenizer, sentiment_data):
    model = load_strategy_model(tiny_folders["bert"], device="cpu")
    for mode in (False, True):
        model.train(mode)
        small = activation_bytes(model, _batch(tiny_tokenizer, sentiment_data[0], 4))
        big = activation_bytes(model, _batch(tiny_tokenizer, sentiment_data[0], 16))
        assert 0 < small < big
        assert model.training == mode  # left as it was


def test_activation_bytes_leaves_no_graph_behind(tiny_folders, tiny_tokenizer, sentiment_data):
    """The counting forward pass must not keep its graph (it once leaked ~400 MB per call)."""
    import gc
    import weakref

    model = load_strategy_model(tiny_folders["bert"], device="cpu")
    assert activation_bytes(model, _batch(tiny_tokenizer, sentiment_data[0], 4)) > 0
    weight = weakref.ref(next(model.parameters()))
    del model
    gc.collect()
    assert weight() is None, "a weight outlived its model: the counting pass's graph was leaked"


def test_mean_pooled_classifier_wraps_any_encoder(tiny_folders):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(tiny_folders["distilbert"])
    model = MeanPooledClassifier(encoder, num_labels=3)
    assert model.classifier.out_features == 3 and model.config.num_labels == 3


def test_frozen_features_keep_the_order_of_the_texts(tiny_folders, tiny_tokenizer):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(tiny_folders["bert"])
    texts = ["a very very dull and boring plot", "good", "awful film", "good fun movie"]
    together = frozen_features(encoder, tiny_tokenizer, texts, batch_size=3)  # sorted by length
    for i, text in enumerate(texts):
        alone = frozen_features(encoder, tiny_tokenizer, [text])
        for kind in ("layers", "mean", "cls", "pooler"):
            np.testing.assert_allclose(together[kind][i], alone[kind][0], atol=1e-5, rtol=1e-5)
    assert together["layers"].shape == (4, 3, 32)  # embeddings + 2 layers
