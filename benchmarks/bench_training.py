"""Throughput of the course's training loop against `transformers.Trainer` (not a test).

Fine-tunes all-MiniLM-L6-v2 on the movie reviews for a fixed number of optimizer steps with
`course_utils.training.train` and with `make_trainer(...).train()`: the same batch size, the same
fixed padding (every example padded to `--max-length`, so both see exactly the same number of
tokens), the same fused AdamW, fp32. It prints samples/s of each, their ratio, the model FLOP/s
achieved (the FLOPs of one training step counted by `torch.utils.flop_counter.FlopCounterMode`,
next to the 6 x non-embedding parameters x tokens estimate), the machine's measured fp32 matmul
peak and their ratio (MFU). The last line is `loop/trainer=<x> mfu=<y>`.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 python benchmarks/bench_training.py [--steps 30]

Each system runs `--rounds` times, alternating, one after the other (never concurrently); the
best round counts, which filters out a busy neighbour on a shared machine. The first
`--warmup` steps of every round are not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from course_utils.data import load_movie_reviews  # noqa: E402
from course_utils.models import load_classifier  # noqa: E402
from course_utils.training import (  # noqa: E402
    TrainConfig,
    make_trainer,
    tokenize_dataset,
    train,
)


def matmul_peak_flops(n: int = 2048, reps: int = 10) -> float:
    """Best-of-`reps` fp32 FLOP/s of an n x n matmul (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters that take part in matmuls: `num_parameters(exclude_embeddings=True)`."""
    return model.num_parameters(exclude_embeddings=True)


def training_flops_per_sample(model: torch.nn.Module, max_length: int, batch: int = 4) -> float:
    """FLOPs of forward + backward per example of `max_length` tokens, counted by torch.

    `FlopCounterMode` counts every matmul-like operation (attention scores included), which the
    6 x parameters x tokens rule leaves out; it ignores element-wise work and the optimizer.
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    ids = torch.randint(1000, 2000, (batch, max_length), device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


class StepTimes(TrainerCallback):
    """Records the wall time at the end of every optimizer step of a `Trainer`."""

    def __init__(self, sync=None) -> None:
        self.times: list[float] = []
        self.on_step_end = _clock(self.times, sync)


def _clock(times: list[float], sync=None):
    def tick(*_args, **_kwargs):
        if sync is not None:
            sync()  # on a GPU, wait for the step's kernels before reading the clock
        times.append(time.perf_counter())

    return tick


def run_loop(model, data, config: TrainConfig, tokenizer, warmup: int, sync=None) -> float:
    """Samples/s of the course loop over the steps after `warmup`."""
    times: list[float] = []
    train(model, data, None, config, tokenizer, callbacks=[_clock(times, sync)])
    timed = len(times) - warmup
    return timed * config.batch_size / (times[-1] - times[warmup - 1])


def run_trainer(model, data, config: TrainConfig, tokenizer, warmup: int, sync=None) -> float:
    """Samples/s of `transformers.Trainer` over the steps after `warmup`."""
    clock = StepTimes(sync)
    trainer = make_trainer(model, data, None, config, tokenizer)
    trainer.add_callback(clock)
    trainer.train()
    times = clock.times
    timed = len(times) - warmup
    return timed * config.batch_size / (times[-1] - times[warmup - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per round")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps before timing")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best counts")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--model", default="minilm", help="registry name, folder or hub id")
    parser.add_argument("--output-dir", default="runs/bench")
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()}")
    loop_model, tokenizer = load_classifier(args.model, num_labels=2)
    trainer_model, _ = load_classifier(args.model, num_labels=2)
    steps = args.warmup + args.steps
    reviews = load_movie_reviews()["train"]
    reviews = reviews.select(range(min(len(reviews), steps * args.batch_size)))
    data = tokenize_dataset(reviews, tokenizer, args.max_length, padding="max_length")
    config = TrainConfig(
        lr=5e-5,
        device="cpu",
        batch_size=args.batch_size,
        max_steps=steps,
        num_epochs=1,
        warmup_ratio=0.1,
        mixed_precision="no",
        group_by_length=False,
        log_every=10,
        progress=False,
        output_dir=args.output_dir,
    )

    peak = matmul_peak_flops()
    loop_rates, trainer_rates = [], []
    for r in range(args.rounds):
        loop_rates.append(run_loop(loop_model, data, config, tokenizer, args.warmup))
        print(f"round {r + 1}: course loop {loop_rates[-1]:.1f} samples/s", flush=True)
        trainer_rates.append(run_trainer(trainer_model, data, config, tokenizer, args.warmup))
        print(f"round {r + 1}: Trainer     {trainer_rates[-1]:.1f} samples/s", flush=True)
    peak = max(peak, matmul_peak_flops())

    loop_rate, trainer_rate = max(loop_rates), max(trainer_rates)
    params = non_embedding_parameters(loop_model)
    estimate = 6 * params * args.max_length
    flops_per_sample = training_flops_per_sample(loop_model, args.max_length)
    achieved = loop_rate * flops_per_sample
    print(
        f"batch {args.batch_size} x {args.max_length} tokens, {args.steps} timed steps, "
        f"{args.rounds} rounds (best counts)"
    )
    print(f"course loop: {loop_rate:.1f} samples/s  ({loop_rate * args.max_length:.0f} tokens/s)")
    print(
        f"Trainer:     {trainer_rate:.1f} samples/s  ({trainer_rate * args.max_length:.0f} tokens/s)"
    )
    print(f"non-embedding parameters: {params / 1e6:.2f} M")
    print(
        f"FLOPs per example: {flops_per_sample / 1e9:.2f} G counted by FlopCounterMode, "
        f"{estimate / 1e9:.2f} G by 6 x parameters x tokens"
    )
    print(f"model FLOP/s (course loop): {achieved / 1e9:.1f} GFLOP/s")
    print(f"fp32 matmul peak (2048x2048, best of 10): {peak / 1e9:.1f} GFLOP/s")
    print(f"load average after: {os.getloadavg()}")
    print(f"loop/trainer={loop_rate / trainer_rate:.2f} mfu={achieved / peak:.2f}")


if __name__ == "__main__":
    main()
