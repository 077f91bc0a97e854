"""course_utils.stored_runs: chapter 10's table of what every stored full run printed."""

from __future__ import annotations

import json
from pathlib import Path

from course_utils.stored_runs import SUMMARY_TAG, stored_results, summary_lines

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"


def _code_cell(text: str, tags=()) -> dict:
    return {
        "cell_type": "code",
        "metadata": {"tags": list(tags)},
        "source": "print(...)",
        "outputs": [{"output_type": "stream", "name": "stdout", "text": text}],
    }


def test_summary_lines_keep_tagged_unindented_stdout(tmp_path):
    notebook = {
        "metadata": {"course_full_run": {"seconds": 90, "peak_memory_mb": 1500}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# 4. A chapter\n\ntext"},
            _code_cell("not a summary\n"),
            _code_cell("• accuracy 81.0%\n  ✓ an example under it\n\nloss 0.4\n", [SUMMARY_TAG]),
            {
                **_code_cell("", [SUMMARY_TAG]),
                "outputs": [{"output_type": "stream", "name": "stderr", "text": "a warning\n"}],
            },  # fmt: skip
        ],
    }
    assert summary_lines(notebook) == ["accuracy 81.0%", "loss 0.4"]
    (tmp_path / "04_a_chapter.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "notes.ipynb").write_text("{}")  # not a chapter: ignored
    (row,) = stored_results(tmp_path)
    assert row == {"chapter": 4, "title": "4. A chapter", "file": "04_a_chapter.ipynb",
                   "seconds": 90, "peak_memory_mb": 1500,
                   "lines": ["accuracy 81.0%", "loss 0.4"]}  # fmt: skip


def test_every_stored_chapter_states_its_results():
    rows = stored_results(CHAPTERS)
    assert [row["chapter"] for row in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert row["lines"], f"{row['file']}: no printed line in a '{SUMMARY_TAG}' cell"
        assert row["seconds"], f"{row['file']}: no recorded full run"
        assert any(ch.isdigit() for ch in " ".join(row["lines"])), row["file"]
