"""The command line: ``python -m course_utils fetch`` and ``doctor`` (as a learner types them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from course_utils import assets


def course(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "course_utils", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip


def test_help_lists_commands():
    out = course("--help")
    assert out.returncode == 0 and "fetch" in out.stdout and "doctor" in out.stdout


def test_doctor_fails_on_an_empty_cache_and_says_what_to_run(tmp_path):
    out = course("doctor", COURSE_CACHE=str(tmp_path))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(line.startswith("OK   python") for line in lines)
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == len(assets.REGISTRY)
    assert all("python -m course_utils fetch" in line for line in failed)


def test_fetch_offline_with_empty_cache_fails_with_one_clear_error(tmp_path):
    empty = tmp_path / "no-index"
    empty.mkdir()
    out = course(
        "fetch", COURSE_CACHE=str(tmp_path / "cache"), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(empty)
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert (
        out.stderr.startswith("error: asset 'minilm'")
        and "python -m course_utils fetch" in out.stderr
    )


@pytest.mark.assets
def test_fetch_then_doctor_all_ok():
    out = course("fetch")
    assert out.returncode == 0, out.stderr
    assert all(line.endswith("cached") for line in out.stdout.splitlines())
    out = course("doctor")
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert lines and all(line.startswith("OK") for line in lines)
    items = [line.split()[1] for line in lines]
    for item in ("python", "torch", "transformers", "device", "asset", "free"):
        assert item in items
