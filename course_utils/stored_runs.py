"""What each chapter's stored full run measured, read back from the committed notebooks.

Introduced in chapter 10 (its table "What the whole course measured"). A chapter marks the code
cells whose printed lines state its results with the cell tag ``course-summary`` (chapters 3–10:
the cell under "Summary"; chapters 1 and 2: the cells that print their verdicts).
``scripts/run_notebooks.py`` stores the outputs of the full run and records its wall time and
peak memory in the notebook's ``course_full_run`` metadata; `stored_results` reads both, so the
table shows what the stored runs printed, not numbers typed into the text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SUMMARY_TAG = "course-summary"


def _stream_text(cell: dict) -> str:
    return "".join(
        "".join(output.get("text", ""))
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


def notebook_title(cells: list, default: str) -> str:
    """The first ``# `` heading of the notebook's markdown cells (``default`` if none).

    ``cells`` as in the ``.ipynb`` JSON or an ``nbformat`` notebook; ``scripts/chapter_tools.py``
    names chapters with it too.
    """
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def summary_lines(notebook: dict) -> list[str]:
    """The printed lines of the notebook's cells tagged ``course-summary``, in order.

    Indented lines (examples printed under a result) and bullets' markers are left out."""
    lines = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and SUMMARY_TAG in cell.get("metadata", {}).get("tags", []):
            for line in _stream_text(cell).splitlines():
                if line.strip() and not line[0].isspace():
                    lines.append(line.removeprefix("• ").strip())
    return lines


def stored_results(chapter_dir: str | os.PathLike) -> list[dict]:
    """One dict per chapter notebook ``NN_slug.ipynb`` in `chapter_dir`, in chapter order.

    Keys: ``chapter`` (int), ``title``, ``file``, ``seconds`` and ``peak_memory_mb`` of the
    stored full run (None where not recorded), and ``lines``, its summary lines (empty when the
    notebook has no ``course-summary`` cell or was stored without outputs)."""
    rows = []
    for path in sorted(Path(chapter_dir).glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        run = notebook.get("metadata", {}).get("course_full_run", {})
        rows.append(
            {
                "chapter": int(path.name[:2]),
                "title": notebook_title(notebook["cells"], path.stem),
                "file": path.name,
                "seconds": run.get("seconds"),
                "peak_memory_mb": run.get("peak_memory_mb"),
                "lines": summary_lines(notebook),
            }
        )
    return rows
