"""Chapter 6 — Prompt design: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..exercises import Case, Exercise
from ..prompting import label_auc


# -- Exercise 1: a few-shot chat -----------------------------------------------------------------
def few_shot_messages(
    instruction: str, examples: Sequence[tuple[str, int]], text: str, label_words: Sequence[str]
) -> list[dict]:
    """System instruction, one user/assistant pair per example, then the text to classify."""
    messages = [{"role": "system", "content": instruction}]
    for example, label in examples:
        messages.append({"role": "user", "content": example})
        messages.append({"role": "assistant", "content": label_words[label]})
    messages.append({"role": "user", "content": text})
    return messages


# -- Exercise 2: parse a JSON answer robustly ----------------------------------------------------
def sentiment_from_reply(reply: str) -> str | None:
    """'positive', 'negative' or None from a reply that should hold {"sentiment": ...}."""
    start = reply.find("{")
    if start < 0:
        return None
    candidate = reply[start:]
    end = candidate.find("}")
    candidate = candidate[: end + 1] if end >= 0 else candidate + "}"  # cut off: close it
    candidate = candidate.replace("'", '"')
    try:
        value = json.loads(candidate)
    except ValueError:
        match = re.search(r'"sentiment"\s*:\s*"(\w+)', candidate)  # a last, looser try
        value = {"sentiment": match.group(1)} if match else None
    if not isinstance(value, dict):
        return None
    sentiment = str(value.get("sentiment", "")).strip().lower()
    return sentiment if sentiment in ("positive", "negative") else None


# -- Exercise 3: contextual calibration ----------------------------------------------------------
def calibrated_probs(probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Label probabilities divided by the content-free ones, renormalised per row."""
    p = np.asarray(probs, dtype=float)
    p = p / p.sum(axis=-1, keepdims=True)
    cf = np.asarray(content_free, dtype=float)
    cf = cf / cf.sum()
    q = p / cf
    return q / q.sum(axis=-1, keepdims=True)


# -- Exercise 3, part 2: an experiment with calibration ------------------------------------------
def calibration_experiment(logp: np.ndarray, cf: np.ndarray, labels: np.ndarray) -> tuple:
    """Calibrate the 1-shot prompt's scores with `calibrated_probs`; return the calibrated
    accuracy, the AUC of the log-odds and the letter of the explanation the numbers support."""
    probs = np.exp(np.asarray(logp)[:, :2])
    p_cf = np.exp(np.asarray(cf)[:, :2])
    p_cf = (p_cf / p_cf.sum(axis=1, keepdims=True)).mean(axis=0)  # mean of the content-free rows
    labels = np.asarray(labels)
    raw = float((probs.argmax(axis=1) == labels).mean())
    calibrated = float((calibrated_probs(probs, p_cf).argmax(axis=1) == labels).mean())
    auc = label_auc(np.log(probs), labels)  # threshold-free: calibration cannot change it
    if auc < 0.6:
        letter = "a"  # the prompt does not order the reviews: information lost
    elif calibrated > raw:
        letter = "b"  # the reviews are ordered, a label bias hid it, calibration removes it
    else:
        letter = "c"  # ordered, but the content-free estimate of the bias does not fix it
    return calibrated, auc, letter


def _experiment_matches(got, expected) -> bool:
    try:
        acc, auc, letter = got
        return (abs(float(acc) - expected[0]) < 0.005 and abs(float(auc) - expected[1]) < 0.005
                and str(letter).strip().lower() == expected[2])  # fmt: skip
    except (TypeError, ValueError):
        return False


def _synthetic_one_shot() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stand-in for the notebook's 1-shot scores (the tests have no model): a biased prompt."""
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, size=60)
    odds = 1.5 * (labels - 0.5) + rng.normal(0, 1, size=60) + 2.0  # ordered, pushed to positive
    p_pos = 1 / (1 + np.exp(-odds))
    logp = np.log(np.stack([1 - p_pos, p_pos], axis=1) * 0.6)  # the label words' mass is 0.6
    cf = np.log(np.array([[0.2, 0.7], [0.15, 0.75], [0.25, 0.6]]))
    return logp, cf, labels


# -- Exercise 4: choose a prompt without peeking -------------------------------------------------
def select_prompt(results: Mapping[str, Mapping[str, float]]) -> str:
    """The best prompt on validation; ties: the shorter name, then alphabetical order."""
    return min(results, key=lambda name: (-results[name]["val_accuracy"], len(name), name))


FEW_SHOT_CASES = [
    ("Classify the review.", [], "A fine film.", ("negative", "positive")),
    ("Classify the review.", [("Loved it.", 1)], "Dull.", ("negative", "positive")),
    (
        "Answer yes or no.",
        [("Awful.", 0), ("Great fun.", 1), ("Boring.", 0)],
        "Not bad at all.",
        ("No", "Yes"),
    ),
]

REPLIES = [
    '{"sentiment": "positive"}',
    'Sure! Here is the answer: {"sentiment": "negative"}',
    '```json\n{"sentiment": "Positive"}\n```',
    "{'sentiment': 'negative'}",
    '{"sentiment": "positive"',
    '{"sentiment": "neutral"}',
    "The review is positive.",
    '{"mood": "positive"}',
    '{"sentiment": "negative", "confidence": 0.9} and some more text {',
    "",
]
REPLY_ANSWERS = ["positive", "negative", "positive", "negative", "positive", None, None, None,
                 "negative", None]  # fmt: skip

CALIBRATION_CASES = [
    (np.array([[0.6, 0.4], [0.8, 0.2]]), np.array([0.7, 0.3])),
    (np.array([[0.02, 0.01], [0.001, 0.004]]), np.array([0.01, 0.01])),
    (np.array([[0.5, 0.5]]), np.array([0.2, 0.8])),
    (np.array([[0.3, 0.1], [0.1, 0.3], [0.25, 0.25]]), np.array([0.09, 0.01])),
]

SELECTION_CASES = [
    {"a": {"val_accuracy": 0.8, "test_accuracy": 0.7}, "b": {"val_accuracy": 0.7, "test_accuracy": 0.9}},
    {"long name": {"val_accuracy": 0.8, "test_accuracy": 0.6},
     "short": {"val_accuracy": 0.8, "test_accuracy": 0.5}},
    {"zeta": {"val_accuracy": 0.75, "test_accuracy": 0.8}, "beta": {"val_accuracy": 0.75, "test_accuracy": 0.7},
     "gamma": {"val_accuracy": 0.6, "test_accuracy": 0.99}},
    {"only": {"val_accuracy": 0.5, "test_accuracy": 0.5}},
]  # fmt: skip


def _close_arrays(got, expected) -> bool:
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return False
    return got.shape == np.shape(expected) and bool(np.allclose(got, expected, atol=1e-6))


def exercises(tokenizer=None, one_shot=None) -> dict[str, Exercise]:
    """Chapter 6's exercises; `tokenizer` (SmolLM2's) renders the few-shot chats when given;
    `one_shot` = `(logp, cf, labels)`, the notebook's 1-shot scores for exercise 3's experiment
    (a synthetic stand-in when not given)."""
    one_shot = _synthetic_one_shot() if one_shot is None else one_shot

    def same_chat(got, expected) -> bool:
        if got != expected:
            return False
        if tokenizer is None:
            return True
        render = tokenizer.apply_chat_template  # what the model would read must match too
        return render(got, tokenize=False) == render(expected, tokenize=False)

    return {
        "few_shot_messages": Exercise(
            "few_shot_messages",
            cases=[Case(args) for args in FEW_SHOT_CASES],
            solution=few_shot_messages,
            compare=same_chat,
            hints=[
                'Start with [{"role": "system", "content": instruction}].',
                "For each (example, label): append a user message with the example, then an "
                "assistant message with label_words[label].",
                "Finish with a user message holding `text`.",
            ],
        ),
        "sentiment_from_reply": Exercise(
            "sentiment_from_reply",
            cases=[Case((r,), expected=a) for r, a in zip(REPLIES, REPLY_ANSWERS, strict=True)],
            solution=sentiment_from_reply,
            hints=[
                "Find the first '{' with reply.find('{'); no brace means no answer.",
                "Cut the candidate at the first '}' (add one if there is none), replace single "
                "quotes with double quotes, then try json.loads.",
                "Lower-case the sentiment and accept only 'positive' or 'negative'.",
            ],
        ),
        "calibrated_probs": Exercise(
            "calibrated_probs",
            cases=[Case(args) for args in CALIBRATION_CASES],
            solution=calibrated_probs,
            compare=_close_arrays,
            hints=[
                "Normalise: p / p.sum(axis=-1, keepdims=True), and content_free / content_free.sum().",
                "Divide each row by the content-free probabilities (broadcasting does it).",
                "Normalise the rows again so each sums to 1.",
            ],
        ),
        "calibration_experiment": Exercise(
            "calibration_experiment",
            kind="value",
            solution=calibration_experiment,
            solution_args=tuple(one_shot),
            compare=_experiment_matches,
            hints=[
                "probs = np.exp(logp1[:, :2]); the content-free row: normalise each row of "
                "np.exp(cf1[:, :2]) to sum to 1, then take the mean over the rows.",
                "Calibrated accuracy: (calibrated_probs(probs, p_cf).argmax(1) == y_sweep).mean(); "
                "the AUC: label_auc(logp1[:, :2], y_sweep).",
                "AUC near 0.5 means the prompt does not tell the reviews apart at all; an AUC "
                "well above 0.5 with a raw accuracy near 50% means the bias hides what it knows.",
            ],
        ),
        "select_prompt": Exercise(
            "select_prompt",
            cases=[Case((r,)) for r in SELECTION_CASES],
            solution=select_prompt,
            hints=[
                "Never look at 'test_accuracy'.",
                "min(results, key=...) with a key tuple: (-validation accuracy, len(name), name).",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs, built the way the notebook builds it (for the tests)."""
    from ..models import load_tokenizer

    return {"tokenizer": load_tokenizer("smollm2")}
