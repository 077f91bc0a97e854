"""The course bibliography: one data file, checked entries, citations found in the chapters.

Introduced in chapter 10. The works the course cites are kept in ``data/bibliography.json``:
each entry has its authors, title, venue, year and one identifier that resolves to the work —
an arXiv abstract page (``https://arxiv.org/abs/<id>``), a DOI (``https://doi.org/<doi>``), or,
for books, software and web sites without either, the official URL — plus a note of what copy
of the work it was checked against. The file also lists the source article's references that do
not exist as cited, with what is true.

Chapters cite with a markdown link whose target is the identifier, e.g.
``[Hu et al., 2021](https://arxiv.org/abs/2106.09685)``. `citation_links` finds such links in a
text and `tests/test_bibliography.py` checks that every one of them is an entry here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BIBLIOGRAPHY_PATH",
    "KINDS",
    "Entry",
    "bibliography_markdown",
    "canonical_url",
    "citation_links",
    "entry_problems",
    "format_entry",
    "load_bibliography",
    "source_errata",
]

BIBLIOGRAPHY_PATH = Path(__file__).resolve().parent.parent / "data" / "bibliography.json"

# kind -> which identifiers it may have ("arxiv", "doi", "url": any other official https URL)
KINDS: dict[str, tuple[str, ...]] = {
    "article": ("doi", "arxiv", "url"),  # url: journals without DOIs, such as JMLR
    "inproceedings": ("arxiv", "doi"),
    "preprint": ("arxiv",),
    "book": ("url", "doi"),
    "chapter": ("doi",),
    "software": ("doi", "url"),
    "dataset": ("url", "doi"),
    "web": ("url",),
}
ARXIV_URL = re.compile(r"^https://arxiv\.org/abs/(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})$")
DOI_URL = re.compile(r"^https://doi\.org/(10\.\d{4,9}/\S+)$")
HTTPS_URL = re.compile(r"^https://[a-z0-9.-]+\.[a-z]{2,}(/\S*)?$", re.I)
# A markdown link to arXiv or a DOI: what a chapter's citation looks like.
# The target may hold balanced parentheses, as some DOIs do: 10.1016/S0079-7421(08)60536-8.
CITATION_LINK = re.compile(
    r"\[([^\]]+)\]\((https?://(?:www\.)?(?:arxiv\.org|(?:dx\.)?doi\.org)/(?:[^()\s]|\([^()\s]*\))+)\)"
)
REQUIRED = ("key", "kind", "authors", "title", "year", "url", "checked")


@dataclass(frozen=True)
class Entry:
    """One work of the bibliography (see the module docstring for the fields)."""

    key: str
    kind: str
    authors: tuple[str, ...]
    title: str
    year: int
    url: str
    checked: str
    venue: str = ""
    topic: str = "other"
    note: str = ""

    @property
    def identifier_kind(self) -> str:
        """``"arxiv"``, ``"doi"`` or ``"url"``: what the entry's `url` is."""
        if ARXIV_URL.match(self.url):
            return "arxiv"
        if DOI_URL.match(self.url):
            return "doi"
        return "url"

    @property
    def short_authors(self) -> str:
        """'Hu et al.', 'Pan & Yang', 'Chollet' — as a chapter cites it."""
        surnames = [name.split()[-1] for name in self.authors]
        if len(surnames) == 1:
            return surnames[0]
        if len(surnames) == 2:
            return f"{surnames[0]} & {surnames[1]}"
        return f"{surnames[0]} et al."


def _entry(raw: Mapping[str, Any]) -> Entry:
    missing = [name for name in REQUIRED if not raw.get(name)]
    if missing:
        raise ValueError(f"bibliography entry {raw.get('key', raw)!r} lacks {missing}")
    fields = {name: raw[name] for name in Entry.__dataclass_fields__ if name in raw}
    fields["authors"] = tuple(raw["authors"])
    return Entry(**fields)


def load_bibliography(path: str | Path | None = None) -> list[Entry]:
    """The entries of the bibliography file (default: the course's ``data/bibliography.json``)."""
    data = json.loads(Path(path or BIBLIOGRAPHY_PATH).read_text(encoding="utf-8"))
    return [_entry(raw) for raw in data["entries"]]


def source_errata(path: str | Path | None = None) -> list[dict[str, str]]:
    """The source article's references that do not exist as cited, with what is true."""
    data = json.loads(Path(path or BIBLIOGRAPHY_PATH).read_text(encoding="utf-8"))
    return [dict(row) for row in data["source_errata"]]


def canonical_url(identifier: str) -> str:
    """The link a chapter should use for an arXiv id, a DOI or a URL of either.

    ``"arXiv:2106.09685v2"`` and ``"https://arxiv.org/pdf/2106.09685"`` become
    ``"https://arxiv.org/abs/2106.09685"``; ``"doi:10.1109/TKDE.2009.191"`` and
    ``"http://dx.doi.org/10.1109/TKDE.2009.191"`` become ``"https://doi.org/10.1109/TKDE.2009.191"``.
    Anything else is returned unchanged.
    """
    text = identifier.strip()
    arxiv = re.match(
        r"^(?:arxiv:|https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/)(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?:\.pdf)?$",
        text,
        re.I,
    )
    if arxiv:
        return f"https://arxiv.org/abs/{arxiv.group(1)}"
    doi = re.match(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)(10\.\d{4,9}/\S+)$", text, re.I)
    if doi:
        return f"https://doi.org/{doi.group(1)}"
    return text


def entry_problems(entry: Entry) -> list[str]:
    """What is wrong with an entry's form (empty when nothing): kind, identifier, year, authors."""
    problems = []
    if entry.kind not in KINDS:
        problems.append(f"kind {entry.kind!r} is not one of {sorted(KINDS)}")
    elif entry.identifier_kind not in KINDS[entry.kind]:
        problems.append(
            f"{entry.key}: a {entry.kind} needs a {' or '.join(KINDS[entry.kind])} identifier, "
            f"not {entry.url!r}"
        )
    if entry.identifier_kind == "url" and not HTTPS_URL.match(entry.url):
        problems.append(f"{entry.url!r} is neither an arXiv/DOI link nor an https URL")
    if canonical_url(entry.url) != entry.url:
        problems.append(f"write the identifier as {canonical_url(entry.url)!r}")
    if not 1900 <= int(entry.year) <= 2100:
        problems.append(f"year {entry.year} is not a plausible year")
    if entry.identifier_kind == "arxiv":
        new_style = re.search(r"/(\d\d)(\d\d)\.\d{4,5}$", entry.url)
        if new_style:  # an arXiv id starts with the year and month it was first posted
            posted = 2000 + int(new_style.group(1))
            if not posted <= int(entry.year) <= posted + 3:
                problems.append(f"arXiv id from {posted} but year {entry.year}")
    if not entry.authors or any(not a.strip() for a in entry.authors):
        problems.append("authors are missing")
    if entry.kind in ("article", "inproceedings", "chapter") and not entry.venue:
        problems.append(f"a {entry.kind} needs its venue")
    return problems


def citation_links(text: str) -> list[tuple[str, str]]:
    """``(label, url)`` of every markdown link to arXiv or a DOI in `text`, in order."""
    return [(m.group(1), m.group(2)) for m in CITATION_LINK.finditer(text)]


def format_entry(entry: Entry) -> str:
    """One entry as a line of markdown: authors (year). *Title*. Venue. link."""
    authors = ", ".join(entry.authors) if len(entry.authors) <= 6 else (
        ", ".join(entry.authors[:6]) + ", et al."
    )  # fmt: skip
    venue = f" {entry.venue}." if entry.venue else ""
    note = f" — {entry.note}" if entry.note else ""
    label = {"arxiv": "arXiv", "doi": "doi", "url": "link"}[entry.identifier_kind]
    return f"{authors} ({entry.year}). *{entry.title}*.{venue} [{label}]({entry.url}){note}"


def bibliography_markdown(entries: Sequence[Entry], topics: Iterable[str] | None = None) -> str:
    """The bibliography as markdown: one section per topic, entries sorted by author and year."""
    order = list(topics) if topics else list(dict.fromkeys(e.topic for e in entries))
    parts = []
    for topic in order:
        chosen = sorted((e for e in entries if e.topic == topic),
                        key=lambda e: (e.authors[0].split()[-1].lower(), e.year))  # fmt: skip
        if chosen:
            parts.append(f"**{topic}**\n\n" + "\n".join(f"- {format_entry(e)}" for e in chosen))
    return "\n\n".join(parts)
