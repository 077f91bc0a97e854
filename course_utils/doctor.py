"""Check that this machine can run the course: ``python -m course_utils doctor`` (chapter 1)."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from collections.abc import Callable

from .assets import REGISTRY, cache_dir, check_cached

MIN_PYTHON = (3, 10)
MIN_FREE_GB = 2.0
PACKAGES = [
    "torch", "transformers", "datasets", "peft", "accelerate", "gguf", "safetensors",
    "scikit-learn", "matplotlib", "tqdm", "jupytext", "papermill", "nbval", "ipywidgets",
    "seqeval", "sacrebleu", "rouge-score", "rank-bm25", "tensorboard", "tbparse", "captum",
    "filelock",
]  # fmt: skip


def run_checks() -> list[tuple[bool, str, str]]:
    """Every check as ``(ok, item, detail)``: Python, packages, device, assets, free disk."""
    checks = []
    version = ".".join(map(str, sys.version_info[:3]))
    checks.append((sys.version_info >= MIN_PYTHON, "python", version))
    for package in PACKAGES:
        try:
            checks.append((True, package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            checks.append((False, package, 'not installed: pip install -e ".[dev]"'))
    try:
        from .models import get_device

        checks.append((True, "device", str(get_device())))
    except Exception as e:  # a broken torch install shows here, not as a traceback
        checks.append((False, "device", f"torch does not work: {e}"))
    for name in REGISTRY:
        ok, detail = check_cached(name)
        if not ok:
            detail += "; run `python -m course_utils fetch`"
        checks.append((ok, f"asset {name}", detail))
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(cache).free / 1e9
    checks.append((free_gb >= MIN_FREE_GB, "free disk", f"{free_gb:.1f} GB at {cache}"))
    return checks


def doctor(log: Callable[[str], None] = print) -> int:
    """Print one ``OK``/``FAIL`` line per check; return 1 if any failed, else 0."""
    checks = run_checks()
    for ok, item, detail in checks:
        log(f"{'OK  ' if ok else 'FAIL'} {item:<16} {detail}")
    return 0 if all(ok for ok, _, _ in checks) else 1
