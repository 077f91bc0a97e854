"""scripts/gpu_check.py: skips cleanly without CUDA, and its datasheet lookup is right."""

from __future__ import annotations

import subprocess
import sys

from course_utils.experiments import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402


def test_without_cuda_it_prints_one_skip_line_and_succeeds(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("SKIP") and "no CUDA GPU" in out[0]


def test_script_runs_as_a_command_here():
    import torch

    if torch.cuda.is_available():  # pragma: no cover - a GPU machine runs the real checks
        return
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("SKIP"), done.stdout + done.stderr


def test_datasheet_peaks_match_the_longest_name():
    assert gpu_check.datasheet_peak("NVIDIA H100 80GB HBM3") == 989e12  # the SXM board
    assert gpu_check.datasheet_peak("NVIDIA H100 PCIe") == 756e12
    assert gpu_check.datasheet_peak("NVIDIA A100-SXM4-40GB") == 312e12
    assert gpu_check.datasheet_peak("Tesla T4") is None
