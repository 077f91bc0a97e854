"""Maintainer helpers for the chapter notebooks: discovery, pairing, execution, the course map.

Used by ``scripts/run_notebooks.py``, the tests and the course site (``setup`` below is a Sphinx
extension that renders the home page's course map from the chapter files that exist).

Each chapter is ``chapters/NN_slug.ipynb`` (committed with the outputs of a full run) paired with
``chapters/NN_slug.py`` (jupytext py:percent). Adding the pair is all it takes to add a chapter to
the site's table of contents, the home page's course map and the tests.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = ROOT / "chapters"
COURSE_REPO = "https://github.com/course-llm/finetuning-prompt-course"  # also book/_config.yml
BRANCH = "main"
RUN_KEY = "course_full_run"  # notebook metadata written by scripts/run_notebooks.py
CHAPTER_RE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")

# The plan of the course: what each chapter covers and which section of the source article.
PLAN: dict[int, tuple[str, str]] = {
    1: (
        "§1",
        "Purpose, audience, course map, bilingual glossary; environment check; first predictions.",
    ),
    2: (
        "§2",
        "Tokens, embeddings, attention, next-token prediction; pretraining a tiny GPT vs SmolLM2.",
    ),
    3: (
        "§3",
        "The fine-tuning algorithm; head-only vs top-k layers vs full vs LoRA on one budget.",
    ),
    4: (
        "§4",
        "The mathematics: cross-entropy and its gradient, backpropagation by hand, optimisers.",
    ),
    5: (
        "§5",
        "Project: a sentiment classifier end to end, evaluation, error analysis, out-of-domain tests.",
    ),
    6: (
        "§2.3, §2.4, §8.1, §9.2",
        "Prompt design: zero- and few-shot, calibration, prompt selection, LoRA on the prompt, injection.",
    ),
    7: ("§6", "Applications: NER, question answering, semantic search, instruction tuning, chat."),
    8: ("§7", "Tools: datasets, Trainer, PEFT, accelerate, profiling, debugging, reproducibility."),
    9: ("§8", "Trends and challenges: efficiency, quantisation, privacy, interpretability."),
    10: ("§9, §10", "FAQ answered by experiments, and a verified reading list."),
}


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
    def full_run(self) -> dict:
        """What the maintainer script recorded about the stored full run: seconds and machine."""
        import nbformat

        return dict(nbformat.read(self.path, as_version=4).metadata.get(RUN_KEY, {}))

    @property
    def title(self) -> str:
        import nbformat

        nb = nbformat.read(self.path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
        return self.slug


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
        if text in (chapter.slug, chapter.path.name, chapter.text_path.name) or Path(
            text
        ).resolve() in (
            chapter.path.resolve(),
            chapter.text_path.resolve(),
        ):
            return chapter
    raise SystemExit(f"no chapter {key!r}; chapters: {[c.slug for c in chapters(folder)]}")


def colab_url(notebook: Path) -> str:
    """The Colab link that opens ``notebook`` from the repository's main branch."""
    relative = Path(notebook).resolve().relative_to(ROOT).as_posix()
    org_repo = COURSE_REPO.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{org_repo}/blob/{BRANCH}/{relative}"


# -- pairing ---------------------------------------------------------------------------------------
def cell_signature(nb) -> list[tuple[str, str]]:
    """What pairing must preserve: each cell's type and source (outputs live only in the .ipynb)."""
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


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
                f"{a[0]} cell\n{a[1]}".splitlines(), f"{b[0]} cell\n{b[1]}".splitlines(),
                chapter.path.name, chapter.text_path.name, lineterm="", n=1,
            )  # fmt: skip
            problems.append(f"cell {i} differs:\n" + "\n".join(list(diff)[:12]))
            break
    return problems


# -- execution -----------------------------------------------------------------------------------
def execute(notebook: Path, output: Path, parameters: dict | None = None, timeout: int = 1800):
    """Run ``notebook`` with papermill into ``output`` (never over the committed file)."""
    import papermill

    return papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters or {},
        kernel_name="python3",
        cwd=str(Path(notebook).parent),
        execution_timeout=timeout,
        progress_bar=False,
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


def record_full_run(nb, seconds: float) -> None:
    """Store the wall time of a full run in the notebook's metadata (the course map shows it)."""
    nb.metadata[RUN_KEY] = {"seconds": round(seconds), "machine": machine_description()}


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


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


# -- the course site -----------------------------------------------------------------------------
def course_map_markdown(folder: Path = CHAPTERS_DIR, link_prefix: str = "/") -> str:
    """A Markdown table of the chapters that exist: title (linked), source sections, contents and
    the recorded time of the stored full run."""
    rows = [
        "| # | Chapter | Source | What you do | Full run |",
        "| --- | --- | --- | --- | --- |",
    ]
    for chapter in chapters(folder):
        source, summary = PLAN.get(chapter.number, ("", ""))
        link = f"{{doc}}`{chapter.title} <{link_prefix}{chapter.docname}>`"
        run = chapter.full_run
        timing = f"{_minutes(run['seconds'])} ({run['machine']})" if run else "not recorded"
        rows.append(f"| {chapter.number} | {link} | {source} | {summary} | {timing} |")
    return "\n".join(rows)


def setup(app):  # pragma: no cover - exercised by the site build
    """Sphinx extension: the ``course-map`` directive lists the chapters that exist."""
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class CourseMap(SphinxDirective):
        def run(self):
            from docutils import nodes

            container = nodes.container()
            self.env.note_dependency(str(CHAPTERS_DIR))
            self.state.nested_parse(
                StringList(course_map_markdown().splitlines()), self.content_offset, container
            )
            return container.children

    app.add_directive("course-map", CourseMap)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
