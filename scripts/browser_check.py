#!/usr/bin/env python
"""Check the built course site in a real (headless) browser, and keep screenshots.

    python scripts/browser_check.py [book/_build/html]

1. Installs Debian's ``chromium`` with apt-get if it is missing (needs root; otherwise says how).
2. Every page the table of contents promises exists (the home page and one per chapter file).
3. Every built page: each internal link and image points at a file that exists (and a ``#anchor``
   at an id on the target page); MathJax is loaded from a local file, never a CDN.
4. Every page is opened in headless chromium (its DOM dumped after scripts ran) and fails if math
   is left unrendered (``$$``, ``\\(`` or ``\\[`` in the visible text, or a math element that
   MathJax did not typeset) or a Markdown table is left as text.
5. Screenshots of the home page and chapter 1 go to ``book/_build/screenshots/``.

Exit status 0 when everything passed, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when imported by the tests

import chapter_tools  # noqa: E402

ROOT = chapter_tools.ROOT

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--disable-dev-shm-usage", "--allow-file-access-from-files",
]  # fmt: skip
SKIP_DIRS = {"_static", "_sources", "_images"}


def find_chromium(install: bool = True) -> str:
    """The chromium executable, installed from Debian if missing and we are root."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if not install or os.geteuid() != 0:
        raise SystemExit(
            "chromium is missing: run `apt-get update && apt-get install -y chromium` as root"
        )
    print("==> installing chromium (apt-get)", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium", "fonts-noto-cjk", "fonts-noto-color-emoji"],
        check=True,
        env=env,
    )
    return shutil.which("chromium") or "chromium"


class PageParser(html.parser.HTMLParser):
    """Links, images, scripts, element ids, and the visible text outside code and math."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.math_elements = 0  # elements MathJax should typeset (class "math")
        self.rendered_math = 0  # <mjx-container> elements MathJax produced
        self._skip = 0  # depth inside <pre>, <code>, <script>, <style>, math
        self._stack: list[bool] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "name" in a and tag == "a":
            self.ids.add(a["name"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        if tag == "mjx-container":
            self.rendered_math += 1
        classes = (a.get("class") or "").split()
        is_math = "math" in classes and tag in ("span", "div")
        if is_math:
            self.math_elements += 1
        if tag in ("br", "img", "meta", "link", "input", "hr", "source"):  # void elements
            return
        skip = tag in ("pre", "code", "script", "style", "mjx-container", "textarea") or is_math
        self._stack.append(skip)
        self._skip += skip

    def handle_endtag(self, tag):
        if tag in ("br", "img", "meta", "link", "input", "hr", "source"):
            return
        if self._stack:
            self._skip -= self._stack.pop()

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    return parser


def internal_target(page: Path, url: str, site: Path) -> tuple[Path, str] | None:
    """The file (and anchor) an internal URL points at, or None for an external one."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
        return None
    if not parts.path:
        return page, parts.fragment
    target = (page.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, parts.fragment


def dump_dom(chromium: str, page: Path, profile: str) -> str:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0 or "<html" not in result.stdout:
        raise RuntimeError(f"chromium could not open {page}: {result.stderr.strip()[-400:]}")
    return result.stdout


def screenshot(chromium: str, page: Path, png: Path, profile: str, size: str = "1280,1800") -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
         f"--window-size={size}", f"--screenshot={png}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    if not png.is_file() or png.stat().st_size < 10_000:
        raise RuntimeError(f"screenshot of {page} failed or is blank")


def check_site(
    site: Path, chromium: str | None = None, screenshots: Path | None = None
) -> list[str]:
    """Every problem found in the built site ``site`` (empty when it is all right)."""
    site = site.resolve()
    problems: list[str] = []
    expected = [site / "index.html", site / "book" / "index.html", site / "search.html"]
    expected += [site / f"{c.docname}.html" for c in chapter_tools.chapters()]
    problems += [f"missing page: {p.relative_to(site)}" for p in expected if not p.is_file()]
    pages = sorted(
        p for p in site.rglob("*.html") if not SKIP_DIRS & set(p.relative_to(site).parts)
    )
    parsed = {p: parse(p.read_text(encoding="utf-8")) for p in pages}

    for page, info in parsed.items():
        name = page.relative_to(site)
        for url in info.links + info.images:
            target = internal_target(page, url, site)
            if target is None:
                continue
            path, anchor = target
            if not path.exists():
                problems.append(f"{name}: broken link or image {url!r}")
            elif anchor and path.suffix == ".html":
                ids = (
                    parsed[path].ids
                    if path in parsed
                    else parse(path.read_text(encoding="utf-8")).ids
                )
                if anchor not in ids:
                    problems.append(f"{name}: link {url!r} points at a missing anchor")
        for src in info.scripts:
            if "mathjax" in src.lower():
                if internal_target(page, src, site) is None:
                    problems.append(
                        f"{name}: MathJax is loaded from the network ({src}), not a local file"
                    )
                elif not internal_target(page, src, site)[0].is_file():
                    problems.append(f"{name}: MathJax script {src} is missing")

    if chromium:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            for page in pages:
                name = page.relative_to(site)
                try:
                    dom = parse(dump_dom(chromium, page, profile))
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    problems.append(f"{name}: {error}")
                    continue
                text = " ".join(dom.text)
                for marker in ("$$", "\\(", "\\[", "\\begin{"):
                    if marker in text:
                        at = text.index(marker)
                        problems.append(
                            f"{name}: unrendered math {text[max(0, at - 40) : at + 40]!r}"
                        )
                        break
                if "| --- |" in text or "|---|" in text:
                    problems.append(f"{name}: a Markdown table was left unrendered")
                if dom.math_elements and dom.rendered_math < dom.math_elements:
                    problems.append(
                        f"{name}: MathJax typeset {dom.rendered_math} of {dom.math_elements} math elements"
                    )
            if screenshots is not None:
                shots = {"home.png": site / "book" / "index.html"}
                if chapter_tools.chapters():
                    first = chapter_tools.chapters()[0]
                    shots[f"{first.slug}.png"] = site / f"{first.docname}.html"
                for png, page in shots.items():
                    try:
                        screenshot(chromium, page, screenshots / png, profile)
                        print(f"    screenshot: {screenshots / png}")
                    except (RuntimeError, subprocess.SubprocessError) as error:
                        problems.append(str(error))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    site = Path(args[0]) if args else ROOT / "book" / "_build" / "html"
    if not (site / "index.html").is_file():
        print(
            f"no site at {site}: build it first with `bash scripts/build_site.sh`", file=sys.stderr
        )
        return 1
    chromium = find_chromium()
    print(f"==> checking {site} with {chromium}", flush=True)
    problems = check_site(site, chromium, screenshots=site.parent / "screenshots")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("==> browser check: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
