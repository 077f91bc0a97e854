"""The command line: ``python -m course_utils fetch`` and ``doctor`` (as a learner types them)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

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


# --- scripts/choose_torch.py: which PyTorch build scripts/setup.sh installs -------------------

ROOT = Path(__file__).resolve().parent.parent


def _choose_torch():
    spec = importlib.util.spec_from_file_location(
        "choose_torch", ROOT / "scripts" / "choose_torch.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("installed", "gpu", "system", "reachable", "expected"),
    [
        (True, False, "Linux", True, []),  # a learner's (or Colab's) torch is kept
        (True, True, "Linux", True, []),
        (False, True, "Linux", True, []),  # NVIDIA GPU: PyPI's CUDA build
        (False, False, "Darwin", True, []),  # PyPI's macOS/Windows wheels are CPU builds
        (False, False, "Windows", True, []),
        (
            False,
            False,
            "Linux",
            True,
            ["--extra-index-url", "https://download.pytorch.org/whl/cpu"],
        ),
        (False, False, "Linux", False, []),  # index unreachable (PyPI-only network): plain pip
    ],
)
def test_choose_torch_decision(installed, gpu, system, reachable, expected):
    ct = _choose_torch()
    probed = []

    def probe(url):
        probed.append(url)
        return reachable

    options, reason = ct.choose(installed, gpu, system, reachable=probe)
    assert options == expected and reason
    assert probed == ([ct.CPU_INDEX] if not installed and not gpu and system == "Linux" else [])


def test_choose_torch_override():
    ct = _choose_torch()
    never = lambda url: pytest.fail("an override must not probe")  # noqa: E731
    assert ct.choose(True, False, "Linux", never, override="none")[0] == []
    url = "https://mirror.test/torch-cpu"
    assert ct.choose(False, False, "Linux", never, override=url)[0] == ["--extra-index-url", url]


def test_choose_torch_probe_fails_fast_offline():
    """Nothing listens on this loopback port: the probe says no at once."""
    assert _choose_torch().index_reachable("http://127.0.0.1:9/whl/cpu", timeout=2) is False


def test_choose_torch_script_keeps_this_venvs_torch():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "choose_torch.py"), "--explain"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "COURSE_TORCH_INDEX"},
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == ""
    assert "already installed" in out.stderr


def test_setup_installs_torch_before_the_course():
    script = (ROOT / "scripts" / "setup.sh").read_text()
    assert script.index("scripts/choose_torch.py") < script.index('-e ".[dev]"')
