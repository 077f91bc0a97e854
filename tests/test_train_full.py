"""scripts/train_full.py resumes: a rerun continues from the last checkpoint (README's promise)."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import build_tiny_bert

from course_utils.experiments import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import train_full  # noqa: E402


def test_config_resumes_unless_fresh():
    assert train_full.build_config(train_full.parse_args([])).resume is True
    assert train_full.build_config(train_full.parse_args(["--fresh"])).resume is False
    assert train_full.build_config(train_full.parse_args([])).checkpoint_every == 200


@pytest.mark.assets  # the movie reviews
def test_rerun_reloads_the_finished_run(tiny_tokenizer, tmp_path):
    folder = tmp_path / "tiny"
    build_tiny_bert(tiny_tokenizer).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    args = ["--model", str(folder), "--train-size", "64", "--batch-size", "16",
            "--max-steps", "4", "--checkpoint-every", "2", "--output-dir", str(tmp_path / "run"),
            "--no-test", "--no-save", "--device", "cpu", "--max-length", "32"]  # fmt: skip
    first = train_full.main(args)
    assert first["resumed_from_step"] is None
    second = train_full.main(args)
    assert second["resumed_from_step"] == 4  # reloaded, not retrained
    assert second["history"]["steps"] == first["history"]["steps"]
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["resumed_from_step"] == 4
