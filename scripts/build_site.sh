#!/usr/bin/env bash
# Build the course site (Jupyter Book 1) from the stored notebook outputs, from scratch.
# -W -n --keep-going on a fresh _build: any warning (a broken link, a missing page, a notebook that
# does not render) fails the build, and every warning is reported, not only the first.
# A clean build ends by stamping book/_build/ with a fingerprint of its inputs
# (scripts/site_stamp.py), so the tests reuse this site instead of building it again.
# Usage: bash scripts/build_site.sh        -> book/_build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
JB=.venv/bin/jupyter-book
[ -x "$JB" ] || JB=jupyter-book
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
BUILD=book/_build
STAMP=$("$PY" scripts/site_stamp.py --print)  # the inputs as they are now, before building
rm -rf "$BUILD"
"$JB" build . --config book/_config.yml --toc book/_toc.yml --path-output book \
  -W -n --keep-going --builder html
test -f "$BUILD/html/index.html"
echo "$STAMP" > "$BUILD/.inputs.sha256"
echo "==> site built: $(pwd)/$BUILD/html/index.html"
