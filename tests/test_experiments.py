"""The run cache (course_utils.experiments): keys, round trips, hits and misses."""

from __future__ import annotations

import json

import numpy as np

from course_utils.experiments import RunCache, config_key
from course_utils.training import History


def test_key_ignores_order_and_sees_values():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"lr": 1e-4}) != config_key({"lr": 2e-4})
    assert len(config_key({"x": 1})) == 16


def test_run_calls_once_then_hits(tmp_path):
    cache = RunCache(tmp_path)
    calls = []

    def fn():
        calls.append(1)
        history = History(steps=[{"step": 1, "loss": 0.5}], total_steps=1, train_time_s=2.0)
        return {"accuracy": np.float64(0.75), "history": history, "sizes": (1, 2)}

    first = cache.run({"lr": 1e-3, "strategy": "head"}, fn, name="head")
    second = cache.run({"strategy": "head", "lr": 1e-3}, fn, name="head")
    assert len(calls) == 1
    assert first["cached"] is False and second["cached"] is True
    for result in (first, second):  # same types on a miss and on a hit
        assert result["accuracy"] == 0.75 and isinstance(result["accuracy"], float)
        assert isinstance(result["history"], History)
        assert result["history"].train_time_s == 2.0
        assert result["history"].steps == [{"step": 1, "loss": 0.5}]
        assert result["sizes"] == [1, 2]
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.json")] == ["head"]


def test_other_config_misses_and_disabled_cache_recomputes(tmp_path):
    cache = RunCache(tmp_path)
    cache.run({"lr": 1}, lambda: {"v": 1})
    assert cache.run({"lr": 2}, lambda: {"v": 2})["v"] == 2
    cold = RunCache(tmp_path, enabled=False)
    assert cold.run({"lr": 1}, lambda: {"v": 10}) == {"v": 10, "cached": False}
    assert cache.run({"lr": 1}, lambda: {"v": 99})["v"] == 10  # the cold run was stored


def test_corrupt_or_mismatched_file_is_ignored(tmp_path):
    cache = RunCache(tmp_path)
    config = {"seed": 0}
    cache.path(config).parent.mkdir(parents=True, exist_ok=True)
    cache.path(config).write_text("{not json")
    assert cache.load(config) is None
    cache.path(config).write_text(json.dumps({"config": {"seed": 1}, "result": {"v": 1}}))
    assert cache.load(config) is None
    assert cache.run(config, lambda: {"v": 3})["v"] == 3
    assert not list(tmp_path.glob(".tmp-*"))  # atomic writes leave no temporary files


def test_arrays_round_trip_exactly(tmp_path):
    """A miss and a hit return the same arrays, bit for bit (no numpy repr strings)."""
    rng = np.random.default_rng(0)
    arrays = {
        "logits": rng.normal(size=(1500, 2)).astype(np.float32),  # > 1,000 elements
        "scores": rng.normal(size=7),
        "labels": np.arange(5, dtype=np.int64),
    }
    cache = RunCache(tmp_path)
    miss = cache.run({"k": 1}, lambda: dict(arrays))
    hit = cache.run({"k": 1}, lambda: dict(arrays))
    assert hit["cached"] is True
    for result in (miss, hit):
        for name, array in arrays.items():
            got = result[name]
            assert isinstance(got, np.ndarray) and got.dtype == array.dtype, name
            assert np.array_equal(got, array), name


def test_runs_dir_follows_the_environment(tmp_path, monkeypatch):
    from course_utils.experiments import ROOT, runs_dir

    monkeypatch.delenv("COURSE_RUNS", raising=False)
    assert runs_dir() == ROOT / "runs"
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))
    assert runs_dir() == tmp_path


def test_a_new_data_version_misses(tmp_path, monkeypatch):
    """Runs on an older split of the data are not returned for today's."""
    import course_utils.data

    cache = RunCache(tmp_path)
    cache.run({"lr": 1}, lambda: {"v": 1})
    monkeypatch.setattr(course_utils.data, "DATA_VERSION", course_utils.data.DATA_VERSION + 1)
    assert cache.run({"lr": 1}, lambda: {"v": 2}) == {"v": 2, "cached": False}
