"""course_utils.efficiency: what a training step costs, measured in a fresh process (chapter 9)."""

from __future__ import annotations

import pytest
from conftest import build_tiny_bert, build_tiny_llama

from course_utils.efficiency import measure_steps, run_steps


@pytest.fixture(scope="module")
def saved(tmp_path_factory, request):
    """Tiny BERT classifier and tiny Llama saved to folders, loadable by name like the course models."""
    tokenizer = request.getfixturevalue("tiny_tokenizer")
    root = tmp_path_factory.mktemp("tiny_models")
    for name, model in (
        ("bert", build_tiny_bert(tokenizer)),
        ("llama", build_tiny_llama(tokenizer)),
    ):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return root, tokenizer


def batch(tokenizer, kind):
    ids = [tokenizer(t)["input_ids"] for t in ["a good movie", "the plot was dull and boring"]]
    labels = [1, 0] if kind == "classifier" else [[-100] * (len(s) - 1) + [s[-1]] for s in ids]
    return ids, labels


@pytest.mark.parametrize("kind, folder", [("classifier", "bert"), ("causal_lm", "llama")])
def test_full_and_lora_steps_report_their_parts(saved, kind, folder):
    root, tokenizer = saved
    ids, labels = batch(tokenizer, kind)
    common = dict(model_name=str(root / folder), kind=kind, input_ids=ids, labels=labels,
                  pad_id=tokenizer.pad_token_id, steps=2, device="cpu")  # fmt: skip
    full = run_steps(method="full", **common)
    lora = run_steps(method="lora", lora={"r": 2, "alpha": 4}, **common)
    assert full["trainable"] == full["parameters"] and len(full["step_s"]) == 2
    assert 0 < lora["trainable"] < full["trainable"] / 2
    # gradients and AdamW's two moments: one and two values per trainable parameter (fp32)
    for r in (full, lora):
        assert r["gradients_mb"] == pytest.approx(r["trainable"] * 4 / 2**20, rel=1e-6)
        assert r["optimizer_mb"] == pytest.approx(2 * r["trainable"] * 4 / 2**20, rel=1e-6)
        assert r["activations_mb"] > 0 and r["peak_rss_mb"] >= r["loaded_rss_mb"] * 0.5
    assert full["batch"] == [2, max(len(s) for s in ids)]


def test_gradient_checkpointing_saves_activations(saved):
    root, tokenizer = saved
    ids, labels = batch(tokenizer, "causal_lm")
    common = dict(model_name=str(root / "llama"), kind="causal_lm", input_ids=ids, labels=labels,
                  pad_id=tokenizer.pad_token_id, steps=1, device="cpu")  # fmt: skip
    plain = run_steps(**common)
    checkpointed = run_steps(gradient_checkpointing=True, **common)
    assert checkpointed["activations_mb"] < plain["activations_mb"]
    assert checkpointed["loss"] == pytest.approx(plain["loss"], rel=1e-5)  # same first step


def test_bad_settings_are_refused(saved):
    root, tokenizer = saved
    ids, labels = batch(tokenizer, "classifier")
    with pytest.raises(ValueError, match="kind must be"):
        run_steps(str(root / "bert"), "regression", ids, labels)
    with pytest.raises(ValueError, match="method must be"):
        run_steps(str(root / "bert"), "classifier", ids, labels, method="qlora")


def test_measure_steps_runs_in_a_fresh_process(saved):
    root, tokenizer = saved
    ids, labels = batch(tokenizer, "classifier")
    report = measure_steps(model_name=str(root / "bert"), kind="classifier", input_ids=ids,
                           labels=labels, pad_id=tokenizer.pad_token_id, steps=1, device="cpu")  # fmt: skip
    assert report["method"] == "full" and report["peak_rss_mb"] > 0
    with pytest.raises(RuntimeError, match="measurement process failed"):
        measure_steps(model_name=str(root / "missing"), kind="classifier", input_ids=ids,
                      labels=labels, device="cpu")  # fmt: skip
