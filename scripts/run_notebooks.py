#!/usr/bin/env python
"""Maintainer command: re-execute chapter notebooks and refresh both paired files.

    python scripts/run_notebooks.py                 # every chapter, full mode (SMOKE = False)
    python scripts/run_notebooks.py 1               # one chapter (number, slug or path)
    python scripts/run_notebooks.py 1 --smoke       # a quick SMOKE run into a temp dir; commits nothing
    python scripts/run_notebooks.py 1 -p DECODER HuggingFaceTB/SmolLM2-360M-Instruct --smoke

For each chapter, a full run:

1. brings the pair in sync first (``jupytext --sync``: whichever of ``.ipynb`` / ``.py`` you
   edited last wins — this trusts file times, so it is for your working copy, never for CI);
2. executes the notebook with papermill (``SMOKE = False``) into a temporary folder;
3. copies the outputs back into the committed ``.ipynb`` (its own parameters cell stays as it is,
   papermill's injected cell and timings are dropped), records the run's wall time, the peak
   memory (resident set) of its kernel and the machine in its metadata (the site's course map
   shows them) and in the parameters cell's ``SMOKE = False`` line, and rewrites the ``.py`` pair
   from it;
4. refuses to write anything if a cell raised.

``--smoke`` runs with ``SMOKE = True`` in a temporary folder with a fresh run cache
(``COURSE_RUNS``), as the tests do, and writes nothing into the repository; when the ``.py`` is
newer than the ``.ipynb`` it executes the ``.py`` (the edit under test), leaving both as they are.

Notebooks run one at a time: on a small CPU a second busy process slows both by ~3x. Several
full runs are executed one per process of this script, so that each kernel's peak memory
(``getrusage(RUSAGE_CHILDREN)``, the largest child waited for) is its own.
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import chapter_tools  # noqa: E402  (scripts/ is on sys.path: it is this script's folder)

ROOT = chapter_tools.ROOT
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a plain string such as a model id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "chapters", nargs="*", help="chapter numbers, slugs or paths (default: all)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="run with SMOKE = True into a temp dir; change nothing"
    )
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter (Python literal or string)")  # fmt: skip
    parser.add_argument(
        "--output-dir", type=Path, help="where executed copies go (default: a temp dir)"
    )
    args = parser.parse_args(argv)

    import jupytext
    import jupytext.cli
    import nbformat

    selected = [chapter_tools.find_chapter(c) for c in args.chapters] or chapter_tools.chapters()
    parameters = {"SMOKE": args.smoke} | {
        name: parse_value(value) for name, value in args.parameter
    }
    if len(selected) > 1 and not args.smoke:  # one process per full run: its own peak memory
        rest = sum((["-p", n, v] for n, v in args.parameter), [])
        if args.output_dir:
            rest += ["--output-dir", str(args.output_dir)]
        codes = [subprocess.call([sys.executable, __file__, str(c.path), *rest]) for c in selected]
        return max(codes)
    out_dir = args.output_dir or Path(tempfile.mkdtemp(prefix="course-notebooks-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    cwd = None  # a full run works in chapters/ and keeps runs/ (its cache) as Jupyter would
    if args.smoke:  # a SMOKE run reads and writes nothing of the repository's
        cwd = out_dir
        os.environ["COURSE_RUNS"] = str(out_dir / "runs")
    failed = []
    for chapter in selected:
        if not args.smoke:
            jupytext.cli.jupytext(["--sync", "--quiet", str(chapter.path)])
        executed_path = out_dir / chapter.path.name
        source = chapter.path
        if args.smoke and chapter.text_path.stat().st_mtime > chapter.path.stat().st_mtime:
            source = (
                out_dir / f"{chapter.slug}.from-py.ipynb"
            )  # test the edited .py, not the stale pair
            nbformat.write(jupytext.read(chapter.text_path), source)
        print(
            f"==> {chapter.slug}: running {source.name} with {parameters} -> {executed_path}",
            flush=True,
        )
        start = time.perf_counter()
        try:
            executed = chapter_tools.execute(source, executed_path, parameters, cwd=cwd)
        except Exception as error:  # papermill raises PapermillExecutionError on a failing cell
            print(
                f"FAILED {chapter.slug} after {time.perf_counter() - start:.0f} s:\n{error}",
                file=sys.stderr,
            )
            failed.append(chapter.slug)
            continue
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(f"    ran in {seconds:.0f} s, kernel peak memory {peak_mb:.0f} MB", flush=True)
        if args.smoke:
            continue
        merged = chapter_tools.merge_outputs(nbformat.read(chapter.path, as_version=4), executed)
        chapter_tools.record_full_run(
            merged, seconds, peak_mb
        )  # the course map and the SMOKE line show it
        problems = chapter_tools.stored_output_problems(merged)
        if problems:
            print(f"FAILED {chapter.slug}: " + "; ".join(problems), file=sys.stderr)
            failed.append(chapter.slug)
            continue
        nbformat.write(merged, chapter.path)
        jupytext.write(merged, chapter.text_path, fmt="py:percent")
        print(
            f"    refreshed {chapter.path.relative_to(ROOT)} and {chapter.text_path.relative_to(ROOT)}"
        )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
