"""Chapter 7 — Applications: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from ..exercises import Case, Exercise, equal


# -- Exercise 1: entities from IOB2 tags ---------------------------------------------------------
def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) of each entity, by the conlleval rules: an entity
    starts at B-X, or at I-X after O or after another type; it goes on while I-X follows."""
    spans, current = [], None  # current: [type, start]
    for i, tag in enumerate(list(tags) + ["O"]):  # a final O closes the last entity
        prefix, _, kind = tag.partition("-")
        continues = current is not None and prefix == "I" and kind == current[0]
        if current is not None and not continues:
            spans.append((current[0], current[1], i))
            current = None
        if prefix in ("B", "I") and not continues:
            current = [kind, i]
    return spans


# -- Exercise 2: SQuAD's token F1 ----------------------------------------------------------------
def squad_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 after SQuAD's normalisation (lower case, no punctuation, no articles)."""

    def normalise(text: str) -> list[str]:
        text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
        return re.sub(r"\b(a|an|the)\b", " ", text).split()

    guess, truth = normalise(prediction), normalise(gold)
    if not guess or not truth:
        return float(guess == truth)
    common = sum((Counter(guess) & Counter(truth)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(guess), common / len(truth)
    return 2 * precision * recall / (precision + recall)


# -- Exercise 3: recall@k and MRR from ranks -----------------------------------------------------
def recall_and_mrr(ranks: Sequence[int], k: int) -> tuple[float, float]:
    """Recall@k and mean reciprocal rank, from the 1-based rank of each query's relevant document."""
    if not ranks:
        raise ValueError("no queries")
    recall = sum(rank <= k for rank in ranks) / len(ranks)
    mrr = sum(1 / rank for rank in ranks) / len(ranks)
    return recall, mrr


# -- Exercise 4 (an experiment): the lead baseline's length, chosen on validation ----------------
LEAD_LENGTHS = tuple(range(4, 21, 2))  # the candidate numbers of words


def best_lead_length(bodies: Sequence[str], headlines: Sequence[str]) -> int:
    """The number of leading words whose lead headline has the best mean ROUGE-L on these
    (validation) articles; ties go to the shorter headline."""
    from ..applications import lead_words
    from ..tasks.instruct import rouge

    scores = {
        n: rouge([lead_words(b, n) for b in bodies], list(headlines))["rougeL"]
        for n in LEAD_LENGTHS
    }
    return max(LEAD_LENGTHS, key=lambda n: (round(scores[n], 12), -n))


# -- hidden cases --------------------------------------------------------------------------------
TAG_CASES = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["O", "O", "O"],
    ["B-ORG", "B-ORG", "I-ORG"],
    ["I-MISC", "I-MISC", "O", "I-PER"],  # I- after O opens an entity (conlleval)
    ["B-PER", "I-LOC", "I-LOC", "O"],  # a new type opens a new entity
    ["B-LOC"],
    [],
]
F1_CASES = [
    ("Salem Bitar", "Salem Bitar"),
    ("the goalkeeper Salem Bitar", "Salem Bitar"),
    ("Bitar", "Salem Bitar"),
    ("The United States.", "United States"),
    ("Syria", "Japan"),
    ("", "Japan"),
    ("the", "a"),
    ("13 years in jail", "13 years"),
]
RANK_CASES = [
    ([1, 2, 3, 10], 1),
    ([1, 2, 3, 10], 5),
    ([1], 1),
    ([7, 7, 2], 3),
    ([4, 1, 1, 2, 9], 2),
]


def _close_pair(got, expected) -> bool:
    return isinstance(got, (tuple, list)) and len(got) == 2 and equal(tuple(got), tuple(expected))


def exercises(validation_headlines=None) -> dict[str, Exercise]:
    """Chapter 7's exercises; `validation_headlines` (the body -> headline validation split)
    is the data of the experiment exercise."""

    def lead_length_on_validation() -> int:
        """The reference answer: `best_lead_length` on the validation articles."""
        return best_lead_length(validation_headlines["body"], validation_headlines["headline"])

    return {
        "entity_spans": Exercise(
            "entity_spans",
            cases=[Case((tags,)) for tags in TAG_CASES],
            solution=entity_spans,
            compare=lambda got, expected: [tuple(s) for s in got] == expected,
            hints=[
                "Walk through the tags keeping the entity that is open (its type and start).",
                "An I-X continues the open entity only if it has the same type X; B-X, O, or an "
                "I- of another type closes it.",
                "B-X opens a new entity, and so does an I-X that does not continue one. Close "
                "whatever is still open after the last tag.",
            ],
        ),
        "squad_f1": Exercise(
            "squad_f1",
            cases=[Case(args) for args in F1_CASES],
            solution=squad_f1,
            hints=[
                "Normalise both strings the same way: lower case, drop string.punctuation, drop "
                "the words a / an / the, split on white space.",
                "Count the common tokens with Counter(prediction) & Counter(gold).",
                "precision = common / predicted tokens, recall = common / gold tokens; if either "
                "side is empty after normalising, the score is 1.0 when both are empty, else 0.0.",
            ],
        ),
        "recall_and_mrr": Exercise(
            "recall_and_mrr",
            cases=[Case(args) for args in RANK_CASES],
            solution=recall_and_mrr,
            compare=_close_pair,
            hints=[
                "Recall@k is the share of queries whose relevant document has rank <= k.",
                "MRR is the mean of 1 / rank.",
            ],
        ),
        "best_lead_length": Exercise(
            "best_lead_length",
            solution=lead_length_on_validation,
            kind="value",
            compare=lambda got, expected: equal(int(got), expected),
            hints=[
                "Loop over the candidate lengths LEAD_LENGTHS and build the lead headline of "
                "every validation article with lead_words(body, n).",
                "Score each length with rouge(predictions, headlines)['rougeL'] and keep the best "
                "(on a tie, the shorter one).",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs, built the way the notebook builds it (for the tests)."""
    from ..data import load_conll_headlines

    return {"validation_headlines": load_conll_headlines()["validation"]}
