#!/usr/bin/env bash
# README's first command. Creates .venv, installs the course (exact versions from constraints.txt),
# fetches the pinned models and data into the asset cache, checks the machine, and builds the site.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# torch first where it matters: on Linux without an NVIDIA GPU, PyTorch's CPU build instead of
# PyPI's CUDA one (scripts/choose_torch.py says why; an installed torch, e.g. Colab's, is kept).
TORCH_OPTIONS=$(.venv/bin/python scripts/choose_torch.py --explain)
if [ -n "$TORCH_OPTIONS" ]; then
  echo "==> installing PyTorch ($TORCH_OPTIONS)"
  # shellcheck disable=SC2086  # the options are words
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt $TORCH_OPTIONS torch
fi
echo "==> installing the course and its tools (pinned by constraints.txt)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
echo "==> fetching models and data (cached; nothing is downloaded twice)"
.venv/bin/python -m course_utils fetch
echo "==> checking the environment"
.venv/bin/python -m course_utils doctor
echo "==> building the course site from the stored notebooks"
bash scripts/build_site.sh
