"""The course bibliography (data/bibliography.json, chapter 10) and the citations of every chapter.

Every entry has its authors, title, venue and year and one identifier of a valid form: an arXiv
abstract page, a DOI link, or (books, software, sites) an https URL. Every markdown link to arXiv
or a DOI in any chapter (chapters/*.py, whichever chapters exist) must be an entry, written
exactly as the entry's identifier. The source article's misnamed references point at entries
that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from course_utils.bibliography import (
    Entry,
    bibliography_markdown,
    canonical_url,
    citation_links,
    entry_problems,
    format_entry,
    load_bibliography,
    source_errata,
)

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
ENTRIES = load_bibliography()
URLS = {e.url for e in ENTRIES}


def test_keys_and_identifiers_are_unique():
    keys = [e.key for e in ENTRIES]
    assert len(keys) == len(set(keys)), "two entries share a key"
    urls = [e.url for e in ENTRIES]
    duplicates = sorted({u for u in urls if urls.count(u) > 1})
    assert not duplicates, f"two entries share an identifier: {duplicates}"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.key for e in ENTRIES])
def test_every_entry_is_complete_with_an_identifier_of_valid_form(entry):
    assert not entry_problems(entry), entry_problems(entry)
    assert entry.title.strip() and entry.checked.strip() and "TODO" not in entry.checked
    assert entry.authors[0] != "et al.", "list at least the first author"


def test_every_citation_in_the_chapters_is_an_entry():
    assert CHAPTERS, "no chapters/NN_slug.py found"
    missing = []
    for path in CHAPTERS:
        for label, url in citation_links(path.read_text(encoding="utf-8")):
            if url not in URLS:
                hint = canonical_url(url)
                fix = f" (write it as {hint})" if hint != url and hint in URLS else ""
                missing.append(f"{path.name}: [{' '.join(label.split('#'))}]({url}){fix}")
    assert not missing, (
        "citations that are not in data/bibliography.json (add a verified entry, or fix the "
        "link):\n" + "\n".join(missing)
    )


def test_chapter_ten_cites_from_the_bibliography():
    """Chapter 10 uses the convention itself (a test of the test: it must find links)."""
    chapter = next((p for p in CHAPTERS if p.name.startswith("10_")), None)
    if chapter is None:
        pytest.skip("chapter 10 is not written yet")
    links = citation_links(chapter.read_text(encoding="utf-8"))
    assert len(links) >= 10 and all(url in URLS for _, url in links)


def test_source_errata_point_at_entries():
    keys = {e.key for e in ENTRIES}
    rows = source_errata()
    assert len(rows) >= 8
    for row in rows:
        assert row["as cited in the source"].strip() and row["what is true"].strip()
        assert not row["entry"] or row["entry"] in keys, row
    corrected = " ".join(r["what is true"] for r in rows)
    for true_title in (
        "Exploring the Limits of Transfer Learning",
        "An Open Bilingual Pre-trained",
    ):
        assert true_title in corrected


# -- the module's helpers, on small made-up inputs --------------------------------------------
def entry(**changes) -> Entry:
    fields = dict(key="k", kind="inproceedings", authors=("Ada Lovelace", "Alan Turing"),
                  title="A Title", year=2021, url="https://arxiv.org/abs/2106.09685",
                  checked="arXiv listing", venue="ICLR")  # fmt: skip
    return Entry(**(fields | changes))


def test_entry_problems_catch_bad_identifiers_years_and_kinds():
    assert entry_problems(entry()) == []
    assert entry_problems(entry(url="https://arxiv.org/pdf/2106.09685"))  # not the abstract page
    assert entry_problems(entry(url="https://arxiv.org/abs/2106.09685v2"))  # a version
    assert entry_problems(entry(url="http://dx.doi.org/10.1109/TKDE.2009.191"))
    assert entry_problems(entry(year=2017))  # an arXiv id from 2021 in a 2017 paper
    assert entry_problems(entry(kind="thesis"))
    assert entry_problems(entry(kind="preprint", url="https://example.org/paper"))
    assert entry_problems(entry(venue=""))
    assert entry_problems(entry(kind="book", url="http://example.org/book")) != []
    assert entry_problems(entry(kind="book", url="https://www.deeplearningbook.org/")) == []
    assert entry_problems(entry(url="https://doi.org/10.1016/S0079-7421(08)60536-8")) == []


def test_canonical_url():
    abs_url = "https://arxiv.org/abs/2106.09685"
    for form in ("arXiv:2106.09685v2", "https://arxiv.org/pdf/2106.09685v1.pdf", abs_url,
                 "http://www.arxiv.org/abs/2106.09685"):  # fmt: skip
        assert canonical_url(form) == abs_url
    assert canonical_url("arXiv:cs/0306050") == "https://arxiv.org/abs/cs/0306050"
    doi = "https://doi.org/10.1109/TKDE.2009.191"
    assert canonical_url("doi:10.1109/TKDE.2009.191") == doi
    assert canonical_url("http://dx.doi.org/10.1109/TKDE.2009.191") == doi
    assert canonical_url("https://keras.io/") == "https://keras.io/"


def test_citation_links_find_arxiv_and_doi_links_only():
    text = (
        "[Hu et al., 2021](https://arxiv.org/abs/2106.09685) and ([McCloskey & Cohen,\n# 1989]"
        "(https://doi.org/10.1016/S0079-7421(08)60536-8)); [the site](https://keras.io/), "
        "[badge](https://colab.research.google.com/x)"
    )
    found = citation_links(text)
    assert [url for _, url in found] == [
        "https://arxiv.org/abs/2106.09685",
        "https://doi.org/10.1016/S0079-7421(08)60536-8",
    ]


def test_markdown_lists_every_entry_once_with_its_link():
    text = bibliography_markdown(ENTRIES)
    for e in ENTRIES:
        assert text.count(f"]({e.url})") == 1
    line = format_entry(entry(authors=tuple(f"Author {i}" for i in range(9))))
    assert "et al." in line and re.search(r"\(2021\)\. \*A Title\*\. ICLR\.", line)
    assert entry(authors=("Pan", "Yang")).short_authors == "Pan & Yang"
