"""What one training step costs: time, peak memory, and where the memory goes (chapter 9).

Introduced in chapter 9, which compares full fine-tuning with LoRA, with and without gradient
checkpointing, on MiniLM and SmolLM2.

Peak memory is a property of a *process*: memory freed by one experiment is often kept by the
allocator and reused by the next, so two measurements in one process contaminate each other.
`measure_steps` therefore runs each configuration in a fresh Python process
(``python -m course_utils.efficiency``) that loads the model, resets the operating system's
record of its peak resident memory (Linux: ``/proc/self/clear_refs``), runs the training steps
and reports, as JSON:

- ``peak_rss_mb``: the peak resident memory during the steps, and ``loaded_rss_mb`` before them;
- ``step_s``: the wall time of each timed step (after one untimed warm-up step);
- the parts, measured tensor by tensor: ``weights_mb``, ``gradients_mb``, ``optimizer_mb``
  (AdamW's two moments) and ``activations_mb`` (what autograd saves for the backward pass,
  `course_utils.pretraining.SavedTensorMeter`);
- ``trainable`` and ``parameters``; on a CUDA GPU also ``cuda_peak_mb``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["STEP_KINDS", "enable_checkpointing", "measure_steps", "run_steps"]

STEP_KINDS = ("classifier", "causal_lm")
MB = 2**20


def _rss_mb(field: str = "VmRSS") -> float | None:
    """A memory figure of this process from /proc (Linux), in MiB; None elsewhere."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / MB  # the kernel reports kB
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS record (VmHWM) to the current RSS; False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_mb(reset_ok: bool) -> float:
    if reset_ok and (value := _rss_mb("VmHWM")) is not None:
        return value
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


def enable_checkpointing(model) -> None:
    """Gradient (activation) checkpointing: keep each block's input, recompute the rest.

    transformers 5 calls it `activation_checkpointing_enable` (the old name still works, with a
    deprecation warning); the non-reentrant variant needs no inputs that require gradients, so
    it also works with LoRA, whose embeddings are frozen.
    """
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:  # transformers 4
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False


def _tensor_mb(tensors) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / MB


def _load(model_name: str, kind: str, device: str):
    from .models import load_causal_lm, load_classifier

    if kind == "classifier":
        model, _ = load_classifier(model_name, num_labels=2, device=device)
    else:
        model, _ = load_causal_lm(model_name, device=device)
    return model


def _batch(input_ids: Sequence[Sequence[int]], labels, pad_id: int, kind: str, device):
    """Right-padded tensors; token labels of a causal LM are padded with -100."""
    import torch

    width = max(len(ids) for ids in input_ids)
    ids = torch.full((len(input_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(input_ids):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    if kind == "classifier":
        target = torch.tensor(labels, dtype=torch.long)
    else:
        target = torch.full_like(ids, -100)
        for row, seq in enumerate(labels):
            target[row, : len(seq)] = torch.tensor(seq)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": target}
    return {k: v.to(device) for k, v in batch.items()}


def run_steps(
    model_name: str,
    kind: str,
    input_ids: Sequence[Sequence[int]],
    labels: Sequence,
    method: str = "full",
    gradient_checkpointing: bool = False,
    steps: int = 2,
    lr: float = 1e-4,
    lora: dict[str, Any] | None = None,
    pad_id: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Load a model, train it for `steps` timed steps on one batch, and report the costs.

    Runs in the current process (`measure_steps` runs it in a fresh one, which is what makes
    the peak memory meaningful). `kind` is ``"classifier"`` (`labels`: one class per row) or
    ``"causal_lm"`` (`labels`: one list of token labels per row, -100 where no loss is taken).
    `method` is ``"full"`` or ``"lora"`` (`lora`: options for `apply_lora`). The optimizer is
    fused AdamW, as in the course's loop.
    """
    import torch

    from .models import get_device
    from .pretraining import SavedTensorMeter
    from .training import apply_lora, count_parameters

    if kind not in STEP_KINDS:
        raise ValueError(f"kind must be one of {STEP_KINDS}, not {kind!r}")
    if method not in ("full", "lora"):
        raise ValueError(f"method must be 'full' or 'lora', not {method!r}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    target = get_device(device)
    model = _load(model_name, kind, str(target))
    if gradient_checkpointing:  # recompute each block's activations in the backward pass
        enable_checkpointing(model)
    if method == "lora":
        model = apply_lora(model, **(lora or {}))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        optimizer = torch.optim.AdamW(params, lr=lr)
    batch = _batch(input_ids, labels, pad_id, kind, target)
    cuda = target.type == "cuda"

    loaded = _rss_mb()
    reset_ok = _reset_peak()
    if cuda:
        torch.cuda.reset_peak_memory_stats(target)
    times: list[float] = []
    activations = gradients = 0.0
    for step in range(steps + 1):  # step 0 warms up (allocations, kernel choice), untimed
        t0 = time.perf_counter()
        if step == 0:
            with SavedTensorMeter(model) as meter:
                loss = model(**batch).loss
            activations = meter.bytes / MB
        else:
            loss = model(**batch).loss
        loss.backward()
        if step == 0:
            gradients = _tensor_mb(p.grad for p in params if p.grad is not None)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(target)
        if step > 0:
            times.append(time.perf_counter() - t0)
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    report = {
        "model": model_name,
        "kind": kind,
        "method": method,
        "gradient_checkpointing": gradient_checkpointing,
        "batch": list(batch["input_ids"].shape),
        "device": str(target),
        "parameters": count_parameters(model),
        "trainable": count_parameters(model, trainable_only=True),
        "step_s": times,
        "loss": float(loss.detach()),
        "loaded_rss_mb": loaded,
        "peak_rss_mb": _peak_mb(reset_ok),
        "peak_reset": reset_ok,
        "weights_mb": _tensor_mb(model.parameters()),
        "gradients_mb": gradients,
        "optimizer_mb": _tensor_mb(t for t in state if t.dim() > 0),
        "activations_mb": activations,
        "threads": torch.get_num_threads(),
    }
    if cuda:
        report["cuda_peak_mb"] = torch.cuda.max_memory_allocated(target) / MB
    return report


def measure_steps(timeout: float = 900, **settings: Any) -> dict[str, Any]:
    """`run_steps(**settings)` in a fresh Python process; returns its report.

    The child inherits the environment (threads, offline mode, `COURSE_RUNS`); its peak memory
    is its own, untouched by whatever the calling notebook allocated before. A failure raises
    `RuntimeError` with the child's last lines of output.
    """
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, "-m", "course_utils.efficiency"]
    done = subprocess.run(
        command,
        input=json.dumps(settings),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"the measurement process failed (exit {done.returncode}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """``python -m course_utils.efficiency`` reads `run_steps`' settings as JSON on stdin."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    report = run_steps(**json.loads(sys.stdin.read()))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
