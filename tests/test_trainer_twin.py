"""`make_trainer` is the same job as `train`: same batches, learning rates and losses."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_bert, build_tiny_llama, make_sentiment_dataset

from course_utils.evaluation import compute_metrics
from course_utils.training import TrainConfig, make_trainer, train, training_arguments


def config(**kw) -> TrainConfig:
    base = dict(num_epochs=2, batch_size=8, lr=2e-3, progress=False, max_length=32, device="cpu",
                weight_decay=0.0, warmup_ratio=0.25, scheduler="cosine", log_every=1)  # fmt: skip
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize("accum", [1, 2])
def test_loop_and_trainer_follow_the_same_trajectory(tiny_tokenizer, tmp_path, accum):
    data = make_sentiment_dataset(64, seed=2)
    cfg = config(grad_accum_steps=accum, batch_size=8 // accum, output_dir=tmp_path)
    loop_model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    history = train(loop_model, data, None, cfg, tiny_tokenizer)

    trainer_model = build_tiny_bert(tiny_tokenizer, dropout=0.0)
    trainer = make_trainer(trainer_model, data, None, cfg, tiny_tokenizer)
    trainer.train()
    logged = [row for row in trainer.state.log_history if "learning_rate" in row]

    assert len(logged) == len(history.steps) == 16
    loop_lr = [row["lr"] for row in history.steps]
    trainer_lr = [row["learning_rate"] for row in logged]
    assert trainer_lr == pytest.approx(loop_lr, rel=1e-6, abs=1e-12)
    loop_loss = [row["loss"] for row in history.steps]
    trainer_loss = [row["loss"] for row in logged]
    assert trainer_loss == pytest.approx(loop_loss, rel=1e-3, abs=1e-4)
    for name, tensor in loop_model.state_dict().items():
        torch.testing.assert_close(trainer_model.state_dict()[name], tensor, atol=1e-5, rtol=1e-4)


def test_training_arguments_mean_the_same(tmp_path):
    cfg = config(eval_every=5, early_stopping_patience=2, metric_for_best="accuracy")
    args = training_arguments(cfg, evaluate=True, output_dir=tmp_path)
    assert (args.learning_rate, args.per_device_train_batch_size, args.seed) == (2e-3, 8, 0)
    assert args.optim == "adamw_torch_fused" and args.lr_scheduler_type == "cosine"
    assert args.use_cpu and not args.bf16
    assert (args.eval_strategy, args.eval_steps, args.save_steps) == ("steps", 5, 5)
    assert args.load_best_model_at_end and args.greater_is_better is True


def test_trainer_evaluates_and_stops_early_like_the_loop(tiny_tokenizer, sentiment_data):
    cfg = config(num_epochs=4, eval_every="epoch", metric_for_best="accuracy",
                 early_stopping_patience=1, output_dir=None)  # fmt: skip
    trainer = make_trainer(build_tiny_bert(tiny_tokenizer), *sentiment_data, cfg, tiny_tokenizer,
                           compute_metrics)  # fmt: skip
    trainer.train()
    evaluations = [row for row in trainer.state.log_history if "eval_accuracy" in row]
    assert evaluations and trainer.state.best_metric == max(
        row["eval_accuracy"] for row in evaluations
    )
    # predict keeps the dataset's order (no length grouping at evaluation)
    out = trainer.predict(trainer.eval_dataset)
    assert out.predictions.shape == (len(sentiment_data[1]), 2)
    assert list(out.label_ids) == list(sentiment_data[1]["label"])


def test_make_trainer_trains_a_causal_lm_on_plain_text(tiny_tokenizer, sentiment_data):
    """Unlabelled text gets next-token labels from the same collator as the loop's."""
    model = build_tiny_llama(tiny_tokenizer)
    text = [d.remove_columns("label") for d in sentiment_data]
    trainer = make_trainer(model, *text, config(num_epochs=3, lr=3e-3), tiny_tokenizer)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < before
