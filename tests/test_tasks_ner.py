"""Tests of `course_utils.tasks.ner` (token classification) on a tiny WordPiece vocabulary."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from course_utils.tasks import ner

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "john smith jose maria paris bos london acme corp met visited in and then , . yesterday"
PIECES = ["##ton", "##s"]  # "boston" -> bos ##ton, "corps" -> corp ##s


@pytest.fixture(scope="module")
def wp_tokenizer():
    """An uncased BERT WordPiece tokenizer whose vocabulary splits some words into pieces."""
    from transformers import BertTokenizer

    vocab = SPECIAL + WORDS.split() + PIECES
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


PERSONS = [["John"], ["John", "Smith"], ["Maria"], ["Jose", "Maria"]]
PLACES = [["Paris"], ["Boston"], ["London"]]
ORGS = [["Acme"], ["Acme", "Corps"]]


def _entity(words, kind):
    return words, [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)


def make_ner_dataset(n: int, seed: int = 0):
    """Sentences like "John Smith visited Boston" with IOB2 tags (learnable from the words)."""
    from datasets import Dataset

    rng = random.Random(seed)
    rows = {"tokens": [], "ner_tags": []}
    for _ in range(n):
        parts = [
            _entity(rng.choice(PERSONS), "PER"),
            ([rng.choice(["met", "visited"])], ["O"]),
            _entity(rng.choice(PLACES + ORGS), "LOC"),
        ]
        if rng.random() < 0.5:
            parts.insert(0, (["Yesterday", ","], ["O", "O"]))
        words = [w for p in parts for w in p[0]]
        tags = [t for p in parts for t in p[1]]
        if any(w in ("Acme", "Corps") for w in words):
            tags = [t.replace("LOC", "ORG") if w in ("Acme", "Corps") else t for w, t in zip(words, tags, strict=True)]  # fmt: skip
        rows["tokens"].append(words + ["."])
        rows["ner_tags"].append([LABELS.index(t) for t in tags] + [0])
    return Dataset.from_dict(rows)


def build_tiny_token_classifier(tokenizer, seed: int = 0, layers: int = 2):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForTokenClassification(config)


# ------------------------------------------------------------------ alignment


def test_align_labels_ignore_and_inside_rules():
    word_ids = [None, 0, 1, 1, 1, 2, None]
    word_labels = [1, 3, 0]  # B-PER, B-LOC, O
    assert ner.align_labels(word_ids, word_labels) == [-100, 1, 3, -100, -100, 0, -100]
    b_to_i = ner.inside_label_map(LABELS)
    assert ner.align_labels(word_ids, word_labels, "inside", b_to_i) == [-100, 1, 3, 4, 4, 0, -100]
    # an I- word keeps I- on its continuation pieces, O stays O
    assert ner.align_labels([0, 0, 1, 1], [2, 0], "inside", b_to_i) == [2, 2, 0, 0]
    with pytest.raises(ValueError, match="b_to_i"):
        ner.align_labels(word_ids, word_labels, "inside")
    with pytest.raises(ValueError, match="continuation"):
        ner.align_labels(word_ids, word_labels, "all")
    with pytest.raises(ValueError, match="I-X"):
        ner.inside_label_map(["O", "B-X"])


def test_tokenize_and_align_on_word_pieces(wp_tokenizer):
    from datasets import Dataset

    data = Dataset.from_dict(
        {"tokens": [["John", "visited", "Boston", "."]], "ner_tags": [["B-PER", "O", "B-LOC", "O"]]}
    )
    first = ner.tokenize_and_align(data, wp_tokenizer, LABELS)[0]
    pieces = wp_tokenizer.convert_ids_to_tokens(first["input_ids"])
    assert pieces == ["[CLS]", "john", "visited", "bos", "##ton", ".", "[SEP]"]
    assert first["labels"] == [-100, 1, 0, 3, -100, 0, -100]
    assert first["word_ids"] == [-1, 0, 1, 2, 2, 3, -1]
    inside = ner.tokenize_and_align(data, wp_tokenizer, LABELS, continuation="inside")[0]
    assert inside["labels"] == [-100, 1, 0, 3, 4, 0, -100]
    cut = ner.tokenize_and_align(data, wp_tokenizer, LABELS, max_length=5)[0]
    assert cut["labels"] == [-100, 1, 0, 3, -100]  # "." is cut off: no label for it
    bad = Dataset.from_dict({"tokens": [["John"]], "ner_tags": [["B-PERSON"]]})
    with pytest.raises(ValueError, match="B-PERSON"):
        ner.tokenize_and_align(bad, wp_tokenizer, LABELS)


def test_collator_pads_labels_with_minus_100(wp_tokenizer):
    data = ner.tokenize_and_align(make_ner_dataset(4), wp_tokenizer, LABELS)
    features = [{k: row[k] for k in ("input_ids", "attention_mask", "labels")} for row in data]
    batch = ner.ner_collator(wp_tokenizer)(features)
    longest = max(len(f["input_ids"]) for f in features)
    assert batch["labels"].shape == (4, longest)
    for row, feature in zip(batch["labels"], features, strict=True):
        assert row[len(feature["labels"]) :].eq(-100).all()


# ------------------------------------------------------------------ scores and baseline


def test_entity_scores_hand_computed():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    s = ner.entity_scores(true, pred)
    # gold: PER, LOC, ORG; predicted: PER (right), ORG (wrong type), ORG (right)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(5 / 6)
    assert s["f1_PER"] == 1.0 and s["f1_LOC"] == 0.0 and s["support_LOC"] == 1
    assert s["precision_ORG"] == pytest.approx(0.5) and s["recall_ORG"] == 1.0
    assert ner.entity_scores([["O", "O"]], [["O", "O"]]) == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0
    }  # fmt: skip
    # a wrong boundary is a miss: half an entity earns nothing
    assert ner.entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_entity_scores_default_vs_strict_mode():
    true = [["B-PER", "I-PER", "O"]]
    pred = [["I-PER", "I-PER", "O"]]  # IOB1-style opening: conlleval accepts it, IOB2 does not
    assert ner.entity_scores(true, pred)["f1"] == 1.0
    assert ner.entity_scores(true, pred, mode="strict")["f1"] == 0.0
    with pytest.raises(ValueError, match="lengths"):
        ner.entity_scores(true, [["O"]])


def test_compute_metrics_and_tags_by_word():
    labels = np.array([[-100, 1, 2, -100, 0, -100], [-100, 3, 0, -100, -100, -100]])
    logits = np.zeros((2, 6, len(LABELS)))
    for row, tags in enumerate([[0, 1, 2, 2, 0, 0], [0, 3, 4, 0, 0, 0]]):
        logits[row, np.arange(6), tags] = 5.0
    metrics = ner.ner_compute_metrics(LABELS)(EvalPrediction(logits, labels))
    # sentence 1 words: B-PER I-PER O (right); sentence 2: B-LOC O predicted B-LOC I-LOC (wrong)
    assert metrics["f1_PER"] == 1.0 and metrics["f1_LOC"] == 0.0
    assert metrics["precision"] == pytest.approx(0.5)
    word_ids = [[-1, 0, 1, 1, 2, -1], [-1, 0, 1, -1, -1, -1]]
    assert ner.tags_by_word(logits, word_ids, [3, 3], LABELS) == [
        ["B-PER", "I-PER", "O"],
        ["B-LOC", "I-LOC", "O"],  # the third word was truncated away: O
    ]


def test_most_frequent_tag_baseline():
    train_words = [["Paris", "Hilton", "visited", "Paris"], ["Paris", "is", "big"]]
    train_tags = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "O"]]
    baseline = ner.MostFrequentTag.fit(train_words, train_tags)
    assert baseline.table["Paris"] == "B-LOC"  # 2 of 3
    assert baseline.predict([["Paris", "Hilton", "paris", "Rome"]]) == [
        ["B-LOC", "I-PER", "O", "O"]  # case-sensitive; unseen words are O
    ]
    tie = ner.MostFrequentTag.fit([["x", "x"]], [["B-ORG", "B-LOC"]])
    assert tie.table["x"] == "B-ORG"


# ------------------------------------------------------------------ entities with spans


def lookup_model(tokenizer, token_labels: dict[str, str]):
    """A 0-layer token classifier whose prediction for a token is fixed by `token_labels`."""
    model = build_tiny_token_classifier(tokenizer, layers=0)
    emb = model.bert.embeddings
    with torch.no_grad():
        emb.word_embeddings.weight.zero_()
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        for token in tokenizer.get_vocab():
            label = token_labels.get(token, "O")
            emb.word_embeddings.weight[
                tokenizer.convert_tokens_to_ids(token), LABELS.index(label)
            ] = 10
        model.classifier.weight.zero_()
        model.classifier.weight[:, : len(LABELS)] = torch.eye(len(LABELS))
        model.classifier.bias.zero_()
    return model.eval()


def test_predict_entities_character_spans(wp_tokenizer):
    model = lookup_model(
        wp_tokenizer,
        # "##ton" says O: a continuation piece's prediction must not matter
        {"john": "B-PER", "smith": "I-PER", "jose": "B-PER", "bos": "B-LOC", "##ton": "O",
         "acme": "B-ORG", "corp": "I-ORG", "##s": "B-PER", "maria": "B-PER"},
    )  # fmt: skip
    text = "Yesterday JOHN  Smith met Jose\u0301 Maria in Boston, then Acme Corps."
    [found] = ner.predict_entities(model, wp_tokenizer, [text])
    assert [(e["type"], e["text"]) for e in found] == [
        ("PER", "JOHN  Smith"),
        ("PER", "Jose\u0301"),  # the combining accent stays with its word
        ("PER", "Maria"),  # B-PER after B-PER: a second entity
        ("LOC", "Boston"),
        ("ORG", "Acme Corps"),
    ]
    for entity in found:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert 0 < entity["score"] <= 1
    assert ner.predict_entities(model, wp_tokenizer, ["met in paris", text])[1] == found


# ------------------------------------------------------------------ training


def _quick_config(**kw):
    from course_utils.training import TrainConfig

    base = dict(
        num_epochs=4, batch_size=8, lr=5e-3, progress=False, max_length=32, warmup_ratio=0.0
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def ner_data(wp_tokenizer):
    train = ner.tokenize_and_align(make_ner_dataset(64, seed=0), wp_tokenizer, LABELS)
    val = ner.tokenize_and_align(make_ner_dataset(32, seed=1), wp_tokenizer, LABELS)
    return train, val


def test_token_classifier_learns_with_train(wp_tokenizer, ner_data):
    from course_utils.training import predict, train

    train_ds, val_ds = ner_data
    model = build_tiny_token_classifier(wp_tokenizer)
    gold = [[LABELS[i] for i in row] for row in val_ds["ner_tags"]]
    n_words = [len(t) for t in val_ds["tokens"]]

    def word_f1() -> float:
        tags = ner.tags_by_word(
            predict(model, val_ds, wp_tokenizer), val_ds["word_ids"], n_words, LABELS
        )
        return ner.entity_scores(gold, tags)["f1"]

    f1_before = word_f1()
    history = train(
        model, train_ds, val_ds, _quick_config(), wp_tokenizer, ner.ner_compute_metrics(LABELS),
        data_collator=ner.ner_collator(wp_tokenizer),
    )  # fmt: skip
    assert history.evals[-1]["loss"] < 0.5 * history.evals[0]["loss"]
    assert history.evals[-1]["f1"] > 0.9 > f1_before + 0.5
    # per word from predict == per labelled position in the loop (first pieces, no truncation)
    assert word_f1() == pytest.approx(history.evals[-1]["f1"])
    found = ner.predict_entities(model, wp_tokenizer, ["Yesterday, Maria visited Boston."])[0]
    assert [(e["type"], e["text"]) for e in found] == [("PER", "Maria"), ("LOC", "Boston")]


def test_token_classifier_learns_with_trainer(wp_tokenizer, ner_data, tmp_path):
    from course_utils.training import make_trainer

    train_ds, val_ds = ner_data
    model = build_tiny_token_classifier(wp_tokenizer)
    trainer = make_trainer(
        model, train_ds, val_ds, _quick_config(output_dir=tmp_path), wp_tokenizer,
        ner.ner_compute_metrics(LABELS),
    )  # fmt: skip
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < 0.5 * before["eval_loss"]
    assert after["eval_f1"] > 0.9 > before["eval_f1"]


@pytest.mark.assets
def test_alignment_and_spans_with_minilm():
    from datasets import Dataset

    from course_utils.models import load_token_classifier

    model, tokenizer = load_token_classifier("minilm", labels=LABELS, device="cpu")
    words = ["Schwarzenegger", "visited", "São", "Paulo", "and", "Xi'an", "."]
    tags = ["B-PER", "O", "B-LOC", "I-LOC", "O", "B-LOC", "O"]
    data = Dataset.from_dict({"tokens": [words], "ner_tags": [tags]})
    row = ner.tokenize_and_align(data, tokenizer, LABELS)[0]
    first_pieces = [label for label in row["labels"] if label != -100]
    assert [LABELS[i] for i in first_pieces] == tags  # one label per word, in order
    assert len(row["input_ids"]) > len(words) + 2  # some words really are split
    text = "Yesterday Arnold Schwarzenegger visited São Paulo, and then Xi'an."
    with torch.no_grad():  # every word predicted as B-PER: each word becomes one entity
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0] + [0.0] * (len(LABELS) - 2)))
    [found] = ner.predict_entities(model, tokenizer, [text])
    assert [e["text"] for e in found] == [
        "Yesterday", "Arnold", "Schwarzenegger", "visited", "São", "Paulo", ",", "and", "then",
        "Xi", "'", "an", ".",
    ]  # fmt: skip
