"""Lint and formatting are part of the test command: `ruff check .` and `ruff format --check .`
(configured in pyproject.toml: the chapters' .ipynb cells are linted and formatted; their
jupytext .py pairs are linted only). A failure lists the offending files and how to fix them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ruff"
    command = [str(exe)] if exe.exists() else [shutil.which("ruff") or "ruff"]
    try:
        return subprocess.run(
            [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
    except FileNotFoundError:
        pytest.fail("ruff is not installed: pip install -e '.[dev]' (scripts/setup.sh does it)")


def test_ruff_check():
    result = ruff("check", ".", "--output-format", "concise", "--no-cache")
    assert result.returncode == 0, (
        "ruff check found problems (fix: .venv/bin/ruff check --fix <file>):\n"
        + result.stdout[-8000:]
        + result.stderr[-2000:]
    )


def test_ruff_format():
    result = ruff("format", "--check", ".", "--output-format", "concise", "--no-cache")
    assert result.returncode == 0, (
        "not formatted (fix: .venv/bin/ruff format <file>; in a chapter, format the .ipynb and "
        "run jupytext --sync on it):\n" + result.stdout[-8000:] + result.stderr[-2000:]
    )
