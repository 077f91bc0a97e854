"""Checkpoints of the course loop: written atomically, found again, resumed exactly.

Introduced in chapter 3. A checkpoint is a folder `course-checkpoint-<step>` holding accelerate's
state (weights, optimizer, scheduler, every process's RNG states), the best weights so far (early
stopping, safetensors) and `course_state.json` (the `RunState`), written last: a folder without it
was interrupted and is ignored. Only the course's own folders are ever read or deleted, so
`transformers.Trainer`'s `checkpoint-N` folders in the same place are left alone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from accelerate import Accelerator

from .config import RunState

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]

PREFIX = "course-checkpoint-"
STATE_FILE = "course_state.json"
BEST_FILE = "best_weights.safetensors"
SETTINGS_FILE = "settings.json"
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"resume", "progress", "output_dir", "log_every", "device", "eval_batch_size"}


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder in `output_dir`, or `None`."""
    done = [p for p in Path(output_dir).glob(PREFIX + "*") if (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name.removeprefix(PREFIX))) if done else None


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: Path,
    run: RunState,
    best_weights: dict | None,
    settings: dict | None = None,
) -> Path:
    """Write a checkpoint of step `run.step` under a temporary name, then rename it into place.

    `settings` (the run's configuration) is stored so a resumed run can check it is the same
    job. Older course checkpoints in `output_dir` are deleted afterwards (the newest is kept).
    """
    from safetensors.torch import save_file

    final = output_dir / f"{PREFIX}{run.step}"
    tmp = output_dir / f".tmp-{PREFIX}{run.step}"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # model, optimizer, scheduler, RNG states of every process
    # save_state does not wait: without this, the main process could rename the folder while
    # another process is still writing its RNG states into it (seen under load with torchrun)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if best_weights is not None:
            save_file(best_weights, str(tmp / BEST_FILE))
        (tmp / SETTINGS_FILE).write_text(json.dumps(settings or {}, default=str))
        (tmp / STATE_FILE).write_text(json.dumps(run.to_dict()))  # the "complete" marker
        old = [p for p in output_dir.glob(PREFIX + "*") if p != final]
        if final.exists():  # the same step saved again (the end of a run): swap, then delete
            retired = output_dir / f".old-{PREFIX}{run.step}"
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(final, retired)
            old.append(retired)
        os.replace(tmp, final)
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def check_settings(folder: Path, settings: dict) -> None:
    """Refuse to resume a checkpoint that another configuration wrote (a silent mix otherwise)."""
    path = folder / SETTINGS_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    current = json.loads(json.dumps(settings, default=str))
    changed = sorted(
        k for k in saved.keys() | current.keys()
        if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
    )  # fmt: skip
    if saved and changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise ValueError(
            f"the checkpoint {folder} was written by a run with other settings ({diffs}); "
            "resume with the same settings, or use another output_dir (or delete it) to start over"
        )


def load_checkpoint(
    accelerator: Accelerator, folder: Path, settings: dict | None = None
) -> tuple[RunState, dict | None]:
    """Restore the prepared model, optimizer, scheduler and RNGs; return the run and best weights."""
    from safetensors.torch import load_file

    if settings is not None:
        check_settings(folder, settings)
    accelerator.load_state(str(folder))
    run = RunState.from_dict(json.loads((folder / STATE_FILE).read_text()))
    run.history.resumed_from_step = run.step
    best = folder / BEST_FILE
    return run, (load_file(str(best)) if best.is_file() else None)
