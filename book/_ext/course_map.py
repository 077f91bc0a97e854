"""Sphinx extension of the course site: the ``course-map`` directive on the home page.

It renders a table of the chapters that exist (title linked, source sections, what the learner
does, the recorded time of the stored full run), so adding a chapter's notebook pair is all it
takes to list it. Loaded by ``book/_config.yml`` (``sphinx.local_extensions``); chapter discovery
comes from ``scripts/chapter_tools.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import chapter_tools  # noqa: E402

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


def course_map_markdown(folder: Path = chapter_tools.CHAPTERS_DIR, link_prefix: str = "/") -> str:
    """A Markdown table of the chapters that exist: title (linked), source sections, contents and
    the recorded time (and peak memory, where recorded) of the stored full run."""
    rows = [
        "| # | Chapter | Source | What you do | Full run |",
        "| --- | --- | --- | --- | --- |",
    ]
    for chapter in chapter_tools.chapters(folder):
        source, summary = PLAN.get(chapter.number, ("", ""))
        link = f"{{doc}}`{chapter.title} <{link_prefix}{chapter.docname}>`"
        run = chapter.full_run
        memory = chapter_tools.peak_memory(run) if run else ""
        timing = (
            f"{chapter_tools.minutes(run['seconds'])}"
            + (f", peak memory {memory}" if memory else "")
            + f" ({run['machine']})"
            if run
            else "not recorded"
        )
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
            self.env.note_dependency(str(chapter_tools.CHAPTERS_DIR))
            self.state.nested_parse(
                StringList(course_map_markdown().splitlines()), self.content_offset, container
            )
            return container.children

    app.add_directive("course-map", CourseMap)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
