#!/usr/bin/env python
"""The course site's stamp: a fingerprint of everything the build reads.

    python scripts/site_stamp.py --print   # the fingerprint of today's inputs
    python scripts/site_stamp.py --check   # exit 0 when book/_build/html is current, else 1

The fingerprint is the SHA-256 of the site's input files (book configuration, pages and
extension, every chapter notebook, the build script) and of the versions of the packages that
render them. ``scripts/build_site.sh`` takes it before building and writes it into
``book/_build/.inputs.sha256`` only after the build with ``-W`` (warnings are errors) succeeded,
so a current stamp means: this very input built cleanly.
The tests reuse such a site instead of building it again (``tests/test_book.py``).
"""

from __future__ import annotations

import hashlib
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "book" / "_build"
STAMP = BUILD / ".inputs.sha256"
INPUTS = [
    "book/_config.yml", "book/_toc.yml", "book/*.md", "book/_ext/*.py",
    "chapters/*.ipynb", "chapters/*.md",
    "scripts/build_site.sh", "scripts/site_stamp.py", "scripts/chapter_tools.py",
]  # fmt: skip
PACKAGES = [
    "jupyter-book", "sphinx", "myst-nb", "myst-parser", "sphinx-book-theme",
    "sphinx-mathjax-offline", "pydata-sphinx-theme",
]  # fmt: skip


def input_files(root: Path = ROOT) -> list[Path]:
    """The files the site build reads (under ``root``, the repository)."""
    return sorted({p for pattern in INPUTS for p in root.glob(pattern) if p.is_file()})


def fingerprint(root: Path = ROOT) -> str:
    """SHA-256 over the input files (names and contents) and the rendering packages' versions."""
    digest = hashlib.sha256()
    for path in input_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}=={version}\n".encode())
    return digest.hexdigest()


def is_current() -> bool:
    """Is there a site in book/_build/html built cleanly from exactly today's inputs?"""
    return (
        STAMP.is_file()
        and (BUILD / "html" / "index.html").is_file()
        and STAMP.read_text().strip() == fingerprint()
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--print"]:
        print(fingerprint())
        return 0
    if args == ["--check"]:
        current = is_current()
        print("site is current" if current else "site is missing or stale")
        return 0 if current else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
