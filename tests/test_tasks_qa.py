"""Tests of `course_utils.tasks.qa` (extractive question answering)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils.tasks import qa

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = "the a report said that it was late and rain fell on market day we saw".split()
CITIES = ["paris", "london", "rome", "bos", "oslo"]  # "boston" -> bos ##ton
QUESTION = "which city is in the text ?"


@pytest.fixture(scope="module")
def qa_tokenizer():
    from transformers import BertTokenizer

    vocab = SPECIAL + sorted(set(FILLER + CITIES + QUESTION.split() + [".", "##ton"]))
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def make_qa_dataset(n: int, seed: int = 0, min_words: int = 6, max_words: int = 40):
    """SQuAD-format examples: one city hidden among filler words; the question asks for it."""
    from datasets import Dataset

    rng = random.Random(seed)
    rows = {"id": [], "question": [], "context": [], "answers": []}
    for i in range(n):
        words = rng.choices(FILLER, k=rng.randint(min_words, max_words))
        city = rng.choice(["Paris", "London", "Rome", "Boston", "Oslo"])
        at = rng.randint(0, len(words))
        context = " ".join(words[:at] + [city] + words[at:]) + " ."
        start = len(" ".join(words[:at])) + (1 if at else 0)
        assert context[start : start + len(city)] == city
        rows["id"].append(f"q{i}")
        rows["question"].append(QUESTION)
        rows["context"].append(context)
        rows["answers"].append({"text": [city], "answer_start": [start]})
    return Dataset.from_dict(rows)


def build_tiny_qa_model(tokenizer, seed: int = 0):
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForQuestionAnswering(config)


# ------------------------------------------------------------------ SQuAD scores


def test_normalize_answer_official_rules():
    assert qa.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert qa.normalize_answer("An apple, a day.") == "apple day"
    assert qa.normalize_answer("Theatre anthem") == "theatre anthem"  # whole words only
    assert qa.normalize_answer("U.S. $5,000") == "us 5000"
    assert qa.normalize_answer("  \t") == ""


def test_exact_match_and_f1_golden_cases():
    golds = ["Denver Broncos", "The Denver Broncos"]
    assert qa.exact_match("the denver broncos.", golds) == 1.0
    assert qa.exact_match("Broncos", golds) == 0.0
    # 2 shared tokens: precision 2/3, recall 1 -> F1 0.8
    assert qa.token_f1("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    # the best gold answer counts
    assert qa.token_f1("Broncos", ["Carolina Panthers", "Broncos"]) == 1.0
    # repeated tokens are matched at most as often as they occur in the gold answer
    assert qa.token_f1("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert qa.token_f1("Panthers", "Denver Broncos") == 0.0
    # empty answers (SQuAD 2.0 rule): only an empty prediction matches an empty gold
    assert qa.token_f1("", "") == 1.0 and qa.token_f1("the", "a") == 1.0
    assert qa.token_f1("Broncos", "") == 0.0
    scores = qa.squad_scores(["Denver Broncos", "Broncos won"], [golds, ["Broncos"]])
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="references"):
        qa.squad_scores(["x"], [])
    with pytest.raises(ValueError, match="gold"):
        qa.exact_match("x", [])


# ------------------------------------------------------------------ features


def test_tokenize_qa_windows_positions_and_offsets(qa_tokenizer):
    examples = make_qa_dataset(20, seed=3, min_words=30, max_words=40)
    features = qa.tokenize_qa(examples, qa_tokenizer, max_length=24, stride=8)
    assert len(features) > len(examples)  # long contexts give several windows
    assert set(features["example_id"]) == set(examples["id"])
    found = set()
    for f in features:
        example = examples[int(f["example_id"][1:])]
        context, answer = example["context"], example["answers"]["text"][0]
        sequence_ids = qa_tokenizer(example["question"], context)  # only to count the question
        n_question = sequence_ids["input_ids"].index(qa_tokenizer.sep_token_id) + 1
        offsets = f["offset_mapping"]
        assert all(o is None for o in offsets[:n_question]) and offsets[-1] is None
        assert all(o is not None for o in offsets[n_question:-1])
        s, e = f["start_positions"], f["end_positions"]
        if s == 0:
            assert e == 0  # the answer is not (entirely) in this window
            start = example["answers"]["answer_start"][0]
            window = (offsets[n_question][0], offsets[-2][1])
            assert not (window[0] <= start and start + len(answer) <= window[1])
        else:
            assert context[offsets[s][0] : offsets[e][1]] == answer
            found.add(f["example_id"])
    assert found == set(examples["id"])  # every answer lies wholly in some window
    # neighbouring windows of one example share `stride` context tokens
    first, second = features[0], features[1]
    assert first["example_id"] == second["example_id"]

    def context_ids(feature):
        pairs = zip(feature["input_ids"], feature["offset_mapping"], strict=True)
        return [token for token, offsets in pairs if offsets is not None]

    assert context_ids(first)[-8:] == context_ids(second)[:8]


def test_tokenize_qa_without_answers_or_ids(qa_tokenizer):
    from datasets import Dataset

    data = Dataset.from_dict({"question": ["which city ?"], "context": ["rain fell on rome ."]})
    features = qa.tokenize_qa(data, qa_tokenizer)
    assert "start_positions" not in features.column_names
    assert features["example_id"] == ["0"]


# ------------------------------------------------------------------ decoding


def _features(offsets_per_feature, example_ids):
    from datasets import Dataset

    return Dataset.from_dict({"example_id": example_ids, "offset_mapping": offsets_per_feature})


def test_postprocess_picks_best_valid_span():
    from datasets import Dataset

    context = "alpha beta gamma delta"
    examples = Dataset.from_dict({"id": ["a", "b"], "context": [context, context]})
    # tokens: [CLS] q [SEP] alpha beta gamma delta [SEP] (offsets None outside the context)
    offs = [None, None, None, [0, 5], [6, 10], [11, 16], [17, 22], None]
    features = _features([offs, offs, offs], ["a", "a", "b"])
    start = np.full((3, 10), -5.0)  # 10 > 8 tokens: padding columns, as predict returns
    end = np.full((3, 10), -5.0)
    start[0, 0] = end[0, 0] = 50  # [CLS]: never an answer
    start[0, 9] = end[0, 9] = 50  # padding: never an answer
    start[0, 6], end[0, 4] = 9, 9  # end before start: invalid
    start[0, 3], end[0, 4] = 3, 3  # "alpha beta", score 6
    start[1, 5], end[1, 5] = 4, 4  # second window of "a": "gamma", score 8 -> best of a
    start[2], end[2] = -50.0, -50.0
    start[2, 3], end[2, 6] = 9, 9  # "b": the best pair spans 4 tokens > max_answer_length 3
    start[2, 5], end[2, 5] = 0, 1  # so "alpha beta gamma" (9 + 1) beats "gamma delta" (0 + 9)
    out = qa.postprocess(examples, features, start, end, n_best=5, max_answer_length=3)
    assert [o["answer"] for o in out] == ["gamma", "alpha beta gamma"]
    assert out[0]["start"] == 11 and out[0]["score"] == pytest.approx(8.0)
    longer = qa.postprocess(examples, features, start, end, n_best=5, max_answer_length=4)
    assert longer[1]["answer"] == context
    # an example without features (or without context tokens) gets the empty answer
    none = qa.postprocess(examples, features.select([0, 1]), start[:2], end[:2])
    assert none[1] == {"id": "b", "answer": "", "start": -1, "score": float("-inf")}


# ------------------------------------------------------------------ baseline


def test_overlap_baseline_rule():
    context = (
        "Rain fell all day in the north. The new bridge over the river was opened by "
        "Mayor Anna Berg in 1998, officials said."
    )
    out = qa.overlap_baseline("Who opened the new bridge over the river?", context, window=12)
    # best window: words 3-14 ("day ... opened"); "north" and "Mayor Anna Berg" are both one
    # word from a keyword; the run after the keyword wins the tie
    assert out["answer"] == "Mayor Anna Berg"
    assert context[out["start"] : out["start"] + len(out["answer"])] == out["answer"]
    # a run before the keywords, cut to the words nearest them
    out = qa.overlap_baseline("Which river?", "Big wide old brown river.", max_answer_words=2)
    assert out["answer"] == "old brown"
    # a keyword but no other content word; no keyword at all
    assert qa.overlap_baseline("what river", "the river", 5) == {"answer": "", "start": -1}
    assert qa.overlap_baseline("Who won?", "Anna Berg smiled.", 5)["answer"] == ""
    assert qa.overlap_baseline("Who?", "", 5) == {"answer": "", "start": -1}


# ------------------------------------------------------------------ training


def _quick_config(**kw):
    from course_utils.training import TrainConfig

    base = dict(
        num_epochs=4, batch_size=8, lr=5e-3, progress=False, max_length=None, warmup_ratio=0.0
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def qa_data(qa_tokenizer):
    train_examples, val_examples = make_qa_dataset(64, seed=0), make_qa_dataset(32, seed=1)
    kw = dict(max_length=32, stride=8)
    return (
        qa.tokenize_qa(train_examples, qa_tokenizer, **kw),
        val_examples,
        qa.tokenize_qa(val_examples, qa_tokenizer, **kw),
    )


def test_qa_model_learns_with_train(qa_tokenizer, qa_data):
    from course_utils.training import train

    train_features, val_examples, val_features = qa_data
    model = build_tiny_qa_model(qa_tokenizer)
    metrics = qa.qa_compute_metrics(val_examples, val_features, max_answer_length=5)
    before = metrics(_eval_prediction(model, val_features, qa_tokenizer))
    history = train(model, train_features, val_features, _quick_config(), qa_tokenizer, metrics)
    assert history.evals[-1]["loss"] < 0.5 * history.evals[0]["loss"]
    assert history.evals[-1]["exact_match"] > before["exact_match"] + 40
    answers = qa.answer_questions(
        model, qa_tokenizer, val_examples["question"][:8], val_examples["context"][:8],
        max_length=32, stride=8, max_answer_length=5,
    )  # fmt: skip
    golds = [a["text"][0] for a in val_examples["answers"][:8]]
    assert qa.squad_scores([a["answer"] for a in answers], golds)["exact_match"] >= 75


def _eval_prediction(model, features, tokenizer):
    from transformers import EvalPrediction

    from course_utils.training import predict

    start, end = predict(model, features, tokenizer)[:2]
    return EvalPrediction(predictions=(start, end), label_ids=None)


def test_qa_model_learns_with_trainer(qa_tokenizer, qa_data, tmp_path):
    from course_utils.training import make_trainer

    train_features, val_examples, val_features = qa_data
    model = build_tiny_qa_model(qa_tokenizer)
    trainer = make_trainer(
        model, train_features, val_features, _quick_config(output_dir=tmp_path), qa_tokenizer,
        qa.qa_compute_metrics(val_examples, val_features, max_answer_length=5),
    )  # fmt: skip
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < 0.5 * before["eval_loss"]
    assert after["eval_exact_match"] > before["eval_exact_match"] + 40


@pytest.mark.assets
def test_tokenize_qa_with_minilm_tokenizer():
    from datasets import Dataset

    from course_utils.models import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    sentence = "The committee met in Geneva on Tuesday, officials said. "
    context = (
        sentence * 12
        + "The agreement was signed by Åsa Lindqvist-Berg in São Paulo. "
        + sentence * 12
    )
    answer = "Åsa Lindqvist-Berg"
    examples = Dataset.from_dict(
        {"question": ["Who signed the agreement?"], "context": [context],
         "answers": [{"text": [answer], "answer_start": [context.index(answer)]}]}
    )  # fmt: skip
    features = qa.tokenize_qa(examples, tokenizer, max_length=64, stride=16)
    assert len(features) > 3
    hits = [f for f in features if f["start_positions"] > 0]
    assert hits
    for f in hits:  # uncased, accent-stripping WordPiece: the offsets still give the exact text
        s, e = f["start_positions"], f["end_positions"]
        assert context[f["offset_mapping"][s][0] : f["offset_mapping"][e][1]] == answer


def test_tokenize_qa_fingerprint_follows_its_settings(qa_tokenizer):
    """The features' fingerprint is computed from the settings (not by pickling the tokenizer):
    the same settings give the same fingerprint, another stride another one."""
    examples = make_qa_dataset(20, seed=3, min_words=30, max_words=40)
    first = qa.tokenize_qa(examples, qa_tokenizer, max_length=24, stride=8)
    again = qa.tokenize_qa(examples, qa_tokenizer, max_length=24, stride=8)
    other = qa.tokenize_qa(examples, qa_tokenizer, max_length=24, stride=4)
    assert first._fingerprint == again._fingerprint != other._fingerprint
    assert first["input_ids"] == again["input_ids"]
