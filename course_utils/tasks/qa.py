"""Extractive question answering: find the answer as a span of the context (introduced in chapter 7).

Examples follow SQuAD's format: `question`, `context`, `answers` = ``{"text": [...],
"answer_start": [...]}`` (character offsets into the context; several gold answers allowed), and
an optional `id`.

- **Features** (`tokenize_qa`): question and context are tokenised as one pair; a context longer
  than `max_length` is cut into overlapping windows (`stride` tokens shared by neighbours,
  ``return_overflowing_tokens``), so one example may give several features. Each feature keeps
  `example_id` and `offset_mapping` (character span of each token, ``None`` outside the context);
  with answers it also gets `start_positions` / `end_positions`, the tokens where the first gold
  answer starts and ends, or ``0, 0`` (the ``[CLS]`` token) when the answer is not entirely inside
  the window.
- **Decoding** (`postprocess`): for each feature, the `n_best` highest start logits and end
  logits among the *context* tokens are paired; a pair is valid if start <= end and the span is
  at most `max_answer_length` tokens; its score is start logit + end logit. The answer of an
  example is the best valid span over all its features (``""`` if there is none). Every example is
  assumed answerable (SQuAD 1.1): no "no answer" threshold.
- **Scores** (`squad_scores`): exact match and token F1 after the official SQuAD normalisation
  (lower-case, remove punctuation, remove the articles a/an/the, collapse white space), each the
  maximum over the gold answers, averaged and given in percent as the official script does.
- **Baseline** (`overlap_baseline`): the context window with the most question words, and the
  run of other content words closest to them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "answer_questions",
    "exact_match",
    "normalize_answer",
    "overlap_baseline",
    "postprocess",
    "qa_compute_metrics",
    "squad_scores",
    "token_f1",
    "tokenize_qa",
]


# --------------------------------------------------------------------------------------------
# Features: strided windows over the context, answer positions, offsets
# --------------------------------------------------------------------------------------------


def _first_answer(answers) -> tuple[str, int] | None:
    if not answers:
        return None
    text, start = answers["text"], answers["answer_start"]
    if isinstance(text, str):
        return text, int(start)
    return (text[0], int(start[0])) if len(text) else None


def _answer_positions(offsets, sequence_ids, answer: tuple[str, int] | None) -> tuple[int, int]:
    """Token positions of the answer's first and last characters; (0, 0) if not in the window."""
    if answer is None:
        return 0, 0
    start_char = answer[1]
    end_char = start_char + len(answer[0])
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def tokenize_qa(
    dataset,
    tokenizer,
    max_length: int = 384,
    stride: int = 128,
    question_column: str = "question",
    context_column: str = "context",
    answers_column: str = "answers",
    id_column: str = "id",
):
    """Features for training and evaluation (see the module docstring); one row per window.

    Columns: the tokenizer's inputs, `example_id` (the example's `id`, or its row number when the
    data has no `id` column), `offset_mapping` (``None`` outside the context) and, when the data
    has `answers`, `start_positions` and `end_positions`. The model ignores the extra columns.
    """
    if tokenizer.padding_side != "right":
        raise ValueError("tokenize_qa puts the question first: use a right-padding tokenizer")
    has_answers = answers_column in dataset.column_names
    has_ids = id_column in dataset.column_names

    def encode(batch, indices):
        enc = tokenizer(
            [q.lstrip() for q in batch[question_column]],
            batch[context_column],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        sample = enc.pop("overflow_to_sample_mapping")
        enc["example_id"], starts, ends, offsets_out = [], [], [], []
        for i, offsets in enumerate(enc["offset_mapping"]):
            row = sample[i]
            sequence_ids = enc.sequence_ids(i)
            enc["example_id"].append(str(batch[id_column][row]) if has_ids else str(indices[row]))
            if has_answers:
                answer = _first_answer(batch[answers_column][row])
                start, end = _answer_positions(offsets, sequence_ids, answer)
                starts.append(start)
                ends.append(end)
            offsets_out.append(
                [list(o) if s == 1 else None for o, s in zip(offsets, sequence_ids, strict=True)]
            )
        enc["offset_mapping"] = offsets_out
        if has_answers:
            enc["start_positions"], enc["end_positions"] = starts, ends
        return enc

    from ..training.batching import tokenized_fingerprint

    settings = ("tokenize_qa", max_length, stride, question_column, context_column,
                answers_column, id_column)  # fmt: skip
    return dataset.map(encode, batched=True, with_indices=True, remove_columns=dataset.column_names,
                       new_fingerprint=tokenized_fingerprint(dataset, tokenizer, *settings))  # fmt: skip


# --------------------------------------------------------------------------------------------
# Decoding: logits -> the best valid span
# --------------------------------------------------------------------------------------------


def _best_span(start_logits, end_logits, offsets, n_best: int, max_answer_length: int):
    """(score, char start, char end) of the best valid span of one feature, or None."""
    n = len(offsets)
    context = np.array([o is not None for o in offsets])
    if not context.any():
        return None
    start_logits = np.where(context, np.asarray(start_logits[:n], dtype=np.float64), -np.inf)
    end_logits = np.where(context, np.asarray(end_logits[:n], dtype=np.float64), -np.inf)
    k = min(n_best, int(context.sum()))
    best = None
    for s in np.argsort(-start_logits, kind="stable")[:k]:
        for e in np.argsort(-end_logits, kind="stable")[:k]:
            if e < s or e - s + 1 > max_answer_length:
                continue
            score = start_logits[s] + end_logits[e]
            if best is None or score > best[0]:
                best = (float(score), offsets[s][0], offsets[e][1])
    return best


def postprocess(
    examples,
    features,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
    context_column: str = "context",
    id_column: str = "id",
) -> list[dict]:
    """The answer of each example from its features' logits (rule in the module docstring).

    `features` is `tokenize_qa`'s output, in the order of the logits' rows (as `predict` returns
    them). Returns, per example and in its order, ``{"id", "answer", "start", "score"}``
    (`start`: the answer's character offset in the context; ``-1`` and score ``-inf`` if no
    valid span was found).
    """
    by_example: dict[str, list[int]] = {}
    for i, example_id in enumerate(features["example_id"]):
        by_example.setdefault(example_id, []).append(i)
    offsets_all = features["offset_mapping"]
    has_ids = id_column in examples.column_names
    ids = (
        [str(x) for x in examples[id_column]] if has_ids else [str(i) for i in range(len(examples))]
    )
    out = []
    for example_id, context in zip(ids, examples[context_column], strict=True):
        best = None
        for i in by_example.get(example_id, []):
            span = _best_span(
                start_logits[i], end_logits[i], offsets_all[i], n_best, max_answer_length
            )
            if span is not None and (best is None or span[0] > best[0]):
                best = span
        if best is None:
            out.append({"id": example_id, "answer": "", "start": -1, "score": float("-inf")})
        else:
            score, start, end = best
            out.append(
                {"id": example_id, "answer": context[start:end], "start": start, "score": score}
            )
    return out


# --------------------------------------------------------------------------------------------
# SQuAD exact match and F1 (the official script's rules)
# --------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower-case, no punctuation, no a/an/the, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _gold_list(answers: str | Sequence[str]) -> list[str]:
    golds = [answers] if isinstance(answers, str) else list(answers)
    if not golds:
        raise ValueError("an example needs at least one gold answer")
    return golds


def exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0."""
    guess = normalize_answer(prediction)
    return float(any(guess == normalize_answer(a) for a in _gold_list(answers)))


def _f1(prediction: str, gold: str) -> float:
    guess, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not guess or not truth:  # SQuAD 2.0's rule for empty answers
        return float(guess == truth)
    common = sum((Counter(guess) & Counter(truth)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(guess), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: str | Sequence[str]) -> float:
    """Token-overlap F1 of the normalised strings, the best over the gold answers."""
    return max(_f1(prediction, a) for a in _gold_list(answers))


def squad_scores(
    predictions: Sequence[str], references: Sequence[str | Sequence[str]]
) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent, averaged over examples (one prediction each;
    `references[i]` is a gold answer or a list of them)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    em = [exact_match(p, r) for p, r in zip(predictions, references, strict=True)]
    f1 = [token_f1(p, r) for p, r in zip(predictions, references, strict=True)]
    return {"exact_match": 100 * float(np.mean(em)), "f1": 100 * float(np.mean(f1))}


def _gold_texts(examples, answers_column: str) -> list[list[str]]:
    return [
        [a["text"]] if isinstance(a["text"], str) else list(a["text"])
        for a in examples[answers_column]
    ]


def qa_compute_metrics(
    examples,
    features,
    n_best: int = 20,
    max_answer_length: int = 30,
    answers_column: str = "answers",
) -> Callable:
    """A ``compute_metrics(EvalPrediction)`` for `train` / `Trainer` whose eval data is
    `features` (= ``tokenize_qa(examples, ...)``): decode with `postprocess`, score with
    `squad_scores`."""
    golds = _gold_texts(examples, answers_column)

    def compute(eval_prediction) -> dict[str, float]:
        start_logits, end_logits = eval_prediction.predictions[:2]
        answers = postprocess(
            examples, features, start_logits, end_logits, n_best, max_answer_length
        )
        return squad_scores([a["answer"] for a in answers], golds)

    return compute


def answer_questions(
    model,
    tokenizer,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_length: int = 384,
    stride: int = 128,
    n_best: int = 20,
    max_answer_length: int = 30,
    batch_size: int = 32,
) -> list[dict]:
    """Answers to raw questions about raw contexts (`tokenize_qa` + `predict` + `postprocess`)."""
    from datasets import Dataset

    from ..training import predict

    examples = Dataset.from_dict({"question": list(questions), "context": list(contexts)})
    features = tokenize_qa(examples, tokenizer, max_length, stride)
    start_logits, end_logits = predict(
        model, features, tokenizer, batch_size=batch_size, max_length=None
    )[:2]
    return postprocess(examples, features, start_logits, end_logits, n_best, max_answer_length)


# --------------------------------------------------------------------------------------------
# Baseline: lexical overlap in a sliding window
# --------------------------------------------------------------------------------------------

STOP_WORDS = frozenset(
    """a an the of in on at to for from by with and or as is are was were be been being do does
    did has have had what which who whom whose when where why how many much that this these those
    it its his her their there than into about after before during""".split()
)


def _content_runs(norm: list[str], keywords: set[str]) -> list[list[int]]:
    """Maximal runs of consecutive words that are neither question keywords nor stop words."""
    runs, run = [], []
    for i, word in enumerate(norm):
        if word and word not in keywords and word not in STOP_WORDS:
            run.append(i)
        elif run:
            runs.append(run)
            run = []
    return runs + [run] if run else runs


def overlap_baseline(
    question: str, context: str, window: int = 12, max_answer_words: int = 5
) -> dict:
    """A span of `context` chosen by word overlap with `question`, no learning involved.

    The rule: (1) the question's keywords are its normalised words minus `STOP_WORDS`; (2) every
    window of `window` consecutive context words is scored by how many distinct keywords it
    holds; the best window wins (the earliest on ties); (3) the answer is the run of consecutive
    other content words (neither keywords nor stop words) closest to a keyword of that window,
    counted in words between them; on a tie a run *after* the keyword wins ("opened by Anna
    Berg"), then the earlier run; (4) a run longer than `max_answer_words` keeps the words
    nearest the keyword. No keyword in the context: no answer (``""``).
    Returns ``{"answer", "start"}`` (character offset, -1 without an answer).
    """
    words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\w+", context)]
    keywords = set(normalize_answer(question).split()) - STOP_WORDS
    norm = [normalize_answer(w) for w, _, _ in words]
    best_start, best_score = 0, 0
    for start in range(max(1, len(words) - window + 1)):
        score = len(keywords & set(norm[start : start + window]))
        if score > best_score:
            best_start, best_score = start, score
    hits = [
        i for i in range(best_start, best_start + window) if i < len(norm) and norm[i] in keywords
    ]
    runs = _content_runs(norm, keywords)
    if not hits or not runs:
        return {"answer": "", "start": -1}

    def closeness(run: list[int]) -> tuple[int, int, int]:
        gaps = [(run[0] - h - 1, 0) if run[0] > h else (h - run[-1] - 1, 1) for h in hits]
        gap, before = min(gaps)
        return gap, before, run[0]

    run = min(runs, key=closeness)
    run = run[:max_answer_words] if closeness(run)[1] == 0 else run[-max_answer_words:]
    start, end = words[run[0]][1], words[run[-1]][2]
    return {"answer": context[start:end], "start": start}
