"""course_utils.data_parallel (chapter 8): the job chapter 8 launches with torchrun.

Two CPU processes (gloo) on a tiny saved BERT and 48 real movie reviews: each rank sees its own
half of the reviews, both end with the same parameters, and those equal one process trained with
the same global batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import build_tiny_bert
from safetensors.torch import load_file

from course_utils.data_parallel import run_job

pytestmark = pytest.mark.assets  # the movie reviews
SETTINGS = ["--train-size", "48", "--global-batch", "16", "--max-length", "32", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("tiny-bert")
    build_tiny_bert(tiny_tokenizer).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("ddp-2")
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "2", "-m", "course_utils.data_parallel", "--out", str(out), "--model",
               str(tiny_model_dir), "--device", "cpu", *SETTINGS]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_each_rank_sees_its_own_half(two_ranks):
    _, (rank0, rank1) = two_ranks
    assert (rank0["world_size"], rank1["world_size"]) == (2, 2)
    assert rank0["examples_seen"] == rank1["examples_seen"] == 24
    assert not set(rank0["fingerprints"]) & set(rank1["fingerprints"])
    assert rank0["optimizer_steps"] == rank1["optimizer_steps"] == 3  # 48 reviews / 16
    assert rank0["omp_num_threads"] == "1"


def test_ranks_agree_and_equal_one_process(two_ranks, tiny_model_dir, tmp_path):
    out, (rank0, rank1) = two_ranks
    assert rank0["parameter_sha256"] == rank1["parameter_sha256"]
    one = run_job(tmp_path, str(tiny_model_dir), train_size=48, global_batch=16, max_length=32,
                  lr=1e-3, device="cpu")  # fmt: skip
    assert one["world_size"] == 1 and one["examples_seen"] == 48
    assert set(one["fingerprints"]) == set(rank0["fingerprints"]) | set(rank1["fingerprints"])
    assert one["losses"] == pytest.approx(rank0["losses"], rel=1e-4)
    two, single = (
        load_file(str(out / "model.safetensors")),
        load_file(str(tmp_path / "model.safetensors")),
    )
    for name, tensor in single.items():
        assert (two[name] - tensor).abs().max() < 1e-5, name


def test_a_global_batch_the_processes_cannot_share_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="multiple of 3"):
        run_job(tmp_path, global_batch=16)
