#!/usr/bin/env python
"""Maintainer command: refresh what the chapters copy from elsewhere, keeping stored outputs.

    python scripts/sync_chapters.py          # every chapter
    python scripts/sync_chapters.py 3        # one chapter (number, slug or path)
    python scripts/sync_chapters.py --check  # change nothing; exit 1 and list what is stale

Two things in a chapter are copies, and the tests fail when they drift:

- each solution block (a collapsed ``<details>`` block in a markdown cell) holds the source of one
  function of ``course_utils/solutions/chNN.py``; edit the solution file, then run this;
- the parameters cell's ``SMOKE = False`` line says how long the stored full run took (the
  notebook's ``course_full_run`` metadata, written by ``scripts/run_notebooks.py``).

Both files of the pair are rewritten (the ``.ipynb`` keeps its outputs). The pair must be in sync
first (``jupytext --sync chapters/NN_slug.py`` after editing the ``.py``).
"""

from __future__ import annotations

import argparse
import sys

import chapter_tools


def refreshed(nb) -> bool:
    """Refresh ``nb`` in place; True when something changed."""
    before = [cell.source for cell in nb.cells]
    chapter_tools.set_smoke_line(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = chapter_tools.refreshed_solution_blocks(cell.source)
    return before != [cell.source for cell in nb.cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "chapters", nargs="*", help="chapter numbers, slugs or paths (default: all)"
    )
    parser.add_argument("--check", action="store_true", help="change nothing; report what is stale")
    args = parser.parse_args(argv)

    import jupytext
    import nbformat

    selected = [chapter_tools.find_chapter(c) for c in args.chapters] or chapter_tools.chapters()
    stale = []
    for chapter in selected:
        problems = chapter_tools.pairing_problems(chapter)
        if problems:
            print(f"{chapter.slug}: out of sync with its pair; run `jupytext --sync "
                  f"{chapter.text_path.relative_to(chapter_tools.ROOT)}` first", file=sys.stderr)  # fmt: skip
            return 1
        nb = chapter.read()
        if not refreshed(nb):
            continue
        stale.append(chapter.slug)
        if not args.check:
            nbformat.write(nb, chapter.path)
            jupytext.write(nb, chapter.text_path, fmt="py:percent")
            print(f"refreshed {chapter.slug}")
    if args.check and stale:
        print("stale: " + ", ".join(stale) + " (run python scripts/sync_chapters.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
