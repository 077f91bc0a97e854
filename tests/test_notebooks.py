"""The chapter notebooks: paired, stored outputs clean, Colab badges right, and they run.

Fast checks (pairing, stored outputs, badges, parameters) run always. The execution tests are
marked ``notebooks`` (and ``assets``: they load the real models): every notebook is executed with
papermill in SMOKE mode into a temp dir, and nbval (lax) re-runs the committed notebook and
compares the outputs of the cells marked ``# NBVAL_CHECK_OUTPUT`` with the stored ones.
Deselect them with ``-m "not notebooks"``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import nbformat
import pytest
import yaml

from course_utils import notebooks

ROOT = notebooks.ROOT
CHAPTERS = notebooks.chapters()
ids = [c.slug for c in CHAPTERS]


def test_there_are_chapters_and_every_ipynb_is_a_chapter():
    assert CHAPTERS, "no chapters/NN_slug.ipynb found"
    names = sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb"))
    assert names == [c.path.name for c in CHAPTERS], "chapter files must be named NN_slug.ipynb"
    numbers = [c.number for c in CHAPTERS]
    assert len(set(numbers)) == len(numbers), f"two chapters share a number: {numbers}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_pair_is_in_sync(chapter):
    """The .ipynb and its py:percent pair have the same cells (CI checks; it never syncs)."""
    problems = notebooks.pairing_problems(chapter)
    assert not problems, (
        f"{chapter.slug} is out of sync with its pair:\n" + "\n".join(problems)
        + f"\nFix: jupytext --sync {chapter.path.relative_to(ROOT)} (the file you edited last wins)"
    )  # fmt: skip


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_stored_outputs_are_clean_and_in_order(chapter):
    nb = nbformat.read(chapter.path, as_version=4)
    problems = notebooks.stored_output_problems(nb)
    assert not problems, (
        "\n".join(problems) + "\nFix: python scripts/run_notebooks.py " + chapter.slug
    )
    assert any(c.cell_type == "code" and c.outputs for c in nb.cells), "no stored outputs"
    assert "papermill" not in nb.metadata


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_parameters_cell(chapter):
    nb = nbformat.read(chapter.path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    source = cells[0].source
    assert re.search(r"^SMOKE = True\b", source, re.M), "the parameters cell must set SMOKE = True"
    assert re.search(r"^DEVICE = ", source, re.M), "the parameters cell must set DEVICE"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_colab_badge_and_setup_cell(chapter):
    nb = nbformat.read(chapter.path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    badges = re.findall(r"\(https://colab\.research\.google\.com/github/[^)\s]+\)", first.source)
    assert badges, "the first markdown cell needs an 'Open in Colab' badge"
    assert badges[0][1:-1] == chapter.colab_url, (
        f"badge points at {badges[0]}, expected {chapter.colab_url}"
    )
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert f'COURSE_REPO = "{notebooks.COURSE_REPO}"' in setup.source, (
        "the first code cell installs the course on Colab"
    )
    assert "google.colab" in setup.source


def test_repository_url_is_the_same_everywhere():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert config["repository"]["url"] == notebooks.COURSE_REPO
    assert config["repository"]["branch"] == notebooks.BRANCH


@pytest.mark.notebooks
@pytest.mark.assets
@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_notebook_runs_in_smoke_mode(chapter, tmp_path):
    """papermill, SMOKE = True, into a temp dir: fails on any raising cell."""
    import papermill

    try:
        notebooks.execute(chapter.path, tmp_path / chapter.path.name, {"SMOKE": True}, timeout=600)
    except papermill.PapermillExecutionError as error:
        pytest.fail(
            f"{chapter.slug} failed in SMOKE mode (executed copy: {tmp_path / chapter.path.name}):\n{error}"
        )


@pytest.mark.notebooks
@pytest.mark.assets
@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_outputs_match_stored_nbval(chapter, tmp_path):
    """nbval --nbval-lax: cells marked NBVAL_CHECK_OUTPUT must reproduce their stored output."""
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("MPLBACKEND", None)  # Agg suppresses inline figures and breaks the comparison
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            "--nbval-lax", "--nbval-current-env",
            "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
            "--rootdir", str(tmp_path), str(chapter.path),
        ],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"nbval failed for {chapter.slug}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=ids)
def test_full_run_is_recorded(chapter):
    """The maintainer script records each stored full run's time; the course map shows it."""
    run = chapter.full_run
    assert run.get("seconds", 0) > 0 and run.get("machine"), (
        f"{chapter.slug} has no recorded full run; refresh it with "
        f"python scripts/run_notebooks.py {chapter.number}"
    )
    assert f"{chapter.title} " in notebooks.course_map_markdown()
