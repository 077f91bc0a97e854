"""The full-mode run: fine-tune all-MiniLM-L6-v2 on the movie reviews with the course loop.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 python scripts/train_full.py

Settings: lr 1e-4 (a 6-layer, 384-wide model takes larger rates than BERT-base's 2e-5 to 5e-5),
4 epochs, 10% warm-up then cosine decay, batch 32, weight decay 0.01, max_length 64 (token
lengths of the training texts: median 26, 99th percentile 55, maximum 79; length-bucketed
batches make the short ones cheap). Only the VALIDATION split steers the run: it is evaluated
after every epoch and the epoch with the best validation accuracy is kept (early stopping,
patience 2); the test split is read once, at the end (`--no-test` skips it while tuning).
Validation accuracy by epoch in a first run: 0.859, 0.871, 0.868, 0.874.
Reports test metrics, wall time and peak memory (ru_maxrss), checkpoints every 200 steps
(kill it and run it again with the same settings: it resumes from the last checkpoint; a
finished run is reloaded, not retrained; `--fresh` starts over), runs unchanged under
`torchrun --nproc_per_node N` (one process writes the results), and writes
`runs/full/summary.json` (and the model to `runs/full/model` unless --no-save).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from course_utils.data import load_movie_reviews  # noqa: E402
from course_utils.evaluation import classification_metrics, compute_metrics  # noqa: E402
from course_utils.models import load_classifier  # noqa: E402
from course_utils.training import (  # noqa: E402
    TrainConfig,
    count_parameters,
    predict,
    seed_everything,
    train,
)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm", help="registry name, folder or hub id")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--num-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--scheduler", default="cosine", choices=["linear", "cosine", "constant"])
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--patience", type=int, default=2, help="early stopping (evaluations)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/full")
    parser.add_argument("--no-test", action="store_true", help="tuning: report validation only")
    parser.add_argument("--no-save", action="store_true", help="do not save the trained model")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier checkpoints")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="optimizer steps")
    parser.add_argument("--train-size", type=int, help="train on the first N reviews (a quick run)")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig: validation picks the best epoch; checkpoints make it resumable."""
    return TrainConfig(
        lr=args.lr,
        num_epochs=args.num_epochs,
        batch_size=args.batch_size,
        eval_batch_size=128,
        max_length=args.max_length,
        warmup_ratio=args.warmup_ratio,
        scheduler=args.scheduler,
        weight_decay=args.weight_decay,
        eval_every="epoch",
        metric_for_best="accuracy",
        early_stopping_patience=args.patience,
        seed=args.seed,
        log_every=10,
        checkpoint_every=args.checkpoint_every,
        output_dir=Path(args.output_dir) / "checkpoints",
        resume=not args.fresh,  # a rerun continues from the newest checkpoint
        max_steps=args.max_steps,
        device=args.device,
    )


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)

    start = time.perf_counter()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data = load_movie_reviews()
    if args.train_size:
        data["train"] = data["train"].select(range(args.train_size))
    seed_everything(args.seed)  # the new classifier head is initialised randomly: seed it too
    model, tokenizer = load_classifier(args.model, num_labels=2, device=args.device)
    config = build_config(args)
    print(
        f"train {len(data['train'])}, validation {len(data['validation'])}, test {len(data['test'])}; "
        f"{count_parameters(model) / 1e6:.1f} M parameters; {torch.get_num_threads()} threads"
    )
    history = train(model, data["train"], data["validation"], config, tokenizer, compute_metrics)
    if history.resumed_from_step is not None:
        print(f"resumed from step {history.resumed_from_step} of {history.total_steps}")
    best = history.best_metrics
    print(
        f"best validation: step {history.best_step}, accuracy {best['accuracy']:.4f}, "
        f"f1 {best['f1']:.4f}, loss {best['loss']:.4f}"
    )

    summary = {
        "model": args.model,
        "config": config.to_dict(),
        "resumed_from_step": history.resumed_from_step,
        "train_samples_per_second": history.samples_per_second,
        "train_time_s": history.train_time_s,
        "best_step": history.best_step,
        "stopped_early": history.stopped_early,
        "validation": best,
        "history": history.to_dict(),
    }
    if not args.no_test:
        logits = predict(model, data["test"], tokenizer, batch_size=128,
                         max_length=args.max_length, device=args.device)  # fmt: skip
        test = classification_metrics(np.asarray(data["test"]["label"]), logits)
        summary["test"] = test
        print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one writer
    if not args.no_save and main_process:
        model.save_pretrained(output_dir / "model")
        tokenizer.save_pretrained(output_dir / "model")
    summary["wall_time_s"] = time.perf_counter() - start
    summary["peak_rss_mb"] = peak_rss_mb()
    summary["machine"] = {
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_end": os.getloadavg(),
    }
    if main_process:
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(
        f"wall time {summary['wall_time_s']:.0f} s, peak RSS {summary['peak_rss_mb']:.0f} MiB; "
        f"wrote {output_dir / 'summary.json'}"
    )
    return summary


if __name__ == "__main__":
    main()
