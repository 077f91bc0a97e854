"""A small data-parallel job for tests/test_distributed.py, launched with torchrun.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_job.py OUT

Each process trains the same tiny BERT (dropout off) with the course loop, three times: an
uninterrupted run, a run killed after its step-2 checkpoint (rank 1 writing its part of each
checkpoint a second late), and its resumption. It writes
`OUT/rank<r>.json` (the micro-batches and examples it saw, the evaluation sizes) and
`OUT/rank<r>-<run>.safetensors` (the weights after each run).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # conftest's tiny builders

import torch  # noqa: E402
from conftest import (  # noqa: E402
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    SPECIAL,
    build_tiny_bert,
    build_tiny_llama,
    make_sentiment_dataset,
)
from safetensors.torch import save_file  # noqa: E402

from course_utils.evaluation import compute_metrics  # noqa: E402
from course_utils.training import TrainConfig, train  # noqa: E402

TRAIN_N, EVAL_N = 64, 37  # 37: not a multiple of the processes nor of the batch size


def tiny_tokenizer():
    """conftest's 40-word WordPiece tokenizer (transformers 5 builds it from the vocabulary)."""
    from transformers import BertTokenizer

    words = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL
    return BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)


class CountingCollator:
    """Pads like the default collator and counts what this process sees."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)
        self.batches = self.examples = 0

    def __call__(self, examples):
        self.batches, self.examples = self.batches + 1, self.examples + len(examples)
        return self.pad(examples)


class Interrupt(Exception):
    pass


def write_rng_states_late(rank: int, seconds: float = 1.0) -> None:
    """On rank 1, accelerate's save of this process's RNG states waits `seconds` first, as on a
    busy machine: the checkpoint must still hold every process's states (the save waits for all)."""
    if rank != 1:
        return
    import time

    save = torch.save

    def late_save(obj, f, *args, **kwargs):
        if "random_states" in str(f):
            time.sleep(seconds)
        return save(obj, f, *args, **kwargs)

    torch.save = late_save


def main(out: Path) -> None:
    rank = int(os.environ.get("RANK", 0))
    tokenizer = tiny_tokenizer()
    train_data = make_sentiment_dataset(TRAIN_N, seed=0)
    eval_data = make_sentiment_dataset(EVAL_N, seed=1)
    seen_eval = []

    def metrics(prediction):
        seen_eval.append(
            {"n": len(prediction.predictions), "labels": prediction.label_ids.tolist()}
        )
        return compute_metrics(prediction)

    def config(**kw):
        base = dict(num_epochs=2, batch_size=8, lr=2e-3, progress=False, max_length=32,
                    device="cpu", eval_every="epoch", seed=0, weight_decay=0.0)  # fmt: skip
        return TrainConfig(**(base | kw))

    report = {"rank": rank}
    counting = CountingCollator(tokenizer)
    model = build_tiny_bert(tokenizer, dropout=0.0)
    history = train(
        model, train_data, eval_data, config(), tokenizer, metrics, data_collator=counting
    )
    report |= {"train_batches": counting.batches, "train_examples": counting.examples,
               "steps": history.total_steps, "evals": seen_eval,
               "eval_loss": [row["loss"] for row in history.evals]}  # fmt: skip
    save_file(model.state_dict(), str(out / f"rank{rank}-full.safetensors"))

    ckpt = out / "checkpoints"
    write_rng_states_late(rank)

    def kill(step, _history):  # noqa: E306
        if step == 3:
            raise Interrupt

    try:
        train(build_tiny_bert(tokenizer, dropout=0.0), train_data, eval_data,
              config(checkpoint_every=2, output_dir=ckpt), tokenizer, metrics, callbacks=[kill])  # fmt: skip
    except Interrupt:
        pass
    report["checkpoints_after_kill"] = sorted(p.name for p in ckpt.iterdir())
    report["checkpoint_files"] = sorted(p.name for p in (ckpt / "course-checkpoint-2").iterdir())
    resumed = build_tiny_bert(tokenizer, seed=7, dropout=0.0)
    again = train(resumed, train_data, eval_data, config(checkpoint_every=2, output_dir=ckpt,
                  resume=True), tokenizer, metrics)  # fmt: skip
    report["resumed_from_step"] = again.resumed_from_step
    save_file(resumed.state_dict(), str(out / f"rank{rank}-resumed.safetensors"))
    # a causal LM evaluated on unlabelled text: the task must be known under DDP too
    text = [d.remove_columns("label") for d in (train_data, eval_data)]
    lm = train(build_tiny_llama(tokenizer), *text, config(num_epochs=1), tokenizer)
    report["causal_lm_eval_loss"] = [row["loss"] for row in lm.evals]
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    torch.distributed.destroy_process_group() if torch.distributed.is_initialized() else None


if __name__ == "__main__":
    main(Path(sys.argv[1]))
