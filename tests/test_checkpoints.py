"""Checkpoints of the course loop: atomic, exact resume (evaluation and early-stopping state
too), a finished run reloaded, LoRA and tied weights, and Trainer's folders left alone."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_bert, build_tiny_llama, make_sentiment_dataset

from course_utils.evaluation import compute_metrics
from course_utils.training import TrainConfig, make_trainer, train
from course_utils.training.checkpoints import PREFIX, latest_checkpoint


def quick(**kw) -> TrainConfig:
    base = dict(num_epochs=3, batch_size=8, lr=1e-3, progress=False, max_length=32, device="cpu")
    return TrainConfig(**(base | kw))


class Interrupt(Exception):
    pass


def kill_at(step_to_kill: int):
    def callback(step, history):
        if step == step_to_kill:
            raise Interrupt

    return callback


def assert_same_weights(a, b):
    sb = b.state_dict()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, sb[name]), name


def run_interrupted_and_resumed(build, data, eval_data, cfg, tok, tmp_path, kill_step, **kw):
    """(reference model, its history, resumed model, its history)."""
    reference = build(0)
    ref = train(reference, data, eval_data, quick(**cfg, output_dir=tmp_path / "a"), tok, **kw)
    with pytest.raises(Interrupt):
        train(build(0), data, eval_data, quick(**cfg, output_dir=tmp_path / "b"), tok,
              callbacks=[kill_at(kill_step)], **kw)  # fmt: skip
    resumed = build(99)  # other weights: everything must come from the checkpoint
    history = train(
        resumed, data, eval_data, quick(**cfg, output_dir=tmp_path / "b", resume=True), tok, **kw
    )
    return ref.model, ref, history.model, history


def test_resume_equals_uninterrupted_run(tiny_tokenizer, tmp_path):
    data = make_sentiment_dataset(60, seed=0)  # 60 / 16: the last step of an epoch is short
    cfg = dict(seed=1, grad_accum_steps=2, checkpoint_every=3, warmup_ratio=0.2)
    build = lambda seed: build_tiny_bert(tiny_tokenizer, seed=seed)  # noqa: E731 (dropout on)
    with pytest.raises(Interrupt):
        train(build(0), data, None, quick(**cfg, output_dir=tmp_path / "c"), tiny_tokenizer,
              callbacks=[kill_at(7)])  # fmt: skip
    assert [p.name for p in (tmp_path / "c").iterdir()] == [f"{PREFIX}6"]  # only the newest
    ref_model, ref, model, history = run_interrupted_and_resumed(
        build, data, None, cfg, tiny_tokenizer, tmp_path, kill_step=7
    )
    assert history.resumed_from_step == 6
    assert [r["loss"] for r in history.steps] == [r["loss"] for r in ref.steps]
    assert_same_weights(model, ref_model)


def test_resume_keeps_evaluation_and_early_stopping_state(tiny_tokenizer, sentiment_data, tmp_path):
    cfg = dict(num_epochs=12, lr=0.05, eval_every=2, checkpoint_every=2, warmup_ratio=0.0,
               metric_for_best="loss", early_stopping_patience=3)  # fmt: skip
    build = lambda seed: build_tiny_bert(tiny_tokenizer, seed=seed)  # noqa: E731
    ref_model, ref, model, history = run_interrupted_and_resumed(
        build, *sentiment_data, cfg, tiny_tokenizer, tmp_path, kill_step=9,
        compute_metrics=compute_metrics,
    )  # fmt: skip
    assert ref.stopped_early and history.stopped_early, "the setting must stop early"
    assert history.resumed_from_step == 8
    assert history.evals == ref.evals
    assert (history.best_step, history.best_metric) == (ref.best_step, ref.best_metric)
    assert_same_weights(model, ref_model)  # the best weights were restored in both


def test_resuming_a_finished_run_reloads_it(tiny_tokenizer, sentiment_data, tmp_path):
    config = quick(num_epochs=1, checkpoint_every=3, output_dir=tmp_path)
    done = train(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None, config, tiny_tokenizer)
    calls = []
    again = train(
        build_tiny_bert(tiny_tokenizer, seed=5), sentiment_data[0], None,
        quick(num_epochs=1, checkpoint_every=3, output_dir=tmp_path, resume=True),
        tiny_tokenizer, callbacks=[lambda step, h: calls.append(step)],
    )  # fmt: skip
    assert calls == [] and again.resumed_from_step == done.total_steps
    assert again.steps == done.steps
    assert_same_weights(again.model, done.model)


def test_resume_with_lora(tiny_tokenizer, sentiment_data, tmp_path):
    cfg = dict(lora={"r": 4, "alpha": 8, "dropout": 0.1}, checkpoint_every=4, num_epochs=2)
    build = lambda seed: build_tiny_bert(tiny_tokenizer, seed=0)  # noqa: E731 (same base)
    ref_model, ref, model, history = run_interrupted_and_resumed(
        build, sentiment_data[0], None, cfg, tiny_tokenizer, tmp_path, kill_step=5
    )
    assert history.resumed_from_step == 4
    assert [r["loss"] for r in history.steps] == [r["loss"] for r in ref.steps]
    assert_same_weights(model, ref_model)


def test_resume_with_tied_weights(tiny_tokenizer, sentiment_data, tmp_path):
    def build(seed):
        model = build_tiny_llama(tiny_tokenizer, seed=seed)
        model.config.tie_word_embeddings = True
        model.tie_weights()
        return model

    text = sentiment_data[0].remove_columns("label")
    cfg = dict(checkpoint_every=4, num_epochs=2, lr=3e-3)
    ref_model, ref, model, history = run_interrupted_and_resumed(
        build, text, None, cfg, tiny_tokenizer, tmp_path, kill_step=6
    )
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert [r["loss"] for r in history.steps] == [r["loss"] for r in ref.steps]
    assert_same_weights(model, ref_model)


def test_trainer_checkpoints_and_loop_checkpoints_do_not_collide(
    tiny_tokenizer, sentiment_data, tmp_path
):
    """Trainer's checkpoint-N folders in the same output_dir are neither read nor deleted."""
    config = quick(max_steps=4, checkpoint_every=2, output_dir=tmp_path)
    trainer = make_trainer(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None, config,
                           tiny_tokenizer)  # fmt: skip
    trainer.train()
    trainer_folders = sorted(p.name for p in tmp_path.glob("checkpoint-*"))
    assert trainer_folders  # Trainer wrote its own
    history = train(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None,
                    quick(max_steps=4, checkpoint_every=2, output_dir=tmp_path, resume=True),
                    tiny_tokenizer)  # fmt: skip
    assert history.resumed_from_step is None  # nothing of ours to resume: a fresh start
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == trainer_folders
    assert latest_checkpoint(tmp_path).name == f"{PREFIX}4"


def test_make_trainer_default_output_dir_is_its_own(tiny_tokenizer, sentiment_data, tmp_path,
                                                   monkeypatch):  # fmt: skip
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))
    trainer = make_trainer(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None,
                           quick(max_steps=1), tiny_tokenizer)  # fmt: skip
    assert trainer.args.output_dir.startswith(str(tmp_path / "trainer"))


def test_resume_with_other_settings_is_refused(tiny_tokenizer, sentiment_data, tmp_path):
    with pytest.raises(Interrupt):
        train(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None,
              quick(checkpoint_every=2, output_dir=tmp_path), tiny_tokenizer,
              callbacks=[kill_at(3)])  # fmt: skip
    with pytest.raises(ValueError, match="lr: 0.001 -> 0.002"):
        train(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None,
              quick(checkpoint_every=2, output_dir=tmp_path, resume=True, lr=2e-3),
              tiny_tokenizer)  # fmt: skip
    history = train(build_tiny_bert(tiny_tokenizer), sentiment_data[0], None,
                    quick(checkpoint_every=2, output_dir=tmp_path, resume=True, progress=True),
                    tiny_tokenizer)  # fmt: skip
    assert history.resumed_from_step == 2  # a cosmetic change (progress bars) is fine
