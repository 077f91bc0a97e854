"""A tiny cache of finished experiments, so re-running a notebook does not retrain.

Introduced in chapter 3 (also used by chapter 5). A run is identified by its *configuration*, a
JSON-serialisable dict (model name, data size, learning rate, strategy, seed, ...): the SHA-256
of its canonical JSON is the key. `RunCache.run(config, fn)` returns the stored result when the
same configuration finished before, and otherwise calls `fn()`, stores what it returns and
returns it. Results are small JSON files (metrics, timings, NumPy arrays and a `History`, never weights)::

    cache = RunCache("runs/cache/ch03")
    result = cache.run({"strategy": "lora", "r": 8, "lr": 5e-4}, lambda: fine_tune(...))
    result["accuracy"], result["history"].train_time_s, result["cached"]

Change anything that affects the result (including the code's meaning: bump `version`) and the
key changes, so a stale result is never returned for a new configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .training.config import History

__all__ = ["RunCache", "config_key", "runs_dir"]

_HISTORY = "__history__"
_ARRAY = "__ndarray__"
RUNS_ENV = "COURSE_RUNS"
ROOT = Path(__file__).resolve().parent.parent  # the repository


def runs_dir() -> Path:
    """Where finished runs, cached results and saved models go: ``$COURSE_RUNS`` or ``runs/``.

    Introduced in chapter 3. The default is the repository's ``runs/`` folder, so every chapter
    finds what an earlier one saved; the tests point ``COURSE_RUNS`` at a fresh temporary folder
    so that no test reads a cache another run filled.
    """
    return Path(os.environ.get(RUNS_ENV) or ROOT / "runs").expanduser()


def config_key(config: Mapping[str, Any], length: int = 16) -> str:
    """A short hex digest of `config` that ignores key order (canonical JSON, SHA-256)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _with_data_version(config: Mapping[str, Any]) -> dict[str, Any]:
    from .data import DATA_VERSION

    return {**config, "__data_version__": DATA_VERSION}


def _encode(value: Any) -> Any:
    if isinstance(value, History):
        return {_HISTORY: value.to_dict()}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor: its values, as NumPy
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim > 0:  # exact: floats round-trip through JSON
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()  # a NumPy scalar or a 0-d array
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_HISTORY}:
            return History.from_dict(value[_HISTORY])
        if set(value) == {_ARRAY, "dtype", "shape"}:
            return np.asarray(value[_ARRAY], dtype=value["dtype"]).reshape(value["shape"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class RunCache:
    """Results of finished runs stored as `<root>/<name-><key>.json`.

    `enabled=False` makes every `run` call `fn()` (and still store the result), for a cold run.
    """

    def __init__(self, root: str | os.PathLike = "runs/cache", enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled

    def path(self, config: Mapping[str, Any], name: str = "run") -> Path:
        """Where the result of `config` is (or would be) stored.

        The key also covers `course_utils.data.DATA_VERSION`, so runs on an older split of the
        data are never returned for today's.
        """
        return self.root / f"{name}-{config_key(_with_data_version(config))}.json"

    def load(self, config: Mapping[str, Any], name: str = "run") -> dict[str, Any] | None:
        """The stored result of `config`, or `None` when there is none (or it is unreadable)."""
        path = self.path(config, name)
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        expected = _with_data_version(config)
        if stored.get("config") != json.loads(json.dumps(expected, default=str)):
            return None  # a hash collision or a hand-edited file: do not trust it
        return _decode(stored["result"])

    def save(self, config: Mapping[str, Any], result: Mapping[str, Any], name: str = "run") -> Path:
        """Store `result` for `config` atomically (a temporary file, then a rename)."""
        path = self.path(config, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"config": _with_data_version(config), "result": _encode(dict(result))}
        text = json.dumps(payload, indent=1, default=str)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def run(
        self,
        config: Mapping[str, Any],
        fn: Callable[[], Mapping[str, Any]],
        name: str = "run",
    ) -> dict[str, Any]:
        """The stored result of `config` if there is one, else `fn()` (stored, then returned).

        The returned dict has an extra key `cached`: whether it came from the cache.
        """
        if self.enabled and (hit := self.load(config, name)) is not None:
            return {**hit, "cached": True}
        result = dict(fn())
        self.save(config, result, name)
        return {**_decode(_encode(result)), "cached": False}
