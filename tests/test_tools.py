"""course_utils.tools (chapter 8): TensorBoard logs, profiler categories, FLOP counts."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import build_tiny_bert, make_sentiment_dataset

from course_utils.tools import (
    TensorBoardLogger,
    matmul_peak_flops,
    op_category,
    read_scalars,
    region_times,
    time_by_category,
    training_flops,
)
from course_utils.training import History, TrainConfig, train


def test_course_loop_run_is_written_and_read_back(tmp_path, tiny_tokenizer):
    model = build_tiny_bert(tiny_tokenizer)
    logger = TensorBoardLogger(tmp_path / "loop", config={"lr": 1e-3})
    config = TrainConfig(num_epochs=2, batch_size=8, lr=1e-3, progress=False, device="cpu",
                         eval_every=2, max_length=32)  # fmt: skip
    data, val = make_sentiment_dataset(32, seed=0), make_sentiment_dataset(16, seed=1)
    history = train(model, data, val, config, tiny_tokenizer, callbacks=[logger])
    logger.close()
    scalars = read_scalars(tmp_path)
    assert set(scalars["run"]) == {"loop"}
    loss = scalars[scalars.tag == "train/loss"].sort_values("step")
    assert loss["step"].tolist() == [row["step"] for row in history.steps]
    assert loss["value"].tolist() == pytest.approx([row["loss"] for row in history.steps], rel=1e-6)
    evals = scalars[scalars.tag == "eval/loss"]
    assert evals["step"].tolist() == [row["step"] for row in history.evals]
    assert (scalars.tag == "train/learning_rate").sum() == len(history.steps)


def test_logger_writes_each_row_once(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    history = History()
    for step in (1, 2, 3):
        history.steps.append({"step": step, "loss": 1.0 / step, "lr": 0.1})
        logger(step, history)  # called after every step, as the loop does
    history.evals.append({"step": 3, "epoch": 1.0, "loss": 0.5, "accuracy": 0.75})
    logger(3, history)
    logger.close()
    scalars = read_scalars(tmp_path)
    assert sorted(scalars[scalars.tag == "train/loss"]["step"]) == [1, 2, 3]
    assert scalars[scalars.tag == "eval/accuracy"]["value"].tolist() == [0.75]
    assert "eval/epoch" not in set(scalars.tag)


def test_read_scalars_refuses_a_folder_without_event_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        read_scalars(tmp_path)


def test_op_categories_follow_shapes_and_names():
    mlp = op_category("aten::addmm", [[1536], [2048, 384], [384, 1536], [], []], 1536)
    assert mlp == "MLP matmuls"
    assert op_category("aten::mm", [[1536, 2048], [2048, 384]], 1536) == "MLP matmuls"  # backward
    assert op_category("aten::mm", [[2048, 384], [384, 384]], 1536).startswith("attention proj")
    assert op_category("aten::bmm", [[384, 64, 64], [384, 64, 32]], 1536).startswith("attention sc")
    assert op_category("aten::_softmax_backward_data", [], 1536).startswith("attention sc")
    assert op_category("aten::bernoulli_", [[32, 64, 384]], 1536).startswith("dropout")
    assert op_category("aten::_fused_adamw_", [], 1536).startswith("optimizer")
    assert op_category("aten::native_layer_norm", [], 1536) == "layer norm"
    assert op_category("aten::copy_", [[2, 3]], 1536).startswith("other")


def test_profile_of_a_training_step_adds_up(tiny_tokenizer):
    from torch.profiler import ProfilerActivity, profile, record_function

    model = build_tiny_bert(tiny_tokenizer)
    batch = tiny_tokenizer(
        ["good film", "a very bad and dull plot"], padding=True, return_tensors="pt"
    )
    batch["labels"] = torch.tensor([1, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as the course loop
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("forward"):
            loss = model(**batch).loss
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            optimizer.step()
    events = prof.key_averages(group_by_input_shape=True)
    by_category = time_by_category(events, model.config.intermediate_size)
    assert by_category["MLP matmuls"] > 0 and "optimizer (AdamW)" in by_category
    total = sum(e.self_cpu_time_total for e in events if "::" in e.key) / 1e6
    assert sum(by_category.values()) == pytest.approx(total, rel=1e-6)
    regions = region_times(prof.key_averages(), ["forward", "backward", "optimizer"])
    assert list(regions) == ["forward", "backward", "optimizer"] and min(regions.values()) > 0
    with pytest.raises(KeyError, match="record_function"):
        region_times(prof.key_averages(), ["data loading"])


def test_training_flops_of_a_linear_layer_are_six_n_b():
    """Forward 2·N·B, backward 4·N·B (gradients for the inputs and for the weights)."""

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(16, 8, bias=False)

        def forward(self, x, labels):
            out = self.layer(x)
            return type("Out", (), {"loss": torch.nn.functional.mse_loss(out, labels)})

    model = Linear()
    x = torch.randn(5, 16, requires_grad=True)
    counted = training_flops(model, {"x": x, "labels": torch.zeros(5, 8)})
    assert counted["total"] == 6 * 16 * 8 * 5
    assert sum(counted["by_operator"].values()) == counted["total"]
    assert model.layer.weight.grad is None  # cleared afterwards


def test_matmul_peak_is_a_plausible_rate():
    rate = matmul_peak_flops(n=128, reps=3)
    assert math.isfinite(rate) and 1e6 < rate < 1e15
