"""The chapter notebooks: paired, stored outputs clean, defaults the full run, and they run.

Fast checks (pairing, stored outputs, parameters, solution blocks, badges) run always.

The execution test (marked ``notebooks`` and ``assets``; deselect with ``-m "not notebooks"``)
runs each notebook **once**, hermetically: papermill with ``SMOKE = True`` in a temporary folder
(working folder and executed copy there), a fresh run cache (``COURSE_RUNS``) and a fresh IPython
profile (``IPYTHONDIR``), so no test reads what another test or an earlier run left in ``runs/``;
the kernel refuses to open a file for writing inside the repository (``NO_REPO_WRITES``). A cell
that raises fails the test with its traceback.
Then the outputs of the cells tagged ``nbval-check-output`` are compared with the stored ones by
nbval's own comparison (``nbval.plugin.IPyNbCell.compare_outputs``, the regexes of
``tests/nbval_sanitize.cfg``), exactly as ``pytest --nbval-lax`` would.

While a notebook runs, every call of ``course_utils.training.train`` of two or more optimizer
steps must change at least one trainable parameter (see ``TRAIN_CHECK``): with a fresh run
cache every training run really happens, so a broken update step fails the chapters that train.

Each notebook's SMOKE wall time is recorded as the test's ``smoke_seconds`` property and printed
at the end of the session (``conftest.py``) next to its budget, ``SMOKE_BUDGET_S`` (40 s). The
budget is reported, never asserted: timings on a shared machine are measurements, not pass/fail
conditions. The suite runs on two pytest-xdist workers, so two kernels run side by side, each
with half the cores (``OMP_NUM_THREADS``, set in ``conftest.py``).
"""

from __future__ import annotations

import copy
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import chapter_tools  # noqa: E402
import course_map  # noqa: E402

CHAPTERS = chapter_tools.chapters()
ids = [c.slug for c in CHAPTERS]
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_there_are_chapters_and_every_ipynb_is_a_chapter():
    assert CHAPTERS, "no chapters/NN_slug.ipynb found"
    names = sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb"))
    assert names == [c.path.name for c in CHAPTERS], "chapter files must be named NN_slug.ipynb"
    numbers = [c.number for c in CHAPTERS]
    assert len(set(numbers)) == len(numbers), f"two chapters share a number: {numbers}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_pair_is_in_sync(chapter):
    """The .ipynb and its py:percent pair have the same cells and tags (CI never syncs)."""
    problems = chapter_tools.pairing_problems(chapter)
    assert not problems, (
        f"{chapter.slug} is out of sync with its pair:\n" + "\n".join(problems)
        + f"\nFix: jupytext --sync {chapter.path.relative_to(ROOT)} (the file you edited last wins)"
    )  # fmt: skip


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_stored_outputs_are_clean_and_in_order(chapter):
    nb = chapter.read()
    problems = chapter_tools.stored_output_problems(nb)
    assert not problems, (
        "\n".join(problems) + "\nFix: python scripts/run_notebooks.py " + chapter.slug
    )
    assert any(c.cell_type == "code" and c.outputs for c in nb.cells), "no stored outputs"
    assert "papermill" not in nb.metadata


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_parameters_default_to_the_full_run(chapter):
    """Run All in Jupyter reproduces the stored full run; the tests inject SMOKE = True."""
    nb = chapter.read()
    source = chapter_tools.parameters_cell(nb).source
    assert re.search(r"^SMOKE = False\b", source, re.M), (
        "the parameters cell must default to the full run the stored outputs came from: SMOKE = False"
    )
    expected = chapter_tools.smoke_lines(chapter.full_run)
    assert expected in source, (
        f"the parameters cell must say how long the stored full run took:\n{expected}\n"
        "Fix: python scripts/sync_chapters.py " + chapter.slug
    )
    assert re.search(r"^DEVICE = ", source, re.M), "the parameters cell must set DEVICE"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_solutions_are_readable_everywhere_and_match_their_files(chapter):
    """Solutions are <details> blocks of plain Markdown code (Jupyter, Colab, GitHub and the site
    render them), each a copy of a function of course_utils/solutions/chNN.py."""
    problems = chapter_tools.solution_problems(chapter.read())
    assert not problems, "\n".join(problems) + "\nFix: python scripts/sync_chapters.py"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_checked_cells_are_tagged_not_commented(chapter):
    """Cells whose outputs are compared carry the cell tag, not a comment learners would see."""
    cells = [c for c in chapter.read().cells if c.cell_type == "code"]
    commented = [i for i, c in enumerate(cells) if "NBVAL_" in c.source]
    assert not commented, (
        f"code cells {commented} use an NBVAL_ comment; tag them {chapter_tools.CHECK_TAG!r} instead"
    )
    checked = [c for c in cells if chapter_tools.CHECK_TAG in c.metadata.get("tags", [])]
    assert checked and all(c.outputs for c in checked), (
        f"tag at least one cell {chapter_tools.CHECK_TAG!r}, and only cells with stored outputs"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_colab_badge_and_setup_cell(chapter):
    nb = chapter.read()
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    badges = re.findall(r"\(https://colab\.research\.google\.com/github/[^)\s]+\)", first.source)
    assert badges, "the first markdown cell needs an 'Open in Colab' badge"
    assert badges[0][1:-1] == chapter.colab_url, (
        f"badge points at {badges[0]}, expected {chapter.colab_url}"
    )
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert f'COURSE_REPO = "{chapter_tools.COURSE_REPO}"' in setup.source, (
        "the first code cell installs the course on Colab"
    )
    assert "google.colab" in setup.source


def test_repository_url_is_the_same_everywhere():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert config["repository"]["url"] == chapter_tools.COURSE_REPO
    assert config["repository"]["branch"] == chapter_tools.BRANCH


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_full_run_is_recorded(chapter):
    """The maintainer script records each stored full run's time; the course map shows it."""
    run = chapter.full_run
    assert run.get("seconds", 0) > 0 and run.get("machine"), (
        f"{chapter.slug} has no recorded full run; refresh it with "
        f"python scripts/run_notebooks.py {chapter.number}"
    )
    assert f"{chapter.title} " in course_map.course_map_markdown()


# -- executing the notebooks -----------------------------------------------------------------------
# Runs in the kernel before the notebook's first cell (an IPython startup file of the temporary
# profile). It wraps `course_utils.training.train` as soon as the package is imported. During the
# call, a global optimizer pre-step hook keeps the value each parameter had before the optimizer
# first updated it (so adapters that `train` itself adds are covered too). After a call that took
# two or more optimizer steps (with warm-up the first may have a learning rate of 0), the
# optimizer must have stepped and at least one of its parameters must have changed.
TRAIN_CHECK = """
import importlib.abc as _abc


def _course_check_train(training):
    import functools

    import torch
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    original = training.train

    @functools.wraps(original)
    def train(*args, **kwargs):
        first = {}  # id(parameter) -> (parameter, its value before its first update)

        def remember(optimizer, hook_args, hook_kwargs):
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if id(p) not in first:
                        first[id(p)] = (p, p.detach().clone())

        handle = register_optimizer_step_pre_hook(remember)
        try:
            history = original(*args, **kwargs)
        finally:
            handle.remove()
        steps = (getattr(history, "total_steps", 0) or 0) - (
            getattr(history, "resumed_from_step", 0) or 0
        )
        if steps >= 2:
            if not first:
                raise AssertionError(
                    f"course test check: train() took {steps} steps but the optimizer never "
                    "stepped: the update step is broken"
                )
            if all(torch.equal(value, p.detach()) for p, value in first.values()):
                raise AssertionError(
                    f"course test check: train() took {steps} optimizer steps but changed none "
                    f"of the {len(first)} parameter tensors it optimizes: the update is broken"
                )
        return history

    training.train = train


class _CourseWatch(_abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "course_utils.training":
            return None
        import sys
        from importlib.util import find_spec

        sys.meta_path.remove(self)

        spec = find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _course_check_train(module)

        spec.loader.exec_module = exec_module
        return spec


__import__("sys").meta_path.insert(0, _CourseWatch())
"""

# Also in the kernel's startup: an audit hook (PEP 578) that refuses any file opened for writing
# inside the repository (bytecode caches aside), so a notebook that writes there instead of
# `runs_dir()` or its working folder fails at the very line, with its traceback. It sees this
# kernel's own writes only, not those of other processes sharing the working copy.
NO_REPO_WRITES = """
def _course_no_repo_writes(root):
    import os
    import sys

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def hook(event, args):
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = args
        if not ((isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & write_flags):
            return
        target = os.path.abspath(os.fsdecode(path))
        if target.startswith(root + os.sep) and "__pycache__" not in target:
            raise PermissionError(
                f"course test check: the notebook opened {target} for writing, inside the "
                "repository; write under course_utils.experiments.runs_dir() or the working folder"
            )

    sys.addaudithook(hook)


_course_no_repo_writes(ROOT_PLACEHOLDER)
"""


@pytest.fixture
def hermetic_kernel(tmp_path, monkeypatch) -> Path:
    """The environment of a hermetic SMOKE run; returns its working folder."""
    work, runs, profile = tmp_path / "work", tmp_path / "runs", tmp_path / "ipython"
    startup = profile / "profile_default" / "startup"
    for folder in (work, runs, startup):
        folder.mkdir(parents=True)
    (startup / "00-course-checks.py").write_text(TRAIN_CHECK)
    (startup / "01-no-repo-writes.py").write_text(
        NO_REPO_WRITES.replace("ROOT_PLACEHOLDER", repr(str(ROOT)))
    )
    monkeypatch.setenv("COURSE_RUNS", str(runs))
    monkeypatch.setenv("IPYTHONDIR", str(profile))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # Agg would drop the inline figures
    return work


def checked_cells(nb) -> list[tuple[int, nbformat.NotebookNode]]:
    """(index, cell) of the code cells nbval --nbval-lax compares, by nbval's own markers."""
    from nbval.plugin import find_comment_markers, find_metadata_tags

    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        options = dict(find_metadata_tags(cell.metadata))
        options.update(find_comment_markers(cell.source))
        if options.get("check") and not options.get("skip"):
            found.append((i, cell))
    return found


def nbval_mismatches(session, chapter, stored, executed) -> list[str]:
    """nbval's comparison of the checked cells: stored outputs vs. the run's outputs.

    The cells are nbval's own pytest items (``IPyNbFile`` / ``IPyNbCell``), built without
    collecting or executing them, so skipped keys, stream merging and the sanitizers are nbval's.
    """
    from nbval.plugin import IPyNbCell, IPyNbFile, coalesce_streams, get_sanitize_patterns

    nb_file = IPyNbFile.from_parent(session, path=chapter.path)
    nb_file.sanitize_patterns.update(get_sanitize_patterns(SANITIZE.read_text()))
    ran = {cell.get("id"): cell for cell in executed.cells}
    problems = []
    for number, (index, cell) in enumerate(checked_cells(stored)):
        run = ran.get(cell.get("id"))
        if run is None or run.source != cell.source:
            problems.append(f"cell {index}: not found in the executed notebook")
            continue
        item = IPyNbCell.from_parent(
            nb_file, name=f"Cell {index}", cell_num=number, cell=cell, options={"check": True}
        )
        test_outputs = coalesce_streams(copy.deepcopy(run.outputs))
        if not item.compare_outputs(test_outputs, coalesce_streams(copy.deepcopy(cell.outputs))):
            source = "\n".join(cell.source.splitlines()[:6])
            problems.append(
                f"cell {index} (tagged {chapter_tools.CHECK_TAG}):\n{source}\n"
                + ANSI.sub("", "\n".join(item.comparison_traceback))
            )
    return problems


@pytest.mark.notebooks
@pytest.mark.assets
@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_notebook_smoke_run_reproduces_checked_outputs(
    chapter, hermetic_kernel, request, record_property
):
    """One papermill run (SMOKE = True, hermetic), then nbval's comparison of the checked cells."""
    import papermill

    executed_path = hermetic_kernel / chapter.path.name
    start = time.perf_counter()
    try:
        executed = chapter_tools.execute(
            chapter.path, executed_path, {"SMOKE": True}, timeout=600, cwd=hermetic_kernel,
            save_each_cell=False,
        )  # fmt: skip
        error = None
    except papermill.PapermillExecutionError as raised:
        error = raised
    if error is not None:  # outside `except`: the report shows the cell's traceback only once
        pytest.fail(
            f"{chapter.slug}: cell {error.cell_index} (In [{error.exec_count}]) raised "
            f"{error.ename}: {error.evalue}\n\n{error.source}\n\n"
            + ANSI.sub("", "\n".join(error.traceback))
            + f"\n(executed copy: {executed_path})",
            pytrace=False,
        )
    seconds = time.perf_counter() - start
    durations = [
        (i, c.metadata.get("papermill", {}).get("duration") or 0.0)
        for i, c in enumerate(executed.cells)
        if c.cell_type == "code"
    ]
    slowest_cell, slowest_s = max(durations, key=lambda d: d[1])
    record_property("smoke_seconds", round(seconds, 1))  # conftest prints these four
    record_property("smoke_overhead", round(seconds - sum(d for _, d in durations), 1))
    record_property("smoke_slowest_cell", slowest_cell)
    record_property("smoke_slowest_s", round(slowest_s, 1))

    problems = nbval_mismatches(request.session, chapter, chapter.read(), executed)
    assert not problems, (
        f"{chapter.slug}: outputs differ from the stored ones (nbval --nbval-lax semantics):\n\n"
        + "\n\n".join(problems)
        + f"\n(executed copy: {executed_path})"
    )
