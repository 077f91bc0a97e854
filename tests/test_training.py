"""Tests of the course's training loop (`course_utils.training`) on tiny random models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import build_tiny_bert, make_sentiment_dataset

from course_utils.evaluation import compute_metrics
from course_utils.training import (
    History,
    LengthBucketBatchSampler,
    TrainConfig,
    count_parameters,
    freeze_layers,
    make_trainer,
    predict,
    tokenize_dataset,
    train,
)


def quick(**kw) -> TrainConfig:
    """A small, quiet config for tests."""
    base = dict(num_epochs=2, batch_size=8, lr=1e-3, progress=False, max_length=32)
    base.update(kw)
    return TrainConfig(**base)


class Interrupt(Exception):
    pass


def test_train_learns_and_records_history(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    train_ds, val_ds = sentiment_data
    history = train(model, train_ds, val_ds, quick(num_epochs=6, lr=3e-3), tok, compute_metrics)
    assert isinstance(history, History)
    assert len(history.steps) == history.total_steps == 6 * 8
    assert [row["step"] for row in history.evals] == [8 * e for e in range(1, 7)]
    assert history.evals[-1]["loss"] < history.evals[0]["loss"]
    assert history.samples_per_second > 0
    assert {"accuracy", "f1", "auc", "loss", "epoch"} <= set(history.evals[-1])
    frame = history.to_dataframe("train")
    assert list(frame.columns[:4]) == ["step", "epoch", "loss", "lr"]
    assert history.model is model and "model" not in history.to_dict()
    json.dumps(history.to_dict())  # serialisable
    assert History.from_dict(history.to_dict()).evals == history.evals


def test_warmup_and_schedulers(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    history = train(
        model,
        sentiment_data[0],
        None,
        quick(num_epochs=2, lr=1e-3, warmup_ratio=0.25, scheduler="cosine"),
        tok,
    )
    lrs = [row["lr"] for row in history.steps]
    assert len(lrs) == 16
    peak = int(np.argmax(lrs))
    assert peak == 3 and lrs[peak] == pytest.approx(1e-3)  # 4 warm-up steps (lr after step)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))


def test_seeded_runs_are_identical(tiny_tokenizer, sentiment_data):
    weights = []
    for _ in range(2):
        model = build_tiny_bert(tiny_tokenizer)
        train(model, sentiment_data[0], None, quick(seed=3), tiny_tokenizer)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_resume_equals_uninterrupted_run(tiny_tokenizer, tmp_path):
    train_ds = make_sentiment_dataset(60, seed=0)  # 60 / 8: the last batch of an epoch is short
    cfg = dict(num_epochs=3, seed=1, grad_accum_steps=2, checkpoint_every=3, warmup_ratio=0.2)

    reference = build_tiny_bert(tiny_tokenizer)  # dropout on: the RNG state must be restored
    ref_history = train(
        reference, train_ds, None, quick(**cfg, output_dir=tmp_path / "a"), tiny_tokenizer
    )

    def kill_at_step_7(step, history):
        if step == 7:
            raise Interrupt

    interrupted = build_tiny_bert(tiny_tokenizer)
    with pytest.raises(Interrupt):
        train(
            interrupted,
            train_ds,
            None,
            quick(**cfg, output_dir=tmp_path / "b"),
            tiny_tokenizer,
            callbacks=[kill_at_step_7],
        )
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["checkpoint-6"]  # only the newest

    resumed = build_tiny_bert(tiny_tokenizer, seed=99)  # fresh weights: all must come from disk
    history = train(
        resumed,
        train_ds,
        None,
        quick(**cfg, output_dir=tmp_path / "b", resume=True),
        tiny_tokenizer,
    )
    assert history.resumed_from_step == 6
    assert [r["loss"] for r in history.steps] == [r["loss"] for r in ref_history.steps]
    ref = reference.state_dict()
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(tensor, ref[name]), name


def test_grad_accumulation_matches_bigger_batch(tiny_tokenizer, sentiment_data):
    models = []
    for batch_size, accum in [(8, 1), (4, 2)]:
        model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
        train(
            model,
            sentiment_data[0],
            None,
            quick(batch_size=batch_size, grad_accum_steps=accum, num_epochs=1),
            tiny_tokenizer,
        )
        models.append(model.state_dict())
    for name in models[0]:
        torch.testing.assert_close(models[0][name], models[1][name], atol=1e-5, rtol=1e-4)


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


def test_length_buckets_are_seeded_and_complete():
    lengths = np.random.default_rng(0).integers(3, 60, size=103)
    sampler = LengthBucketBatchSampler(lengths, batch_size=8, seed=5, bucket_batches=4)
    first = sampler.batches()
    assert sorted(i for b in first for i in b) == list(range(103))
    assert first == LengthBucketBatchSampler(lengths, 8, seed=5, bucket_batches=4).batches()
    sampler.set_epoch(1)
    assert sampler.batches() != first
    for bs, accum, group in [(8, 1, True), (5, 3, True), (7, 2, False), (200, 1, True)]:
        s = LengthBucketBatchSampler(lengths, bs, accum, group_by_length=group, bucket_batches=3)
        assert len(s) == len(s.batches())
    # grouping cuts padding: spread of lengths within a batch is far below a random batch's
    spread = np.mean([np.ptp(lengths[b]) for b in first if len(b) == 8])
    random_spread = np.mean([np.ptp(lengths[i : i + 8]) for i in range(0, 96, 8)])
    assert spread < random_spread / 2


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
    config = quick(num_epochs=2, lr=3e-3, metric_for_best="loss")
    history = train(model, train_text, val_text, config, tok)
    losses = [row["loss"] for row in history.evals]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_predict_keeps_dataset_order(tiny_bert, sentiment_data):
    model, tok = tiny_bert
    val = sentiment_data[1]
    logits = predict(model, val, tok, batch_size=5)
    assert logits.shape == (len(val), 2)
    one_by_one = np.concatenate([predict(model, val.select([i]), tok) for i in (0, 7, 19)])
    np.testing.assert_allclose(logits[[0, 7, 19]], one_by_one, atol=1e-5)


def test_tokenize_dataset_keeps_model_columns(tiny_tokenizer, sentiment_data):
    data = tokenize_dataset(sentiment_data[0], tiny_tokenizer, max_length=8, padding="max_length")
    assert set(data.column_names) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert {len(x) for x in data["input_ids"]} == {8}


def test_make_trainer_runs_the_same_job(tiny_bert, sentiment_data, tmp_path):
    model, tok = tiny_bert
    cfg = quick(
        max_steps=2,
        output_dir=tmp_path,
        warmup_ratio=0.5,
        scheduler="cosine",
        early_stopping_patience=1,
        eval_every=1,
    )
    trainer = make_trainer(model, sentiment_data[0], sentiment_data[1], cfg, tok, compute_metrics)
    args = trainer.args
    assert (args.learning_rate, args.per_device_train_batch_size, args.seed) == (1e-3, 8, 0)
    assert args.optim == "adamw_torch_fused" and args.lr_scheduler_type == "cosine"
    assert args.load_best_model_at_end and args.metric_for_best_model == "loss"
    assert args.warmup_steps == 0.5 and args.train_sampling_strategy == "group_by_length"
    result = trainer.train()
    assert result.global_step == 2
    assert "eval_accuracy" in trainer.evaluate()


def test_config_validation():
    with pytest.raises(ValueError):
        TrainConfig(scheduler="step")
    with pytest.raises(ValueError):
        TrainConfig(resume=True)
    with pytest.raises(ValueError):
        TrainConfig(eval_every=0)
    assert TrainConfig(metric_for_best="f1").greater_is_better
    assert not TrainConfig().greater_is_better
