"""course_utils.debugging (chapter 8): gradient norms, parameter change, NaN hunting, run records."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import build_tiny_bert, build_tiny_llama, make_sentiment_dataset

from course_utils.debugging import (
    GradNormRecorder,
    first_nonfinite_module,
    layer_group,
    nonfinite_parameters,
    parameter_change,
    run_record,
    snapshot,
)
from course_utils.training import TrainConfig, train


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("bert.embeddings.word_embeddings.weight", "embeddings"),
        ("bert.embeddings.LayerNorm.bias", "embeddings"),
        ("bert.encoder.layer.3.output.dense.weight", "layer 3"),
        ("bert.encoder.layer.11.attention.self.query.bias", "layer 11"),
        ("bert.pooler.dense.weight", "pooler"),
        ("classifier.weight", "head"),
        (
            "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight",
            "layer 0",
        ),
        ("module.classifier.bias", "head"),
        ("model.layers.1.mlp.up_proj.weight", "layer 1"),
        ("model.embed_tokens.weight", "embeddings"),
        ("model.norm.weight", "other"),
    ],
)
def test_layer_group(name, group):
    assert layer_group(name) == group


def _config(**kw):
    base = dict(num_epochs=1, batch_size=8, lr=1e-3, progress=False, device="cpu", max_length=32,
                warmup_ratio=0.0, scheduler="constant")  # fmt: skip
    return TrainConfig(**(base | kw))


def test_grad_norms_are_recorded_per_step_and_layer(tiny_tokenizer):
    model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    recorder = GradNormRecorder(model)
    history = train(model, make_sentiment_dataset(32), None, _config(), tiny_tokenizer,
                    callbacks=[recorder])  # fmt: skip
    table = recorder.to_dataframe()
    assert list(table.index) == list(range(1, history.total_steps + 1))
    assert list(table.columns) == ["embeddings", "layer 0", "layer 1", "pooler", "head", "total"]
    assert (table.drop(columns="total") > 0).all().all()
    by_layer = (table.drop(columns="total") ** 2).sum(axis=1) ** 0.5
    assert by_layer.tolist() == pytest.approx(table["total"].tolist(), rel=1e-6)
    recorder.remove()
    train(model, make_sentiment_dataset(16), None, _config(), tiny_tokenizer)
    assert len(recorder.rows) == history.total_steps  # no hooks left behind


def test_recorded_norm_is_the_norm_the_clipping_sees(tiny_tokenizer):
    """Same number as torch.nn.utils.clip_grad_norm_ computes, before it clips."""
    model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    recorder = GradNormRecorder(model)
    batch = tiny_tokenizer(["good fun", "dull and weak"], padding=True, return_tensors="pt")
    model(**batch, labels=torch.tensor([1, 0])).loss.backward()
    recorder(1)
    expected = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e9)
    assert recorder.rows[0]["total"] == pytest.approx(float(expected), rel=1e-5)


def test_frozen_layers_have_no_gradient_and_do_not_move(tiny_tokenizer):
    model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    model.bert.requires_grad_(False)  # the planted bug: the whole encoder frozen
    before = snapshot(model)
    recorder = GradNormRecorder(model)
    train(model, make_sentiment_dataset(32), None, _config(), tiny_tokenizer, callbacks=[recorder])
    table = recorder.to_dataframe()
    assert table[["embeddings", "layer 0", "layer 1", "pooler"]].isna().all().all()
    assert (table["head"] > 0).all()
    change = parameter_change(before, model)
    assert change["head"] > 0
    assert all(change[g] == 0.0 for g in ("embeddings", "layer 0", "layer 1", "pooler"))
    assert list(change) == ["embeddings", "layer 0", "layer 1", "pooler", "head"]


def test_nan_hunt_finds_the_first_culprit(tiny_tokenizer):
    model = build_tiny_bert(tiny_tokenizer).eval()
    batch = tiny_tokenizer(["good film"], return_tensors="pt")
    assert first_nonfinite_module(model, batch) is None and nonfinite_parameters(model) == []
    with torch.no_grad():
        model.bert.encoder.layer[1].intermediate.dense.weight[0, 0] = float("nan")
    assert nonfinite_parameters(model) == ["bert.encoder.layer.1.intermediate.dense.weight"]
    assert first_nonfinite_module(model, batch) == (
        "bert.encoder.layer.1.intermediate.dense",
        "nan",
    )
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.fill_(float("inf"))
    assert first_nonfinite_module(model, batch) == ("bert.embeddings.word_embeddings", "inf")


def test_nan_hunt_reads_causal_lm_outputs(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer).eval()
    with torch.no_grad():
        model.lm_head.weight[3, 0] = float("nan")
    batch = tiny_tokenizer(["good film"], return_tensors="pt")
    assert first_nonfinite_module(model, batch) == ("lm_head", "nan")


def test_run_record_is_json_and_names_what_matters(tiny_tokenizer):
    data = make_sentiment_dataset(8)
    record = run_record(_config(), {"train": data}, note="test")
    text = json.dumps(record)  # everything serialisable
    assert record["versions"]["torch"] == torch.__version__
    assert record["config"]["lr"] == 1e-3 and record["note"] == "test"
    assert record["data"]["train"] == {"rows": 8, "fingerprint": data._fingerprint}
    assert record["machine"]["torch_threads"] == torch.get_num_threads()
    assert "commit" in record["code"] and math.isfinite(len(text))
    assert run_record(None, None)["config"] is None


def test_watch_names_the_step_and_module_where_training_went_non_finite(tiny_tokenizer):
    from course_utils.debugging import NonFiniteWatch

    model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    watch = NonFiniteWatch(model)

    def poison(step, history):  # after step 2, a weight turns into NaN
        if step == 2:
            with torch.no_grad():
                model.bert.encoder.layer[0].attention.self.query.weight[0, 0] = float("nan")

    train(model, make_sentiment_dataset(32), None, _config(max_grad_norm=None), tiny_tokenizer,
          callbacks=[watch, poison])  # fmt: skip
    watch.remove()
    assert watch.first == {"step": 3, "module": "bert.encoder.layer.0.attention.self.query",
                           "value": "nan"}  # fmt: skip
