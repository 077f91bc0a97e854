"""The course site: every chapter is in the table of contents, it builds with -W, and it works
in a real browser (headless chromium; screenshots kept in book/_build/screenshots/).

The site is built at most once per test run, and not at all when README's first command
(``scripts/setup.sh`` -> ``scripts/build_site.sh``) already built it from today's inputs: a clean
build stamps ``book/_build/`` with a fingerprint of everything it read (``scripts/site_stamp.py``),
and a current stamp is reused. A file lock keeps two test processes from building at once.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(BOOK / "_ext"))

import chapter_tools  # noqa: E402
import course_map  # noqa: E402
import site_stamp  # noqa: E402

BUILD_LOCK = Path(tempfile.gettempdir()) / (
    "course-site-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12] + ".lock"
)


def toc_entries(node) -> tuple[list[str], list[str]]:
    """All ``file`` entries and ``glob`` patterns of a jb-book table of contents."""
    files, globs = [], []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                files.append(str(value).removesuffix(".ipynb").removesuffix(".md"))
            elif key == "glob":
                globs.append(str(value))
            else:
                f, g = toc_entries(value)
                files += f
                globs += g
    elif isinstance(node, list):
        for item in node:
            f, g = toc_entries(item)
            files += f
            globs += g
    return files, globs


def test_every_chapter_is_in_the_toc():
    files, globs = toc_entries(yaml.safe_load((BOOK / "_toc.yml").read_text()))
    missing = [
        c.docname for c in chapter_tools.chapters()
        if c.docname not in files and not any(fnmatch.fnmatch(c.docname, g) for g in globs)
    ]  # fmt: skip
    assert not missing, f"chapters missing from book/_toc.yml: {missing}"
    for name in files:
        assert any((ROOT / f"{name}{suffix}").is_file() for suffix in (".md", ".ipynb")), (
            f"toc names missing file {name}"
        )


def test_home_page_course_map_lists_the_chapters_that_exist():
    assert "```{course-map}" in (BOOK / "index.md").read_text()
    table = course_map.course_map_markdown()
    for chapter in chapter_tools.chapters():
        assert f"</{chapter.docname}>" in table and chapter.title in table
    assert (
        table.count("\n") == len(chapter_tools.chapters()) + 1
    )  # header, rule, one row per chapter


def test_course_map_shows_the_recorded_time_and_peak_memory(tmp_path):
    """A full run records its wall time and its kernel's peak memory; the map shows both."""
    import nbformat

    source = next(iter(chapter_tools.chapters())).path
    nb = nbformat.read(source, as_version=4)
    chapter_tools.record_full_run(nb, seconds=754.4, peak_mb=2150.0)
    nbformat.write(nb, tmp_path / source.name)
    row = course_map.course_map_markdown(tmp_path).splitlines()[2]
    assert "12.6 min, peak memory 2.1 GB" in row, row
    assert nb.metadata[chapter_tools.RUN_KEY]["peak_memory_mb"] == 2150


@pytest.fixture(scope="session")
def built_site() -> Path:
    """The site of today's inputs: reused when its stamp is current, else built from scratch
    with -W -n --keep-going (scripts/build_site.sh), once, under a file lock."""
    with open(BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second test process waits, then reuses the build
        if not site_stamp.is_current():
            result = subprocess.run(
                ["bash", str(ROOT / "scripts" / "build_site.sh")],
                capture_output=True,
                text=True,
                timeout=600,
            )
            warnings = [
                line
                for line in (result.stdout + result.stderr).splitlines()
                if "WARNING" in line or "ERROR" in line
            ]
            assert result.returncode == 0, "site build failed:\n" + "\n".join(
                warnings or [result.stdout[-3000:], result.stderr[-3000:]]
            )
    return BOOK / "_build" / "html"


def test_site_stamp_follows_the_inputs(tmp_path):
    """The same inputs give the same fingerprint; a changed notebook makes the site stale."""
    for path in site_stamp.input_files():
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    assert site_stamp.fingerprint(tmp_path) == site_stamp.fingerprint()
    notebook = tmp_path / chapter_tools.chapters()[0].path.relative_to(ROOT)
    notebook.write_bytes(notebook.read_bytes() + b"\n")
    assert site_stamp.fingerprint(tmp_path) != site_stamp.fingerprint()


def test_site_builds_with_every_page(built_site):
    assert (built_site / "book" / "index.html").is_file()
    assert (built_site / "search.html").is_file() and (built_site / "searchindex.js").is_file()
    assert (built_site / "_static" / "mathjax" / "tex-chtml.js").is_file(), (
        "MathJax must be served locally"
    )
    for chapter in chapter_tools.chapters():
        page = built_site / f"{chapter.docname}.html"
        assert page.is_file(), f"no page for {chapter.slug}"
        html = page.read_text(encoding="utf-8")
        assert chapter.colab_url in html, (
            f"{chapter.slug}: no Colab launch button to {chapter.colab_url}"
        )


def test_site_in_headless_chromium(built_site):
    import browser_check

    if not (shutil.which("chromium") or os.geteuid() == 0):
        pytest.skip("chromium is not installed and we are not root to apt-get it")
    chromium = browser_check.find_chromium()
    screenshots = BOOK / "_build" / "screenshots"
    problems = browser_check.check_site(built_site, chromium, screenshots=screenshots)
    assert not problems, "\n".join(problems)
    assert (screenshots / "home.png").is_file()
    assert (screenshots / f"{chapter_tools.chapters()[0].slug}.png").is_file()
