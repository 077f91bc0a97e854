"""What could make the course loop faster on a CPU, each tried on the same job (not a test).

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 python benchmarks/bench_speedups.py [--steps 20]

The job: all-MiniLM-L6-v2, full fine-tuning, global batch 32, fp32, fused AdamW, the movie reviews.
Each variant runs in a fresh process (thread settings are read at start-up) for `--warmup` untimed
plus `--steps` timed optimizer steps, and prints samples/s; the variants run one after another.

- `baseline`: micro-batch 32, every review padded to 64 tokens (the benchmark's fixed shape);
- `micro16x2`, `micro8x4`: the same global batch in smaller micro-batches (accumulation);
- `threads1`: `torch.set_num_threads(1)`; `active`: `OMP_WAIT_POLICY=ACTIVE`;
- `eager_attention`: `attn_implementation="eager"` instead of SDPA;
- `compile`: `torch.compile` (inductor) of the model; compile time reported separately;
- `buckets`: the real job's batches: dynamic padding with length buckets (fewer tokens).
It also prints the padding waste of the real batches (padded tokens / real tokens) with and
without length buckets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VARIANTS = ["baseline", "micro16x2", "micro8x4", "threads1", "active", "eager_attention",
            "compile", "buckets"]  # fmt: skip


def padding_waste(batch_size: int = 32, max_length: int = 64) -> dict[str, float]:
    """Padded / real tokens of one epoch of the training split, with and without buckets."""
    import numpy as np

    from course_utils.data import load_movie_reviews
    from course_utils.models import load_tokenizer
    from course_utils.training import LengthBucketBatchSampler

    tokenizer = load_tokenizer("minilm")
    texts = list(load_movie_reviews()["train"]["text"])
    lengths = np.array([min(len(ids), max_length) for ids in tokenizer(texts)["input_ids"]])
    out = {}
    for grouped in (False, True):
        steps = LengthBucketBatchSampler(lengths, batch_size, group_by_length=grouped).steps()
        padded = sum(len(s) * lengths[s].max() for s in steps)
        out["buckets" if grouped else "random"] = float(padded / lengths.sum() - 1)
    out["fixed_64"] = float(len(lengths) * max_length / lengths.sum() - 1)
    return out


def run_variant(name: str, steps: int, warmup: int) -> dict:
    """Train `warmup + steps` steps of the job with one change; returns samples/s."""
    import torch

    if name == "threads1":
        torch.set_num_threads(1)
    from course_utils.data import load_movie_reviews
    from course_utils.models import load_classifier
    from course_utils.training import TrainConfig, tokenize_dataset, train

    kwargs = {"attn_implementation": "eager"} if name == "eager_attention" else {}
    model, tokenizer = load_classifier("minilm", num_labels=2, device="cpu", **kwargs)
    micro = {"micro16x2": 16, "micro8x4": 8}.get(name, 32)
    total = warmup + steps
    reviews = load_movie_reviews()["train"].select(range(total * 32))
    padding = False if name == "buckets" else "max_length"
    data = tokenize_dataset(reviews, tokenizer, 64, padding=padding)
    compile_s = 0.0
    if name == "compile":
        model = torch.compile(model)
    config = TrainConfig(lr=5e-5, batch_size=micro, grad_accum_steps=32 // micro, max_steps=total,
                         num_epochs=1, mixed_precision="no", device="cpu", progress=False,
                         group_by_length=name == "buckets", log_every=total)  # fmt: skip
    times = []
    start = time.perf_counter()
    train(
        model,
        data,
        None,
        config,
        tokenizer,
        callbacks=[lambda s, h: times.append(time.perf_counter())],
    )
    if name == "compile":
        compile_s = times[0] - start  # the first step compiles (forward and backward)
    rate = steps * 32 / (times[-1] - times[warmup - 1])
    return {"variant": name, "samples_per_s": rate, "compile_s": compile_s,
            "threads": torch.get_num_threads(), "omp": os.environ.get("OMP_WAIT_POLICY")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: one variant, JSON out
    parser.add_argument("--only", nargs="*", default=VARIANTS, help="variants to run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.warmup)))
        return

    waste = padding_waste()
    print("padding waste (padded / real tokens - 1), batch 32, max 64 tokens: "
          + ", ".join(f"{k} {v:.0%}" for k, v in waste.items()), flush=True)  # fmt: skip
    rows = []
    for name in args.only:
        env = os.environ | {"OMP_WAIT_POLICY": "ACTIVE" if name == "active" else "PASSIVE"}
        cmd = [sys.executable, __file__, "--variant", name, "--steps", str(args.steps),
               "--warmup", str(args.warmup)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}", flush=True)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        extra = f", compile {row['compile_s']:.0f} s" if row["compile_s"] else ""
        print(f"{name:<16} {row['samples_per_s']:6.1f} samples/s{extra}", flush=True)
    base = next((r["samples_per_s"] for r in rows if r["variant"] == "baseline"), None)
    if base:
        print("relative to baseline: " + ", ".join(
            f"{r['variant']} {r['samples_per_s'] / base:.2f}x" for r in rows))  # fmt: skip


if __name__ == "__main__":
    main()
