"""Tests of the course's training loop (`course_utils.training`) on tiny random models."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest
import torch
from conftest import build_tiny_bert, build_tiny_llama, make_sentiment_dataset

from course_utils.evaluation import compute_metrics
from course_utils.training import (
    History,
    LengthBucketBatchSampler,
    MicroBatchSampler,
    TrainConfig,
    count_items,
    count_parameters,
    freeze_layers,
    make_accelerator,
    predict,
    task_type,
    tokenize_dataset,
    train,
)


def quick(**kw) -> TrainConfig:
    """A small, quiet CPU config for tests."""
    base = dict(num_epochs=2, batch_size=8, lr=1e-3, progress=False, max_length=32, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


class Interrupt(Exception):
    pass


def kill_at(step_to_kill: int):
    def callback(step, history):
        if step == step_to_kill:
            raise Interrupt

    return callback


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sb = b.state_dict()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, sb[name]), name


# -- the loop learns, logs and schedules -------------------------------------------------------


def test_train_learns_and_records_history(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    train_ds, val_ds = sentiment_data
    history = train(model, train_ds, val_ds, quick(num_epochs=6, lr=3e-3), tok, compute_metrics)
    assert isinstance(history, History)
    assert len(history.steps) == history.total_steps == 6 * 8
    assert [row["step"] for row in history.evals] == [8 * e for e in range(1, 7)]
    assert [row["epoch"] for row in history.evals] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert history.evals[-1]["loss"] < history.evals[0]["loss"]
    assert history.evals[-1]["accuracy"] > 0.8  # the keyword task is learnable
    assert history.samples_per_second > 0 and history.train_samples == 6 * 64
    assert {"accuracy", "f1", "auc", "loss", "epoch"} <= set(history.evals[-1])
    frame = history.to_dataframe("train")
    assert list(frame.columns[:4]) == ["step", "epoch", "loss", "lr"]
    assert history.model is model and "model" not in history.to_dict()
    json.dumps(history.to_dict())  # serialisable
    assert History.from_dict(history.to_dict()).evals == history.evals


def test_warmup_and_schedulers(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    config = quick(num_epochs=2, lr=1e-3, warmup_ratio=0.25, scheduler="cosine")
    history = train(model, sentiment_data[0], None, config, tok)
    lrs = [row["lr"] for row in history.steps]  # the rate each step used
    assert len(lrs) == 16
    assert lrs[:5] == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3])  # 4 warm-up steps
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    assert 0 < lrs[-1] < 2e-5  # cosine decays towards 0 after the last step


def test_seeded_runs_are_identical(tiny_tokenizer, sentiment_data):
    weights = []
    for _ in range(2):
        model = build_tiny_bert(tiny_tokenizer)
        train(model, sentiment_data[0], None, quick(seed=3), tiny_tokenizer)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_grad_accumulation_matches_bigger_batch(tiny_tokenizer, sentiment_data):
    models = []
    for batch_size, accum in [(8, 1), (4, 2)]:
        model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
        config = quick(batch_size=batch_size, grad_accum_steps=accum, num_epochs=1)
        train(model, sentiment_data[0], None, config, tiny_tokenizer)
        models.append(model.state_dict())
    for name in models[0]:
        torch.testing.assert_close(models[0][name], models[1][name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("n, batch_size", [(20, 8), (20, 6)])
def test_short_accumulation_steps_weigh_every_example_alike(tiny_tokenizer, n, batch_size):
    """A step cut into unequal micro-batches (8+8 then 4; 6+6 then 6+2) has the gradient of one
    big batch: each micro-batch counts by its number of examples, not as 1/grad_accum_steps."""
    data = make_sentiment_dataset(n, seed=4)
    models = []
    for bs, accum in [(2 * batch_size, 1), (batch_size, 2)]:
        model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
        config = quick(batch_size=bs, grad_accum_steps=accum, num_epochs=2, max_grad_norm=None)
        history = train(model, data, None, config, tiny_tokenizer)
        assert history.total_steps == 4  # two steps per epoch in both runs
        models.append(model.state_dict())
    for name in models[0]:
        torch.testing.assert_close(models[0][name], models[1][name], atol=1e-6, rtol=1e-5)


def test_count_items_counts_label_tokens_or_examples():
    batch = {"input_ids": torch.ones(3, 5), "labels": torch.tensor([0, 1, 1])}
    assert count_items(batch) == 3
    tokens = torch.tensor([[5, 6, -100, -100], [7, 8, 9, -100]])
    assert count_items({"input_ids": tokens, "labels": tokens}) == 5  # NER: every real label
    assert count_items({"input_ids": tokens, "labels": tokens}, causal_lm=True) == 3  # shifted


# -- early stopping, best metric ---------------------------------------------------------------


def test_early_stopping_restores_best_weights(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    snapshots = {}

    def snapshot(step, history):
        if history.evals and history.evals[-1]["step"] == step:
            snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}

    # lr far too high: validation loss gets worse quickly, so training stops early
    cfg = quick(num_epochs=30, lr=0.3, eval_every=2, early_stopping_patience=2, warmup_ratio=0.0)
    history = train(
        model, sentiment_data[0], sentiment_data[1], cfg, tok, compute_metrics, callbacks=[snapshot]
    )
    assert history.stopped_early
    assert history.steps[-1]["step"] < history.total_steps
    best = min(history.evals, key=lambda r: r["loss"])
    assert history.best_step == best["step"] and history.best_metric == best["loss"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[history.best_step][name]), name


def test_metric_direction_is_explicit():
    assert TrainConfig(metric_for_best="perplexity").higher_is_better is False
    assert TrainConfig(metric_for_best="eval_f1").higher_is_better is True
    with pytest.raises(ValueError, match="greater_is_better"):
        TrainConfig(metric_for_best="my_score")
    assert TrainConfig(metric_for_best="my_score", greater_is_better=True).higher_is_better


def test_best_step_follows_metric_direction(tiny_bert, sentiment_data):
    """metric_for_best="perplexity" (lower is better) keeps the evaluation with the lowest value."""
    model, tok = tiny_bert
    values = iter([5.0, 3.0, 4.0, 6.0])
    config = quick(num_epochs=4, eval_every="epoch", metric_for_best="perplexity")
    history = train(
        model, *sentiment_data, config, tok, compute_metrics=lambda p: {"perplexity": next(values)}
    )
    assert [row["perplexity"] for row in history.evals] == [5.0, 3.0, 4.0, 6.0]
    assert history.best_step == history.evals[1]["step"] and history.best_metric == 3.0


# -- batches -----------------------------------------------------------------------------------


def test_length_buckets_are_seeded_complete_and_never_mix_buckets():
    lengths = np.random.default_rng(0).integers(3, 60, size=103)
    sampler = LengthBucketBatchSampler(lengths, batch_size=4, grad_accum_steps=2, bucket_batches=4)
    steps = sampler.steps()
    assert sorted(i for s in steps for i in s) == list(range(103))
    assert steps == LengthBucketBatchSampler(lengths, 4, 2, bucket_batches=4).steps()
    assert [len(s) for s in steps] == [8] * 12 + [7]  # only the last step is short
    assert len(sampler) == len(steps) == 13
    # each step is a run of one length-sorted chunk of 32 (4 steps of 8) of the epoch's order
    order = np.random.default_rng([0, 0]).permutation(103)
    chunk_of = {int(i): pos // 32 for pos, i in enumerate(order)}
    assert all(len({chunk_of[i] for i in s}) == 1 for s in steps)
    sampler.set_epoch(1)
    assert sampler.steps() != steps
    sampler.skip(3)
    assert list(sampler) == sampler.steps()[3:]
    # grouping cuts padding: spread of lengths within a step is far below a random step's
    spread = np.mean([np.ptp(lengths[s]) for s in steps[:-1]])
    random_spread = np.mean([np.ptp(lengths[i : i + 8]) for i in range(0, 96, 8)])
    assert spread < random_spread / 2


def test_steps_for_several_processes_and_micro_batches():
    lengths = list(range(1, 51))
    steps = LengthBucketBatchSampler(lengths, batch_size=5, num_processes=2, group_by_length=False)
    assert [len(s) for s in steps.steps()] == [10] * 5  # the global batch of 2 processes
    micro = MicroBatchSampler(steps, 5)
    assert len(micro) == len(list(micro)) == 10
    odd = LengthBucketBatchSampler(lengths[:23], batch_size=4, grad_accum_steps=2)
    micro = MicroBatchSampler(odd, 4)
    assert [len(b) for b in micro] == [4, 4, 4, 4, 4, 3] and len(micro) == 6


# -- parameters --------------------------------------------------------------------------------


def test_freeze_layers_counts(tiny_bert):
    model, _ = tiny_bert
    total = count_parameters(model)
    pooler_and_head = sum(
        p.numel()
        for n, p in model.named_parameters()
        if n.startswith(("bert.pooler", "classifier"))
    )
    layer = sum(
        p.numel() for n, p in model.named_parameters() if n.startswith("bert.encoder.layer.1.")
    )
    assert freeze_layers(model, "head") == pooler_and_head
    assert count_parameters(model, trainable_only=True) == pooler_and_head
    assert freeze_layers(model, "top-k", k=1) == pooler_and_head + layer
    assert model.bert.encoder.layer[1].attention.self.query.weight.requires_grad
    assert not model.bert.encoder.layer[0].attention.self.query.weight.requires_grad
    assert freeze_layers(model, "none") == total


def test_count_parameters_counts_tied_tensors_once(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer)
    untied = count_parameters(model)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    assert untied - count_parameters(model) == model.lm_head.weight.numel()
    assert count_parameters(torch.nn.Linear(3, 2)) == 8


def test_frozen_parameters_do_not_change(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, sentiment_data[0], None, quick(freeze="head", num_epochs=1), tok)
    after = model.state_dict()
    assert torch.equal(
        before["bert.encoder.layer.0.output.dense.weight"],
        after["bert.encoder.layer.0.output.dense.weight"],
    )
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])


def test_everything_frozen_is_a_clear_error(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        train(model, sentiment_data[0], None, quick(), tok)


def test_lora_trains_only_adapters_and_head(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    total = count_parameters(model)
    history = train(
        model,
        sentiment_data[0],
        sentiment_data[1],
        quick(lora={"r": 4, "alpha": 8, "dropout": 0.0}, num_epochs=1),
        tok,
    )
    peft_model = history.model
    trainable = count_parameters(peft_model, trainable_only=True)
    # r=4 adapters on query and value of 2 layers (32x4 + 4x32 each) + the classifier copy
    assert trainable == 2 * 2 * (32 * 4 + 4 * 32) + (32 * 2 + 2)
    assert trainable < 0.1 * total
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "classifier" in n for n in names)
    assert task_type(peft_model) == "SEQ_CLS"


# -- causal language models --------------------------------------------------------------------


def test_causal_lm_trains_on_plain_text(tiny_llama, sentiment_data):
    model, tok = tiny_llama
    history = train(
        model,
        sentiment_data[0].remove_columns("label"),
        None,
        quick(num_epochs=3, lr=3e-3, freeze="top-k", freeze_k=1),
        tok,
    )
    assert history.steps[-1]["loss"] < history.steps[0]["loss"]
    assert not model.model.layers[0].self_attn.q_proj.weight.requires_grad


def test_causal_lm_is_evaluated_on_unlabelled_text(tiny_llama, sentiment_data):
    """Evaluation data without labels is scored on next-token prediction, like training."""
    model, tok = tiny_llama
    train_text, val_text = (d.remove_columns("label") for d in sentiment_data[:2])
    history = train(model, train_text, val_text, quick(num_epochs=2, lr=3e-3), tok)
    losses = [row["loss"] for row in history.evals]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]


# -- prediction and data -----------------------------------------------------------------------


def test_predict_keeps_dataset_order(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    val = sentiment_data[1]
    logits = predict(model, val, tok, batch_size=5, device="cpu")
    assert logits.shape == (len(val), 2)
    one_by_one = np.concatenate([predict(model, val.select([i]), tok) for i in (0, 7, 19)])
    np.testing.assert_allclose(logits[[0, 7, 19]], one_by_one, atol=1e-5)


def test_predict_returns_every_output_of_a_qa_model(tiny_tokenizer, sentiment_data):
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    model = BertForQuestionAnswering(config)
    start, end = predict(model, sentiment_data[1], tiny_tokenizer, batch_size=7)
    widths = [len(ids) for ids in tiny_tokenizer(list(sentiment_data[1]["text"]))["input_ids"]]
    assert start.shape == end.shape == (32, max(widths))
    short = int(np.argmin(widths))
    assert (start[short, : widths[short]] != -100).all()
    assert (start == -100).any()  # batches narrower than the widest are padded as Trainer pads


def test_tokenize_dataset_and_extra_columns(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    data = tokenize_dataset(sentiment_data[0], tok, max_length=8, padding="max_length")
    assert {"input_ids", "attention_mask", "token_type_ids", "labels", "text"} <= set(
        data.column_names
    )
    assert {len(x) for x in data["input_ids"]} == {8}
    # columns the model does not take (ids, offsets, texts) may stay in the training data
    extra = data.add_column("example_id", list(range(len(data))))
    history = train(model, extra, extra, quick(num_epochs=1), tok, compute_metrics)
    assert history.evals and history.evals[-1]["accuracy"] >= 0


def test_tokenized_copies_of_one_dataset_never_share_a_cache_file(
    tiny_bert, sentiment_data, tmp_path
):
    """tokenize_dataset names the fingerprint itself: settings that change the tokens change it,
    so a dataset backed by files (where `datasets` reuses cache files by fingerprint) never
    returns another setting's tokens."""
    _, tok = tiny_bert
    sentiment_data[0].save_to_disk(str(tmp_path / "data"))
    on_disk = datasets.load_from_disk(str(tmp_path / "data"))
    short = tokenize_dataset(on_disk, tok, max_length=4)
    long = tokenize_dataset(on_disk, tok, max_length=16)
    again = tokenize_dataset(on_disk, tok, max_length=4)
    assert max(len(x) for x in short["input_ids"]) == 4
    assert max(len(x) for x in long["input_ids"]) > 4
    assert short._fingerprint == again._fingerprint != long._fingerprint
    assert again["input_ids"] == short["input_ids"]


def test_missing_tokenizer_is_a_clear_error(tiny_bert, sentiment_data):
    model, _ = tiny_bert
    with pytest.raises(ValueError, match="tokenizer"):
        train(model, sentiment_data[0], None, quick(), tokenizer=None)


# -- the device --------------------------------------------------------------------------------


def test_device_cpu_is_honoured_on_a_gpu_machine(tiny_bert, sentiment_data, monkeypatch):
    """DEVICE = "cpu" keeps training and prediction on the CPU even when CUDA is there."""
    model, tok = tiny_bert
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert make_accelerator("cpu").device.type == "cpu"
    history = train(model, sentiment_data[0], None, quick(num_epochs=1, device="cpu"), tok)
    assert {p.device.type for p in history.model.parameters()} == {"cpu"}
    logits = predict(model, sentiment_data[1], tok, device="cpu")
    assert logits.shape == (32, 2)


def test_config_validation():
    with pytest.raises(ValueError, match="scheduler"):
        TrainConfig(scheduler="step")
    with pytest.raises(ValueError, match="output_dir"):
        TrainConfig(resume=True)
    with pytest.raises(ValueError, match="eval_every"):
        TrainConfig(eval_every=0)
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    assert TrainConfig(metric_for_best="f1").higher_is_better
    assert not TrainConfig().higher_is_better
    assert math.isclose(TrainConfig(lr=2e-5).to_dict()["lr"], 2e-5)
