"""Data-parallel fine-tuning of MiniLM with the course loop, on one or several processes.

Introduced in chapter 8, which launches it on the two CPU cores of the course machine and
compares it with one process::

    # two processes on this machine (gloo on CPUs, NCCL on GPUs), one optimizer step = 32 reviews
    torchrun --standalone --nproc_per_node 2 -m course_utils.data_parallel --out runs/ch08/ddp-2
    # the same job in one process (the same 32 reviews per optimizer step)
    python -m course_utils.data_parallel --out runs/ch08/ddp-1

Every process runs the same code: it loads the same reviews and the same pretrained model (with
dropout off, so that runs can be compared number for number), and `course_utils.training.train`
gives each process its share of every optimizer step (`accelerate` wraps the model in
`DistributedDataParallel`, which averages the gradients over the processes before each update).
Each process writes `rank<r>.json` into `--out`: which examples it saw (a fingerprint of each),
its losses, its training time and a SHA-256 of its parameters after training; process 0 also
saves the trained weights (`model.safetensors`) so that two runs can be compared tensor by tensor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

__all__ = ["RecordingCollator", "main", "parameter_digest", "run_job"]


class RecordingCollator:
    """Pads a batch like the default collator and remembers what this process saw.

    Each example is fingerprinted by the SHA-1 of its token ids (the first 12 hex digits), so
    the reports of two processes can be checked for overlap without storing the texts.
    """

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)
        self.fingerprints: list[str] = []
        self.tokens = 0
        self.padded_tokens = 0

    def __call__(self, examples: list[dict]):
        batch = self.pad(examples)
        for example in examples:
            ids = ",".join(map(str, example["input_ids"])).encode()
            self.fingerprints.append(hashlib.sha1(ids).hexdigest()[:12])
        self.tokens += sum(len(e["input_ids"]) for e in examples)
        self.padded_tokens += int(batch["input_ids"].numel())
        return batch


def parameter_digest(model) -> str:
    """SHA-256 of every parameter's bytes, in `state_dict` order: equal digests, equal weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    """Write `data` atomically (a temporary file, then a rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_job(
    out: str | os.PathLike,
    model_name: str = "minilm",
    train_size: int = 256,
    global_batch: int = 32,
    max_length: int = 64,
    epochs: int = 1,
    lr: float = 1e-4,
    seed: int = 0,
    device: str = "auto",
) -> dict:
    """Fine-tune `model_name` on `train_size` movie reviews; returns this process's report.

    `global_batch` reviews make one optimizer step whatever the number of processes (each
    process takes `global_batch / processes` of them). Runs as it is in a notebook (one
    process) or under `torchrun` (several); the report is also written to `out/rank<r>.json`.
    `device="auto"` trains on the GPUs when there are some (one per process) and on the CPU
    otherwise (gloo between processes).
    """
    from safetensors.torch import save_file

    from .data import load_movie_reviews
    from .models import load_classifier
    from .training import TrainConfig, seed_everything, train

    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    if global_batch % world:
        raise ValueError(
            f"global_batch={global_batch} cannot be shared by {world} processes: choose a "
            f"multiple of {world}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    reviews = load_movie_reviews()["train"].shuffle(seed=seed).select(range(train_size))
    seed_everything(seed)  # the new classification head starts from the same random values
    model, tokenizer = load_classifier(
        model_name, num_labels=2, device="cpu",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    collator = RecordingCollator(tokenizer)
    config = TrainConfig(
        lr=lr, num_epochs=epochs, batch_size=global_batch // world, max_length=max_length,
        warmup_ratio=0.1, weight_decay=0.01, device=device, seed=seed, progress=False,
    )  # fmt: skip
    start = time.perf_counter()
    history = train(model, reviews, None, config, tokenizer, data_collator=collator)
    report = {
        "rank": rank,
        "world_size": world,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "examples_seen": len(collator.fingerprints),
        "fingerprints": collator.fingerprints,
        "tokens": collator.tokens,
        "padded_tokens": collator.padded_tokens,
        "optimizer_steps": history.total_steps,
        "losses": [row["loss"] for row in history.steps],
        "train_time_s": history.train_time_s,
        "train_call_s": time.perf_counter() - start,
        "parameter_sha256": parameter_digest(model),
        "device": str(next(model.parameters()).device),
        "settings": {"model": model_name, "train_size": train_size, "global_batch": global_batch,
                     "max_length": max_length, "epochs": epochs, "lr": lr, "seed": seed},
    }  # fmt: skip
    if rank == 0:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  str(out / "model.safetensors"))  # fmt: skip
    _write_json(out / f"rank{rank}.json", report)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for rank<r>.json and the weights")
    parser.add_argument("--model", default="minilm", help="course model, folder or Hub id")
    parser.add_argument("--train-size", type=int, default=256, help="training reviews")
    parser.add_argument("--global-batch", type=int, default=32, help="reviews per optimizer step")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (GPUs if any), cpu or cuda")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    report = run_job(
        args.out, args.model, args.train_size, args.global_batch, args.max_length, args.epochs,
        args.lr, args.seed, args.device,
    )  # fmt: skip
    print(f"rank {report['rank']}/{report['world_size']}: {report['examples_seen']} examples, "
          f"{report['optimizer_steps']} steps, {report['train_time_s']:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
