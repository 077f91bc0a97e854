"""Maintainer tools for the chapter notebooks: discovery, pairing, execution, stored runs,
the parameters line and the solution blocks.

Not part of the learner's package (``course_utils`` holds only what a notebook calls). Used by
``scripts/run_notebooks.py``, ``scripts/sync_chapters.py``, ``scripts/browser_check.py``, the
site's course map (``book/_ext/course_map.py``) and the tests (``tests/test_notebooks.py``,
``tests/test_book.py``), which put this folder on ``sys.path``.

Each chapter is ``chapters/NN_slug.ipynb`` (committed with the outputs of a full run) paired with
``chapters/NN_slug.py`` (jupytext py:percent). Adding the pair is all it takes to add a chapter to
the site's table of contents, the home page's course map and the tests.
"""

from __future__ import annotations

import ast
import copy
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from course_utils.stored_runs import notebook_title

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = ROOT / "chapters"
SOLUTIONS_DIR = ROOT / "course_utils" / "solutions"
COURSE_REPO = "https://github.com/course-llm/finetuning-prompt-course"  # also book/_config.yml
BRANCH = "main"
RUN_KEY = "course_full_run"  # notebook metadata written by scripts/run_notebooks.py
CHAPTER_RE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
CHECK_TAG = "nbval-check-output"  # nbval compares the outputs of the cells with this tag


@dataclass(frozen=True)
class Chapter:
    number: int
    path: Path  # the .ipynb

    @property
    def slug(self) -> str:
        return self.path.stem

    @property
    def text_path(self) -> Path:
        return self.path.with_suffix(".py")

    @property
    def docname(self) -> str:  # the page name in the site (relative to the repository root)
        return f"chapters/{self.slug}"

    @property
    def colab_url(self) -> str:
        return colab_url(self.path)

    @property
    def solutions_path(self) -> Path:
        return SOLUTIONS_DIR / f"ch{self.number:02d}.py"

    def read(self):
        import nbformat

        return nbformat.read(self.path, as_version=4)

    @property
    def full_run(self) -> dict:
        """What the maintainer script recorded about the stored full run: seconds and machine."""
        return dict(self.read().metadata.get(RUN_KEY, {}))

    @property
    def title(self) -> str:
        return notebook_title(self.read().cells, self.slug)


def chapters(folder: Path = CHAPTERS_DIR) -> list[Chapter]:
    """The chapters that exist, in order (``NN_slug.ipynb`` files)."""
    found = [
        Chapter(int(m.group(1)), p)
        for p in sorted(folder.glob("*.ipynb"))
        if (m := CHAPTER_RE.match(p.name))
    ]
    return sorted(found, key=lambda c: c.number)


def find_chapter(key: str | int, folder: Path = CHAPTERS_DIR) -> Chapter:
    """A chapter by number (``1``, ``"01"``), slug or path."""
    text = str(key)
    for chapter in chapters(folder):
        if text.isdigit() and int(text) == chapter.number:
            return chapter
        names = (chapter.slug, chapter.path.name, chapter.text_path.name)
        paths = (chapter.path.resolve(), chapter.text_path.resolve())
        if text in names or Path(text).resolve() in paths:
            return chapter
    raise SystemExit(f"no chapter {key!r}; chapters: {[c.slug for c in chapters(folder)]}")


def colab_url(notebook: Path) -> str:
    """The Colab link that opens ``notebook`` from the repository's main branch."""
    relative = Path(notebook).resolve().relative_to(ROOT).as_posix()
    org_repo = COURSE_REPO.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{org_repo}/blob/{BRANCH}/{relative}"


def peak_memory(run: dict) -> str:
    """The recorded peak memory of a full run, e.g. '2.1 GB', or '' when it was not recorded."""
    mb = run.get("peak_memory_mb")
    return f"{mb / 1024:.1f} GB" if mb else ""


def minutes(seconds: float) -> str:
    """A duration as the course map and the parameters cells show it: '48 s' or '14.4 min'."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


# -- pairing ---------------------------------------------------------------------------------------
def cell_signature(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    """What pairing must preserve: each cell's type, source and tags (outputs live in the .ipynb)."""
    return [
        (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", [])))
        for cell in nb.cells
    ]


def pairing_problems(chapter: Chapter) -> list[str]:
    """Differences between a chapter's .ipynb and its .py pair (empty when in sync)."""
    import jupytext

    if not chapter.text_path.exists():
        return [
            f"{chapter.text_path.name} is missing; run `jupytext --set-formats ipynb,py:percent {chapter.path}`"
        ]
    ipynb = cell_signature(jupytext.read(chapter.path))
    text = cell_signature(jupytext.read(chapter.text_path))
    problems = []
    if len(ipynb) != len(text):
        problems.append(
            f"{chapter.path.name} has {len(ipynb)} cells, {chapter.text_path.name} has {len(text)}"
        )
    for i, (a, b) in enumerate(zip(ipynb, text, strict=False)):
        if a != b:
            diff = difflib.unified_diff(
                f"{a[0]} cell {list(a[2])}\n{a[1]}".splitlines(),
                f"{b[0]} cell {list(b[2])}\n{b[1]}".splitlines(),
                chapter.path.name, chapter.text_path.name, lineterm="", n=1,
            )  # fmt: skip
            problems.append(f"cell {i} differs:\n" + "\n".join(list(diff)[:12]))
            break
    return problems


# -- execution -----------------------------------------------------------------------------------
def execute(
    notebook: Path,
    output: Path,
    parameters: dict | None = None,
    timeout: int = 1800,
    cwd: Path | None = None,
    save_each_cell: bool = True,
):
    """Run ``notebook`` with papermill into ``output`` (never over the committed file).

    ``cwd`` is the kernel's working folder (default: the notebook's own folder, as in Jupyter).
    ``save_each_cell=False`` writes ``output`` only at the end (and every 30 s): it saves about a
    second per SMOKE run of a notebook with large stored outputs; a long full run keeps saving
    after each cell so that its progress can be watched. The kernel is stopped at once when the
    last cell has run (nbclient's ``shutdown_kernel="immediate"``): every output is in by then,
    and a graceful exit of a kernel that has imported torch and transformers took 1.6-3 s more of
    each run. Raises
    ``papermill.PapermillExecutionError`` (with the cell's traceback) when a cell raises; the
    executed copy is written either way.
    """
    import papermill

    return papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters or {},
        kernel_name="python3",
        cwd=str(cwd or Path(notebook).parent),
        execution_timeout=timeout,
        progress_bar=False,
        request_save_on_cell_execute=save_each_cell,
        shutdown_kernel="immediate",
    )


def merge_outputs(source_nb, executed_nb):
    """The committed notebook's cells (sources, tags) with the executed run's outputs.

    Papermill's injected-parameters cell and its timing metadata are dropped, so the stored
    notebook keeps its own ``parameters`` cell and diffs stay small.
    """
    executed = {
        c.get("id"): c
        for c in executed_nb.cells
        if "injected-parameters" not in c.metadata.get("tags", [])
    }
    merged = copy.deepcopy(source_nb)
    for cell in merged.cells:
        if cell.cell_type != "code":
            continue
        run = executed.get(cell.get("id"))
        if run is None or run.source != cell.source:
            raise RuntimeError(
                f"executed notebook does not match the source at cell {cell.get('id')}"
            )
        cell.outputs = run.outputs
        cell.execution_count = run.execution_count
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    for cell in merged.cells:
        cell.metadata.pop("papermill", None)
    merged.metadata.pop("papermill", None)
    return merged


def machine_description() -> str:
    """A short description of this machine for the record of a full run, e.g. '2 CPU cores'."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU, {cores} CPU cores"
    return f"{cores} CPU cores, no GPU"


def record_full_run(nb, seconds: float, peak_mb: float | None = None) -> None:
    """Store the wall time (and the kernel's peak memory) of a full run in the notebook's metadata
    (the course map shows them) and say the time in the parameters cell's ``SMOKE`` line."""
    nb.metadata[RUN_KEY] = {"seconds": round(seconds), "machine": machine_description()}
    if peak_mb is not None:
        nb.metadata[RUN_KEY]["peak_memory_mb"] = round(peak_mb)
    set_smoke_line(nb)


def stored_output_problems(nb) -> list[str]:
    """Errors in the stored outputs, unexecuted code cells, or an out-of-order run."""
    problems, last = [], 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(
                    f"cell {i} stores an error: {out.get('ename')}: {out.get('evalue')}"
                )
        count = cell.get("execution_count")
        if count is None:
            problems.append(f"cell {i} was never executed")
        elif count <= last:
            problems.append(f"cell {i} ran out of order (execution count {count} after {last})")
        else:
            last = count
    return problems


# -- the parameters cell -------------------------------------------------------------------------
SMOKE_BLOCK_RE = re.compile(
    r"^(?:# Run All runs the full experiment.*\n)?(?:# SMOKE = True.*\n)?SMOKE = .*$", re.M
)


def parameters_cell(nb):
    """The one code cell tagged ``parameters`` (papermill injects its overrides after it)."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{len(cells)} cells are tagged 'parameters'; there must be exactly one")
    return cells[0]


def smoke_lines(run: dict) -> str:
    """The parameters cell's opening: the full run by default, how long it took when its outputs
    were stored (``run``: the ``course_full_run`` metadata) and how to get the quick version."""
    took = f"{minutes(run['seconds'])} on {run['machine']}" if run else "time not recorded yet"
    return (
        f"# Run All runs the full experiment that produced the stored outputs: {took}.\n"
        "# SMOKE = True runs tiny settings instead, in under a minute (what the tests run).\n"
        "SMOKE = False"
    )


def set_smoke_line(nb) -> None:
    """Rewrite the ``SMOKE = ...`` lines of ``nb``'s parameters cell from its recorded full run."""
    cell = parameters_cell(nb)
    block = smoke_lines(dict(nb.metadata.get(RUN_KEY, {})))
    if not SMOKE_BLOCK_RE.search(cell.source):
        raise ValueError("the parameters cell has no `SMOKE = ...` line")
    cell.source = SMOKE_BLOCK_RE.sub(lambda _: block, cell.source, count=1)


# -- solution blocks -----------------------------------------------------------------------------
# A solution is shown in a markdown cell as a collapsed HTML block holding a fenced code block:
# readable in Jupyter, Colab, GitHub and the course site alike. Its code is a copy of one function
# of course_utils/solutions/chNN.py, refreshed by `python scripts/sync_chapters.py`.
SOLUTION_RE = re.compile(
    r"<details>\n<summary>(?P<summary>Solution to exercise \d+)"
    r" \(<code>(?P<file>course_utils/solutions/ch\d\d\.py)</code>\)</summary>\n\n"
    r"```python\n(?P<code>.*?)\n```\n\n</details>",
    re.S,
)


def solution_source(path: Path, name: str) -> str:
    """The source of the top-level function ``name`` in ``path`` (decorators included)."""
    text = Path(path).read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and (
            node.name == name
        ):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "\n".join(text.splitlines()[first - 1 : node.end_lineno])
    raise ValueError(f"{path} defines no top-level {name!r}")


def solution_block(summary: str, path: Path, name: str) -> str:
    """The markdown of one collapsed solution (see ``SOLUTION_RE``)."""
    relative = Path(path).resolve().relative_to(ROOT).as_posix()
    code = solution_source(path, name)
    return (
        f"<details>\n<summary>{summary} (<code>{relative}</code>)</summary>\n\n"
        f"```python\n{code}\n```\n\n</details>"
    )


def _defined_name(code: str) -> str:
    match = re.match(r"(?:@.*\n)*(?:async\s+)?(?:def|class)\s+(\w+)", code)
    if not match:
        raise ValueError(f"a solution block must show one function; it starts {code[:40]!r}")
    return match.group(1)


def refreshed_solution_blocks(source: str) -> str:
    """``source`` (a markdown cell) with every solution block regenerated from its file."""

    def refresh(match: re.Match) -> str:
        name = _defined_name(match["code"])
        return solution_block(match["summary"], ROOT / match["file"], name)

    return SOLUTION_RE.sub(refresh, source)


def solution_problems(nb) -> list[str]:
    """Solution blocks that differ from the solution files, or none at all where exercises are."""
    problems, blocks = [], 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        blocks += len(SOLUTION_RE.findall(cell.source))
        if ":::{dropdown}" in cell.source or "{literalinclude}" in cell.source:
            problems.append(f"cell {i}: MyST dropdown/literalinclude markup shows raw in Jupyter")
        try:
            fresh = refreshed_solution_blocks(cell.source)
        except ValueError as error:
            problems.append(f"cell {i}: {error}")
            continue
        if fresh != cell.source:
            problems.append(f"cell {i}: the solution differs from its file")
    if not blocks:
        problems.append("no solution blocks (<details><summary>Solution to exercise N ...)")
    return problems
