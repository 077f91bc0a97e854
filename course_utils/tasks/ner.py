"""Named-entity recognition as token classification (introduced in chapter 7).

A data set of sentences split into words (`tokens`) with one IOB tag per word (`ner_tags`,
label ids or strings) becomes model inputs in three steps:

1. the words are tokenised with ``is_split_into_words=True``, so every word piece knows its word
   (``encoding.word_ids()``);
2. labels are **aligned** to the pieces (`align_labels`). The rule: special tokens (``[CLS]``,
   ``[SEP]``, padding) get -100, which the loss ignores; the *first* piece of each word gets the
   word's tag; each *continuation* piece gets either -100 (``continuation="ignore"``, the default:
   one prediction per word, the standard for CoNLL-2003) or the word's tag with ``B-X`` turned
   into ``I-X`` (``continuation="inside"``: every piece is trained, and the entity still starts
   exactly once);
3. batches are padded by `DataCollatorForTokenClassification` (labels padded with -100).

Scores are entity-level (`entity_scores`, with `seqeval`): an entity counts as found only if its
type and both boundaries are right. ``mode="default"`` scores like the CoNLL shared task's
``conlleval`` script (an ``I-X`` after ``O`` or after another type starts an entity, so IOB1 and
IOB2 files both work); ``mode="strict"`` follows the IOB2 scheme to the letter (an entity must
open with ``B-X``; anything else is not an entity; `course_utils.data.to_iob2` converts IOB1).
CoNLL-2003 results are reported with ``conlleval``, so the default is ``"default"``.

`MostFrequentTag` is the classic baseline (each word's most frequent training tag) and
`predict_entities` returns the entities of raw sentences with character spans into the text.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "MostFrequentTag",
    "align_labels",
    "entity_scores",
    "inside_label_map",
    "logits_to_tags",
    "ner_collator",
    "ner_compute_metrics",
    "predict_entities",
    "tags_by_word",
    "tokenize_and_align",
]

Continuation = Literal["ignore", "inside"]


def inside_label_map(label_names: Sequence[str]) -> dict[int, int]:
    """For each label id, the id a continuation piece gets: ``B-X`` -> ``I-X``, others unchanged."""
    ids = {name: i for i, name in enumerate(label_names)}
    mapping = {}
    for i, name in enumerate(label_names):
        if name.startswith("B-"):
            inside = "I-" + name[2:]
            if inside not in ids:
                raise ValueError(f"label {name!r} has no {inside!r} in {list(label_names)}")
            mapping[i] = ids[inside]
        else:
            mapping[i] = i
    return mapping


def align_labels(
    word_ids: Sequence[int | None],
    word_labels: Sequence[int],
    continuation: Continuation = "ignore",
    b_to_i: dict[int, int] | None = None,
) -> list[int]:
    """One label per word piece from one label per word (the rule is in the module docstring).

    `word_ids` is ``encoding.word_ids(i)``: the word of each piece, ``None`` for special tokens.
    With ``continuation="inside"``, `b_to_i` (from `inside_label_map`) turns B- into I- ids.
    """
    if continuation not in ("ignore", "inside"):
        raise ValueError(f"continuation must be 'ignore' or 'inside', not {continuation!r}")
    if continuation == "inside" and b_to_i is None:
        raise ValueError("continuation='inside' needs b_to_i=inside_label_map(label_names)")
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(-100)
        elif word != previous:
            labels.append(int(word_labels[word]))
        elif continuation == "ignore":
            labels.append(-100)
        else:
            labels.append(b_to_i[int(word_labels[word])])
        previous = word
    return labels


def _as_ids(tags: Sequence, label_names: Sequence[str]) -> list[int]:
    if not tags or isinstance(tags[0], (int, np.integer)):
        return [int(t) for t in tags]
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({t for t in tags if t not in index})
    if unknown:
        raise ValueError(f"tags {unknown} are not in label_names {list(label_names)}")
    return [index[t] for t in tags]


def tokenize_and_align(
    dataset,
    tokenizer,
    label_names: Sequence[str],
    max_length: int | None = 128,
    continuation: Continuation = "ignore",
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
):
    """Tokenise a words-and-tags `datasets.Dataset` for token classification.

    Adds `input_ids`, `attention_mask` (and `token_type_ids` for BERT), `labels` aligned by
    `align_labels`, and `word_ids` (the word of each piece, -1 for special tokens) so that
    predictions can be read back per word (`tags_by_word`). The original columns stay; the
    training loop and `Trainer` drop what the model does not take. Words cut off by `max_length`
    get no label (and `tags_by_word` tags them ``O``).
    """
    b_to_i = inside_label_map(label_names) if continuation == "inside" else None

    def encode(batch):
        enc = tokenizer(
            batch[tokens_column],
            is_split_into_words=True,
            truncation=max_length is not None,
            max_length=max_length,
        )
        enc["labels"], enc["word_ids"] = [], []
        for i, tags in enumerate(batch[tags_column]):
            word_ids = enc.word_ids(i)
            ids = _as_ids(tags, label_names)
            enc["labels"].append(align_labels(word_ids, ids, continuation, b_to_i))
            enc["word_ids"].append([-1 if w is None else w for w in word_ids])
        return enc

    from ..training.batching import tokenized_fingerprint

    settings = ("tokenize_and_align", tuple(label_names), max_length, continuation, tokens_column,
                tags_column)  # fmt: skip
    fingerprint = tokenized_fingerprint(dataset, tokenizer, *settings)
    return dataset.map(encode, batched=True, new_fingerprint=fingerprint)


def ner_collator(tokenizer):
    """`DataCollatorForTokenClassification`: pads inputs, and labels with -100."""
    from transformers import DataCollatorForTokenClassification

    return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=-100)


def entity_scores(
    true_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    mode: Literal["default", "strict"] = "default",
) -> dict[str, float]:
    """Entity-level precision, recall and F1 (micro-averaged) and the same per entity type.

    Keys: ``precision``, ``recall``, ``f1``, ``accuracy`` (per word, ``O`` included) and, for each
    type ``X``, ``precision_X``, ``recall_X``, ``f1_X``, ``support_X`` (gold entities of X).
    ``mode="default"`` is conlleval's scoring, ``"strict"`` IOB2's (see the module docstring).
    All values are in [0, 1].
    """
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOB2

    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', not {mode!r}")
    if len(true_tags) != len(pred_tags) or any(
        len(t) != len(p) for t, p in zip(true_tags, pred_tags, strict=True)
    ):
        raise ValueError("true_tags and pred_tags must have the same sentences and lengths")
    kwargs = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    true_tags, pred_tags = [list(t) for t in true_tags], [list(p) for p in pred_tags]
    if all(tag == "O" for tags in true_tags + pred_tags for tag in tags):
        report = {}  # no entity anywhere: seqeval would average over nothing
    else:
        report = classification_report(
            true_tags, pred_tags, output_dict=True, zero_division=0, **kwargs
        )
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    scores = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "accuracy": float(accuracy_score(true_tags, pred_tags)),
    }
    for name, row in report.items():
        if name.endswith(" avg"):
            continue
        scores[f"precision_{name}"] = float(row["precision"])
        scores[f"recall_{name}"] = float(row["recall"])
        scores[f"f1_{name}"] = float(row["f1-score"])
        scores[f"support_{name}"] = float(row["support"])
    return scores


def logits_to_tags(
    logits: np.ndarray, labels: np.ndarray, label_names: Sequence[str]
) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tag sequences from token logits, at the positions whose label != -100.

    With the default alignment those are the first pieces of the words, i.e. one tag per word.
    """
    predicted = np.asarray(logits).argmax(-1)
    true, pred = [], []
    for gold_row, pred_row in zip(np.asarray(labels), predicted, strict=True):
        keep = gold_row != -100
        true.append([label_names[i] for i in gold_row[keep]])
        pred.append([label_names[i] for i in pred_row[keep]])
    return true, pred


def ner_compute_metrics(
    label_names: Sequence[str], mode: Literal["default", "strict"] = "default"
) -> Callable:
    """A ``compute_metrics(EvalPrediction)`` for `train` / `Trainer`: `entity_scores` of the
    labelled positions (`logits_to_tags`). With ``continuation="inside"`` these are all pieces,
    not words: score the final model per word with `tags_by_word` instead."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        true, pred = logits_to_tags(logits, eval_prediction.label_ids, label_names)
        return entity_scores(true, pred, mode)

    return compute


def tags_by_word(
    logits: np.ndarray, word_ids: Sequence[Sequence[int]], n_words: Sequence[int], label_names
) -> list[list[str]]:
    """One predicted tag per word (its first piece's argmax), from `predict`'s logits.

    `word_ids` is the column `tokenize_and_align` adds; `n_words[i]` the number of words of
    sentence i. Words cut off by truncation are tagged ``O``.
    """
    predicted = np.asarray(logits).argmax(-1)
    out = []
    for row, words, n in zip(predicted, word_ids, n_words, strict=True):
        tags = ["O"] * n
        seen = set()
        for position, word in enumerate(words):
            if word >= 0 and word not in seen:
                seen.add(word)
                tags[word] = label_names[int(row[position])]
        out.append(tags)
    return out


@dataclass
class MostFrequentTag:
    """The classic baseline: tag each word with its most frequent tag in the training data.

    Lookup is case-sensitive (capitals are the main cue for names); a word never seen in
    training is tagged ``default`` (``"O"``). Ties go to the tag seen first.
    """

    table: dict[str, str] = field(default_factory=dict)
    default: str = "O"

    @classmethod
    def fit(
        cls, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], default: str = "O"
    ) -> MostFrequentTag:
        """Count (word, tag) pairs over the training sentences."""
        counts: dict[str, Counter] = {}
        for words, word_tags in zip(sentences, tags, strict=True):
            for word, tag in zip(words, word_tags, strict=True):
                counts.setdefault(word, Counter())[tag] += 1
        return cls({w: c.most_common(1)[0][0] for w, c in counts.items()}, default)

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag per word of each sentence."""
        return [[self.table.get(w, self.default) for w in words] for words in sentences]


def _extend_over_marks(text: str, end: int) -> int:
    # the tokenizer's offsets stop before a trailing combining accent ("e\u0301"): keep it
    while end < len(text) and unicodedata.combining(text[end]):
        end += 1
    return end


def _word_spans(word_ids: Sequence[int | None], offsets) -> dict[int, tuple[int, int, int]]:
    """word -> (first piece position, char start, char end)."""
    spans: dict[int, tuple[int, int, int]] = {}
    for position, (word, (start, end)) in enumerate(zip(word_ids, offsets, strict=True)):
        if word is None:
            continue
        first, s, _ = spans.get(word, (position, start, end))
        spans[word] = (first, s, end)
    return spans


def predict_entities(
    model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int = 512
) -> list[list[dict]]:
    """The entities of raw sentences: ``{"type", "text", "start", "end", "score"}`` each.

    Each word (as the tokenizer's pre-tokenizer splits it) takes the tag of its first piece, as
    in training; the tags are grouped into entities with seqeval's ``get_entities`` (conlleval
    rules), and ``text[start:end]`` is the entity's exact text. `score` is the mean probability
    of its words' tags. Needs a fast tokenizer (offsets and word ids). This is the job of
    ``pipeline("token-classification", aggregation_strategy="first")``, which works offline too,
    but guesses word boundaries from token lengths and merges a word written with a combining
    accent into the word before it; word ids are exact.
    """
    import torch
    from seqeval.metrics.sequence_labeling import get_entities

    id2label = model.config.id2label
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results = []
    for begin in range(0, len(texts), batch_size):
        chunk = list(texts[begin : begin + batch_size])
        enc = tokenizer(
            chunk,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").tolist()
        with torch.no_grad():
            probs = model(**{k: v.to(device) for k, v in enc.items()}).logits.softmax(-1).cpu()
        for row, text in enumerate(chunk):
            spans = _word_spans(enc.word_ids(row), offsets[row])
            words = sorted(spans)
            best = probs[row].max(-1)
            tags = [id2label[int(best.indices[spans[w][0]])] for w in words]
            found = []
            for kind, first, last in get_entities(tags):
                start = spans[words[first]][1]
                end = _extend_over_marks(text, spans[words[last]][2])
                score = float(np.mean([best.values[spans[w][0]] for w in words[first : last + 1]]))
                found.append(
                    {
                        "type": kind,
                        "text": text[start:end],
                        "start": start,
                        "end": end,
                        "score": score,
                    }
                )
            results.append(found)
    model.train(was_training)
    return results
