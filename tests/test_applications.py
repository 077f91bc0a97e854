"""Chapter 7's data loaders and measuring tools (course_utils.applications)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_utils import applications as app
from course_utils.data import DataFormatError


@pytest.fixture(scope="module")
def qa_sets():
    return app.load_conll_qa()


@pytest.mark.assets
def test_qa_set_sizes_splits_and_spans(qa_sets):
    assert {k: v.num_rows for k, v in qa_sets.items()} == {
        "train": 221,
        "validation": 48,
        "test": 164,
    }
    documents = {name: set(split["document"]) for name, split in qa_sets.items()}
    assert not documents["train"] & documents["test"]
    assert not documents["validation"] & (documents["train"] | documents["test"])
    assert all(d.startswith("test-") for d in documents["test"])
    for split in qa_sets.values():
        for row in split:
            text, start = row["answers"]["text"][0], row["answers"]["answer_start"][0]
            assert row["context"][start : start + len(text)] == text
        assert set(split["type"]) <= set(app.QA_TYPES)
    assert len(set(qa_sets["test"]["type"])) >= 5  # varied question types


@pytest.mark.assets
def test_a_wrong_offset_is_refused(tmp_path):
    row = json.loads((app.DATA_DIR / "conll_qa.jsonl").read_text().splitlines()[0])
    row["answer_start"] += 1
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataFormatError, match="is not at offset"):
        app.load_conll_qa(path)


def test_conll_context_rejects_unknown_documents():
    documents = {"test": [[[("A", "x", "x", "O")], [("B", "x", "x", "O")]]]}
    assert app.conll_context(documents, "test-0", 0, 2) == "A B"
    with pytest.raises(DataFormatError, match="unknown CoNLL document"):
        app.conll_context(documents, "dev-0", 0, 1)
    with pytest.raises(DataFormatError, match="outside"):
        app.conll_context(documents, "test-0", 1, 3)


def test_memory_conversation_and_mentions():
    memory, fillers = app.load_chat_memory()
    assert memory.num_rows == 30 and fillers.num_rows == 12
    row, fillers = memory[0], list(fillers)
    chat = app.memory_conversation(row, fillers, 2, offset=11)
    assert [m["role"] for m in chat] == ["user", "assistant"] * 3 + ["user"]
    assert chat[0]["content"] == row["fact"] and chat[-1]["content"] == row["question"]
    assert chat[2]["content"] == fillers[11]["user"] and chat[4]["content"] == fillers[0]["user"]
    control = app.memory_conversation(row, fillers, 0, with_fact=False)
    assert row["fact"] not in [m["content"] for m in control] and len(control) == 3
    with pytest.raises(ValueError, match="n_fillers"):
        app.memory_conversation(row, fillers, 13)
    assert app.mentions("Peanuts, I think.", ["peanut"])
    assert not app.mentions("I drink water instead", ["tea"])
    assert app.mentions("Your name is LENA.", ["Lena"])
    # no accepted answer can be found in a history that lacks the fact
    history = " ".join(f["user"] + " " + f["assistant"] for f in fillers) + " ".join(
        app.NEUTRAL_OPENING
    )
    for r in memory:
        assert not app.mentions(f"{history} {r['reply']} {r['question']}", r["answers"]), r["id"]


@pytest.mark.assets
def test_unk_share_of_the_course_tokenizers():
    from course_utils.models import load_tokenizer

    encoder, decoder = load_tokenizer("minilm"), load_tokenizer("smollm2")
    assert app.unk_share(encoder, ["the cat sat on the mat"]) == 0.0
    assert app.unk_share(encoder, ["搞笑"]) == 1.0  # neither character is in MiniLM's vocabulary
    assert app.unk_share(decoder, ["搞笑, 我不知道"]) == 0.0  # byte-level: nothing unknown
    with pytest.raises(ValueError, match="no tokens"):
        app.unk_share(encoder, [""])


def test_wilson_interval_known_values():
    low, high = app.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert app.wilson_interval(0, 30)[0] == 0.0 and app.wilson_interval(30, 30)[1] == 1.0
    with pytest.raises(ValueError):
        app.wilson_interval(1, 0)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=40), rng.normal(size=4000)
    lo_s, hi_s = app.bootstrap_interval(lambda i: small[i].mean(), len(small), 400)
    lo_l, hi_l = app.bootstrap_interval(lambda i: large[i].mean(), len(large), 400)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 5
    assert app.bootstrap_interval(lambda i: 1.0, 10, 20) == (1.0, 1.0)


def test_lead_words():
    assert app.lead_words("Japan beat Syria 2-1 on Friday .", 3) == "Japan beat Syria"
    assert app.lead_words("short", 10) == "short"
