"""Data parallelism on two CPU processes (torchrun + gloo) with the course loop.

Checks what a user of `torchrun --standalone --nproc_per_node 2` relies on: each process sees
half of the batches, the parameters are identical on both afterwards and equal a one-process run
with the same global batch, every evaluation example is counted exactly once, one checkpoint is
written and a killed run resumes from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_bert, make_sentiment_dataset
from safetensors.torch import load_file

from course_utils.training import TrainConfig, train

JOB = Path(__file__).with_name("distributed_job.py")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                        "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(JOB), str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, reports


def test_each_process_sees_half_the_batches(two_processes):
    _, reports = two_processes
    assert [r["steps"] for r in reports] == [8, 8]  # 64 examples / global batch 16, 2 epochs
    # The collator also pads the evaluation batches: per epoch, rank 0 evaluates 19 of the 37
    # examples and rank 1 the other 18 (one batch each) -- no padding duplicates.
    train_examples, train_batches = 2 * 32, 2 * 4  # 2 epochs x (half of 64, 4 micro-batches)
    assert [r["train_examples"] for r in reports] == [
        train_examples + 2 * 19,
        train_examples + 2 * 18,
    ]
    assert [r["train_batches"] for r in reports] == [train_batches + 2, train_batches + 2]


def test_parameters_agree_and_equal_one_process(two_processes, tiny_tokenizer):
    out, _ = two_processes
    rank0, rank1 = (load_file(str(out / f"rank{r}-full.safetensors")) for r in (0, 1))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # one process, same global batch (8 x 2 accumulated), same data and seed
    model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    config = TrainConfig(num_epochs=2, batch_size=8, grad_accum_steps=2, lr=2e-3, progress=False,
                         max_length=32, device="cpu", seed=0, weight_decay=0.0)  # fmt: skip
    train(model, make_sentiment_dataset(64, seed=0), None, config, tiny_tokenizer)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(rank0[name], tensor, atol=1e-5, rtol=1e-4)


def test_every_evaluation_example_counts_once(two_processes):
    _, reports = two_processes
    expected = list(make_sentiment_dataset(37, seed=1)["label"])
    for report in reports:
        assert report["evals"][0]["n"] == 37
        assert report["evals"][0]["labels"] == expected  # in the dataset's order
    assert reports[0]["eval_loss"] == reports[1]["eval_loss"]
    assert all(loss == loss for loss in reports[0]["eval_loss"])  # not NaN


def test_one_checkpoint_is_written_and_resumed(two_processes):
    out, reports = two_processes
    assert reports[0]["checkpoints_after_kill"] == ["course-checkpoint-2"]
    # rank 1 wrote its RNG states a second late: the folder was renamed only after both were in
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= set(reports[0]["checkpoint_files"])
    assert [r["resumed_from_step"] for r in reports] == [2, 2]
    full = load_file(str(out / "rank0-full.safetensors"))
    for r in (0, 1):
        resumed = load_file(str(out / f"rank{r}-resumed.safetensors"))
        for name in full:
            assert torch.equal(resumed[name], full[name]), (r, name)


def test_causal_lm_evaluation_has_labels_under_ddp(two_processes):
    """The task is read before `prepare` wraps the model in DistributedDataParallel."""
    _, reports = two_processes
    losses = reports[0]["causal_lm_eval_loss"]
    assert len(losses) == 1 and 0 < losses[0] < 10  # finite: labels came from the inputs
    assert reports[1]["causal_lm_eval_loss"] == losses
