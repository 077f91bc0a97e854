"""Chapter 7's data and measuring tools (introduced in chapter 7, "Applications").

- `load_conll_qa`: the course's extractive question-answering set (``data/conll_qa.jsonl``):
  questions written for paragraphs of CoNLL-2003's Reuters articles. The file stores the
  questions, answers and character offsets only; each context is rebuilt from the fetched
  CoNLL files (never committed) and every answer is checked to be the exact span at its offset.
- `load_chat_memory`: the multi-turn chat set (``data/chat_memory.jsonl`` and
  ``data/chat_fillers.jsonl``), `memory_conversation`, which builds one conversation from it, and
  `mentions`, which decides whether an answer uses the fact.
- `unk_share`: how much of a text a tokenizer cannot represent.
- `wilson_interval` and `bootstrap_interval`: the noise of a rate and of any statistic.
- `lead_words`: the lead baseline of headline generation (the body's first words).

The task code the chapter teaches (token classification, QA features and decoding, embeddings,
instruction tuning) is in `course_utils.tasks`; the notebook shows how it is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict

from .data import (
    CHAT_FILLER_SCHEMA,
    CHAT_MEMORY_SCHEMA,
    DATA_DIR,
    QA_SCHEMA,
    QA_TYPES,
    DataFormatError,
    _conll_documents,
    detokenize,
    load_jsonl,
)

__all__ = [
    "CHAT_FILLER_SCHEMA",
    "CHAT_MEMORY_SCHEMA",
    "QA_SCHEMA",
    "QA_TYPES",
    "bootstrap_interval",
    "conll_context",
    "lead_words",
    "load_chat_memory",
    "load_conll_qa",
    "memory_conversation",
    "mentions",
    "unk_share",
    "wilson_interval",
]


# --------------------------------------------------------------------------------------------
# Extractive QA over CoNLL-2003 paragraphs
# --------------------------------------------------------------------------------------------


def conll_context(documents: dict, document: str, first: int, end: int) -> str:
    """The plain text of sentences ``[first, end)`` of a CoNLL document ("test-7")."""
    split, _, index = document.rpartition("-")
    if split not in documents or not index.isdigit() or int(index) >= len(documents[split]):
        raise DataFormatError(f"unknown CoNLL document {document!r}; expected e.g. 'test-7'")
    sentences = documents[split][int(index)]
    if not 0 <= first < end <= len(sentences):
        raise DataFormatError(
            f"{document}: sentences [{first}, {end}) are outside its {len(sentences)} sentences"
        )
    return " ".join(detokenize([t[0] for t in sentences[i]]) for i in range(first, end))


def load_conll_qa(path=None) -> DatasetDict:
    """The extractive QA set as train / validation / test, in SQuAD's format.

    Columns: ``id``, ``document``, ``type`` (who, where, when, how many, which organisation,
    which, what), ``question``, ``context`` (rebuilt from CoNLL-2003) and ``answers`` =
    ``{"text": [answer], "answer_start": [offset]}``. Questions of one article are always in one
    split (test: CoNLL's test articles; validation and train: CoNLL's validation and training
    articles). Raises `DataFormatError` if an answer is not the span at its offset (the CoNLL
    files differ from the ones the set was written for).
    """
    rows = load_jsonl(path or DATA_DIR / "conll_qa.jsonl", QA_SCHEMA)
    documents = _conll_documents()
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for row in rows:
        context = conll_context(
            documents, row["document"], row["first_sentence"], row["end_sentence"]
        )
        start, answer = row["answer_start"], row["answer"]
        if context[start : start + len(answer)] != answer:
            raise DataFormatError(
                f"{row['id']}: the answer {answer!r} is not at offset {start} of its context "
                f"(found {context[start : start + len(answer)]!r}); the CoNLL-2003 files are not "
                "the pinned ones: run `python -m course_utils fetch --verify`"
            )
        splits[row["split"]].append(
            {
                "id": row["id"],
                "document": row["document"],
                "type": row["type"],
                "question": row["question"],
                "context": context,
                "answers": {"text": [answer], "answer_start": [start]},
            }
        )
    return DatasetDict({name: Dataset.from_list(r) for name, r in splits.items()})


# --------------------------------------------------------------------------------------------
# Multi-turn chat
# --------------------------------------------------------------------------------------------

NEUTRAL_OPENING = ("Hi! I have a few questions for you today.", "Sure, go ahead!")


def load_chat_memory(folder=DATA_DIR) -> tuple[Dataset, Dataset]:
    """The conversations (a fact, then a question that needs it) and the filler exchanges."""
    memory = load_jsonl(Path(folder) / "chat_memory.jsonl", CHAT_MEMORY_SCHEMA)
    fillers = load_jsonl(Path(folder) / "chat_fillers.jsonl", CHAT_FILLER_SCHEMA)
    return memory, fillers


def memory_conversation(
    row: dict, fillers: Sequence[dict], n_fillers: int, with_fact: bool = True, offset: int = 0
) -> list[dict]:
    """The messages up to the question: the opening (the fact, or a neutral opening without it),
    `n_fillers` unrelated exchanges from `fillers` (starting at `offset`, wrapping around), then
    the question as the last user message. Every assistant turn is authored, not generated, so
    each model reads exactly the same history."""
    if n_fillers > len(fillers):
        raise ValueError(f"n_fillers={n_fillers} but only {len(fillers)} filler exchanges exist")
    opening = (row["fact"], row["reply"]) if with_fact else NEUTRAL_OPENING
    messages = [
        {"role": "user", "content": opening[0]},
        {"role": "assistant", "content": opening[1]},
    ]
    for k in range(n_fillers):
        filler = fillers[(offset + k) % len(fillers)]
        messages.append({"role": "user", "content": filler["user"]})
        messages.append({"role": "assistant", "content": filler["assistant"]})
    messages.append({"role": "user", "content": row["question"]})
    return messages


def mentions(answer: str, accepted: Sequence[str]) -> bool:
    """Whether `answer` contains one of the `accepted` strings starting at a word boundary, in any
    case ("peanut" is found in "Peanuts!", "tea" is not found in "instead")."""
    return any(
        re.search(r"(?<!\w)" + re.escape(a.lower()), answer.lower()) for a in accepted if a.strip()
    )


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def unk_share(tokenizer, texts: Sequence[str]) -> float:
    """The share of the tokens of `texts` that are the tokenizer's unknown token (0 when the
    tokenizer has none, as byte-level BPE tokenizers do not need one)."""
    unk = tokenizer.unk_token_id
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    total = sum(len(i) for i in ids)
    if total == 0:
        raise ValueError("the texts hold no tokens")
    if unk is None:
        return 0.0
    return sum(sum(1 for t in i if t == unk) for i in ids) / total


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a rate `successes / n` (95% for z = 1.96)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval of `statistic(indices)` over `n_units` resampled with
    replacement (the units are whatever the indices select: queries, questions, documents).
    For a difference between two systems, make `statistic` compute the difference on the same
    indices (a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n_units, n_units)) for _ in range(n_resamples)]
    lower, upper = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lower), float(upper)


def lead_words(text: str, n_words: int) -> str:
    """The first `n_words` words of `text`: the lead baseline of headline generation."""
    return " ".join(text.split()[:n_words])
