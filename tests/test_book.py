"""The course site: every chapter is in the table of contents, it builds with -W, and it works
in a real browser (headless chromium; screenshots kept in book/_build/screenshots/)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from course_utils import notebooks

ROOT = notebooks.ROOT
BOOK = ROOT / "book"
sys.path.insert(0, str(ROOT / "scripts"))


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
        c.docname for c in notebooks.chapters()
        if c.docname not in files and not any(fnmatch.fnmatch(c.docname, g) for g in globs)
    ]  # fmt: skip
    assert not missing, f"chapters missing from book/_toc.yml: {missing}"
    for name in files:
        assert any((ROOT / f"{name}{suffix}").is_file() for suffix in (".md", ".ipynb")), (
            f"toc names missing file {name}"
        )


def test_home_page_course_map_lists_the_chapters_that_exist():
    assert "```{course-map}" in (BOOK / "index.md").read_text()
    table = notebooks.course_map_markdown()
    for chapter in notebooks.chapters():
        assert f"</{chapter.docname}>" in table and chapter.title in table
    assert table.count("\n") == len(notebooks.chapters()) + 1  # header, rule, one row per chapter


@pytest.fixture(scope="module")
def built_site() -> Path:
    """Build the site from scratch with -W -n --keep-going (scripts/build_site.sh)."""
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


def test_site_builds_with_every_page(built_site):
    assert (built_site / "book" / "index.html").is_file()
    assert (built_site / "search.html").is_file() and (built_site / "searchindex.js").is_file()
    assert (built_site / "_static" / "mathjax" / "tex-chtml.js").is_file(), (
        "MathJax must be served locally"
    )
    for chapter in notebooks.chapters():
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
    assert (screenshots / f"{notebooks.chapters()[0].slug}.png").is_file()
