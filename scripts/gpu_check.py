#!/usr/bin/env python
"""The course on one CUDA GPU, checked in a few minutes (for maintainers; not a test).

    .venv/bin/python scripts/gpu_check.py                 # all checks
    .venv/bin/python scripts/gpu_check.py --chapters 3 5  # which chapters to run in SMOKE mode

One line per check, `OK`, `FAIL` or `SKIP`, then the numbers:

1. the GPU (name, memory, compute capability);
2. bf16: `mixed_precision="auto"` picks bf16 and autocast computes in bf16;
3. the GPU's bf16 matmul peak, measured (and its datasheet figure where known);
4. the course loop against `transformers.Trainer`: samples/s and model-FLOPs utilisation (MFU)
   of fine-tuning MiniLM with bf16 autocast, against the measured peak;
5. two chapters executed in SMOKE mode with `DEVICE = "auto"` (so on the GPU).

Without a CUDA GPU it prints one `SKIP` line and exits 0. Exit status 1 if a check failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Dense bf16 tensor-core peaks from the vendors' datasheets (FLOP/s, without sparsity). An
# "NVIDIA H100 80GB HBM3" is the SXM board; the PCIe and NVL boards say so in their names.
DATASHEET_BF16 = {
    "H200": 989e12, "H100": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12,
    "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 70e12, "A10": 125e12,
    "RTX 4090": 165e12, "RTX 3090": 71e12,
}  # fmt: skip


def datasheet_peak(name: str) -> float | None:
    """The datasheet bf16 peak of a GPU, from the longest matching name (None if unknown)."""
    matches = [key for key in DATASHEET_BF16 if key.lower() in name.lower()]
    return DATASHEET_BF16[max(matches, key=len)] if matches else None


def line(status: str, check: str, detail: str) -> str:
    return f"{status:<4} {check:<22} {detail}"


def bf16_matmul_peak(n: int = 8192, reps: int = 20) -> float:
    """Best-of-`reps` bf16 FLOP/s of an n x n matmul on the GPU (2 n^3 FLOPs each)."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def check_bf16() -> tuple[bool, str]:
    import torch

    from course_utils.training.loop import _resolve_mixed_precision

    choice = _resolve_mixed_precision("auto", torch.device("cuda"))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = torch.randn(64, 64, device="cuda") @ torch.randn(64, 64, device="cuda")
    ok = choice == "bf16" and out.dtype == torch.bfloat16
    return ok, f'mixed_precision="auto" -> {choice}; autocast matmul dtype {out.dtype}'


def loop_vs_trainer(steps: int, batch_size: int, max_length: int) -> dict:
    """Samples/s of the course loop and Trainer, bf16, on the movie reviews (fixed padding)."""
    import torch

    spec = importlib.util.spec_from_file_location(
        "bench", ROOT / "benchmarks" / "bench_training.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from course_utils.data import load_movie_reviews
    from course_utils.models import load_classifier
    from course_utils.training import TrainConfig, tokenize_dataset

    warmup = 5
    loop_model, tokenizer = load_classifier("minilm", num_labels=2, device="cuda")
    trainer_model, _ = load_classifier("minilm", num_labels=2, device="cuda")
    reviews = load_movie_reviews()["train"]
    reviews = reviews.select(range(min(len(reviews), (warmup + steps) * batch_size)))
    data = tokenize_dataset(reviews, tokenizer, max_length, padding="max_length")
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(lr=5e-5, batch_size=batch_size, max_steps=warmup + steps, num_epochs=1,
                             mixed_precision="bf16", device="cuda", group_by_length=False,
                             log_every=10, progress=False, output_dir=out)  # fmt: skip
        loop = bench.run_loop(
            loop_model, data, config, tokenizer, warmup, sync=torch.cuda.synchronize
        )
        trainer = bench.run_trainer(trainer_model, data, config, tokenizer, warmup,
                                    sync=torch.cuda.synchronize)  # fmt: skip
    flops_per_sample = bench.training_flops_per_sample(loop_model, max_length)
    return {"loop": loop, "trainer": trainer, "flops_per_sample": flops_per_sample}


def smoke_chapter(number: int, out_dir: Path) -> tuple[bool, str]:
    import papermill

    matches = sorted((ROOT / "chapters").glob(f"{number:02d}_*.ipynb"))
    if not matches:
        return False, f"no chapter {number}"
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(matches[0]), str(out_dir / matches[0].name),
                                   parameters={"SMOKE": True, "DEVICE": "auto"},
                                   cwd=str(matches[0].parent), progress_bar=False,
                                   kernel_name="python3")  # fmt: skip
    except Exception as error:  # papermill raises PapermillExecutionError on a failing cell
        return False, f"{matches[0].name}: {str(error).splitlines()[0][:200]}"
    return True, f"{matches[0].name} in {time.perf_counter() - start:.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chapters", type=int, nargs="*", default=[3, 5])
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    if not torch.cuda.is_available():
        print(line("SKIP", "gpu_check", "no CUDA GPU here (torch.cuda.is_available() is False); "
                   "nothing to check on this machine"))  # fmt: skip
        return 0
    results = []

    def report(ok: bool, check: str, detail: str) -> None:
        results.append(ok)
        print(line("OK" if ok else "FAIL", check, detail), flush=True)

    props = torch.cuda.get_device_properties(0)
    name = torch.cuda.get_device_name(0)
    report(True, "gpu", f"{name}, {props.total_memory / 2**30:.0f} GiB, "
           f"compute capability {props.major}.{props.minor}, torch {torch.__version__}")  # fmt: skip
    bf16_ok, bf16_detail = check_bf16()
    report(bf16_ok, "bf16", bf16_detail)
    peak = bf16_matmul_peak()
    sheet = datasheet_peak(name)
    report(True, "bf16 matmul peak", f"{peak / 1e12:.0f} TFLOP/s measured (8192^2)"
           + (f"; datasheet {sheet / 1e12:.0f} TFLOP/s" if sheet else ""))  # fmt: skip
    try:
        speed = loop_vs_trainer(args.steps, args.batch_size, args.max_length)
        mfu = speed["loop"] * speed["flops_per_sample"] / peak
        report(speed["loop"] >= 0.9 * speed["trainer"], "loop vs Trainer",
               f"course loop {speed['loop']:.0f} vs Trainer {speed['trainer']:.0f} samples/s "
               f"(batch {args.batch_size} x {args.max_length} tokens, bf16); "
               f"loop/trainer={speed['loop'] / speed['trainer']:.2f} mfu={mfu:.2f}")  # fmt: skip
    except Exception as error:  # a failure here must not hide the other checks
        report(False, "loop vs Trainer", f"{type(error).__name__}: {error}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("COURSE_RUNS", tmp)  # a fresh run cache: nothing is reused
        for number in args.chapters:
            ok, detail = smoke_chapter(number, Path(tmp))
            report(ok, f"chapter {number} SMOKE", detail)
    print(f"{sum(results)} of {len(results)} checks OK")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
