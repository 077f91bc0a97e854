"""Which PyTorch build should `scripts/setup.sh` install? Prints the extra pip options (or nothing).

PyPI's Linux wheels of torch carry CUDA (several GB of NVIDIA libraries). On a Linux machine with
no NVIDIA GPU the CPU build from PyTorch's own index is the right one (~200 MB). So:

- torch already importable (Colab's CUDA build, a learner's own)  -> nothing: it is kept;
- an NVIDIA GPU (``nvidia-smi`` on the PATH)                      -> nothing: PyPI's CUDA build;
- not Linux (macOS, Windows: PyPI's wheels there are CPU/MPS ones) -> nothing;
- otherwise, if PyTorch's CPU index answers within 3 s             -> ``--extra-index-url <cpu index>``
  (its ``2.x.y+cpu`` wheel sorts above PyPI's ``2.x.y``, so pip takes it; the pin in
  constraints.txt matches both);
- otherwise (the index is unreachable, e.g. a PyPI-only network)  -> nothing, with a note on stderr.

``COURSE_TORCH_INDEX`` overrides the choice: a URL to use that index, or ``none`` for plain pip.
Run with ``--explain`` to print the reason too. Standard library only: it runs before anything is
installed.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
import urllib.request
from collections.abc import Callable

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 3.0


def index_reachable(url: str = CPU_INDEX, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Does the index answer at all within ``timeout`` seconds? (honours HTTPS_PROXY)"""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except OSError:  # URLError, timeouts, refused connections, HTTP errors
        return False


def choose(
    torch_installed: bool,
    has_nvidia_gpu: bool,
    system: str,
    reachable: Callable[[str], bool] = index_reachable,
    override: str | None = None,
) -> tuple[list[str], str]:
    """The pip options for torch and why: ``(options, reason)``."""
    if override:
        if override.lower() == "none":
            return [], "COURSE_TORCH_INDEX=none: plain pip"
        return ["--extra-index-url", override], f"COURSE_TORCH_INDEX: {override}"
    if torch_installed:
        return [], "torch is already installed: kept as it is"
    if has_nvidia_gpu:
        return [], "an NVIDIA GPU is present: PyPI's CUDA build"
    if system != "Linux":
        return [], f"{system}: PyPI's torch wheels are already CPU builds"
    if reachable(CPU_INDEX):
        return ["--extra-index-url", CPU_INDEX], "no NVIDIA GPU: PyTorch's CPU build"
    return [], f"no NVIDIA GPU, but {CPU_INDEX} is unreachable: plain pip (PyPI, find-links)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options, reason = choose(
        torch_installed=importlib.util.find_spec("torch") is not None,
        has_nvidia_gpu=shutil.which("nvidia-smi") is not None,
        system=platform.system(),
        override=os.environ.get("COURSE_TORCH_INDEX"),
    )
    if "--explain" in argv:
        print(f"torch: {reason}", file=sys.stderr)
    print(" ".join(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
