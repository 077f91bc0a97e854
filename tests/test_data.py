"""Data sets: fixed splits, labels from ratings, and schema errors that say where and how to fix."""

from __future__ import annotations

import json

import pytest

from course_utils import data
from course_utils.data import DataFormatError, Field

SCHEMA = {
    "text": Field(str),
    "label": Field(str, choices=("positive", "negative")),
    "note": Field(str, required=False),
}


def write_jsonl(path, rows):
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
        )
    )
    return path


def test_split_of_golden_values():
    """The exact assignment is part of the course's contract: same split on every machine.

    These values were computed once (SHA-256 of "seed:key"); if they change, every stored result
    of every chapter changes with them.
    """
    assert [data.split_of(f"movies-{i}") for i in range(1, 13)] == (
        ["train"] * 9 + ["test"] + ["train"] * 2
    )
    assert [data.split_of("the film is great", seed=s) for s in range(8)] == [
        "train", "train", "train", "validation", "test", "train", "train", "train",
    ]  # fmt: skip
    counts = {s: 0 for s in data.SPLIT_FRACTIONS}
    for i in range(10_000):
        counts[data.split_of(str(i))] += 1
    assert counts == {"train": 8036, "validation": 966, "test": 998}


def test_normalize_text():
    text = "  Ｈｅｌｌｏ,   WORLD!! It's   $5 —  ok？ 你好，世界。"
    assert data.normalize_text(text) == "hello world it s 5 ok 你好 世界"
    assert data.normalize_text("A  film.") == data.normalize_text("a film")
    assert data.normalize_text("!!!") == ""
    assert data.normalize_text("ﬁne “quotes” … ½") == "fine quotes 1 2"  # NFKC: ﬁ -> fi, ½ -> 1⁄2


def test_group_keys_join_rows_that_share_any_side():
    rows = [
        {"zh": "你好。", "en": "Hello."},
        {"zh": "您好！", "en": "hello"},  # same English as row 0
        {"zh": "你好", "en": "Hi!"},  # same Chinese as row 0
        {"zh": "再见", "en": "Goodbye"},
    ]
    keys = data.group_keys(rows, ["zh", "en"])
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert data.group_keys(rows, ["zh"])[1] != keys[0]


def test_deduplicate_keeps_first_and_drops_conflicts():
    rows = [
        {"id": "a", "text": "Great film!", "label": 1},
        {"id": "b", "text": "great film", "label": 1},  # a copy
        {"id": "c", "text": "So-so.", "label": 1},
        {"id": "d", "text": "so so", "label": 0},  # the same text, the other label
        {"id": "e", "text": "...", "label": 0},  # nothing left after normalisation
        {"id": "f", "text": "Dull.", "label": 0},
    ]
    assert [r["id"] for r in data.deduplicate(rows)] == ["a", "f"]


def test_split_rows_are_shuffled_deterministically_and_never_share_a_text():
    """Rows sorted by label (as the source files are) come out of every split mixed."""
    rows = [
        {"id": f"r{i}", "text": f"review number {i}", "label": int(i < 500)} for i in range(1000)
    ]
    rows += [{"id": "copy", "text": "Review number 7!", "label": 1}]  # a copy of r7
    splits = data._split(rows, seed=0)
    assert sum(len(v) for v in splits.values()) == len(rows)
    train = [r["label"] for r in splits["train"]]
    assert train != sorted(train, reverse=True) and 0.4 < sum(train[:100]) / 100 < 0.6
    assert splits == data._split(rows, seed=0)
    assert [r["id"] for r in data._split(rows, seed=1)["train"]] != [
        r["id"] for r in splits["train"]
    ]
    where = {r["id"]: name for name, part in splits.items() for r in part}
    assert where["copy"] == where["r7"]


def test_to_iob2():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
    assert data.to_iob2(iob1) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert data.to_iob2(iob2) == iob2


def test_detokenize():
    tokens = [
        "U.S.",
        "'s",
        "firm",
        "(",
        "Kingston",
        ")",
        "paid",
        "$",
        "900",
        "million",
        ",",
        "he",
        "said",
        ".",
    ]
    assert data.detokenize(tokens) == "U.S.'s firm (Kingston) paid $900 million, he said."
    assert data.detokenize(["It", "does", "n't", "work", "!"]) == "It doesn't work!"


def test_read_conll_documents_and_errors(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
        "BRUSSELS NNP B-NP B-LOC\n\n-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\n"
    )
    docs = data.read_conll(path)
    assert [len(d) for d in docs] == [2, 1]
    assert docs[0][0] == [("EU", "NNP", "B-NP", "B-ORG"), ("rejects", "VBZ", "B-VP", "O")]
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-ORG\n")
    with pytest.raises(DataFormatError, match=r"tiny.txt:3: expected 'token POS chunk NER'"):
        data.read_conll(path)


def test_hsk_stand_in_translations_are_not_translations():
    assert data.is_translation("This road is closed.")
    for stand_in in ["placeholder", "Placeholder-p3", "PH", "", "The exam is近; prepare well."]:
        assert not data.is_translation(stand_in)


def test_unknown_word_similarity_set():
    with pytest.raises(ValueError, match="simlex999"):
        data.load_word_similarity("men3000")


def test_jsonl_valid_file_loads(tmp_path):
    path = write_jsonl(
        tmp_path / "ok.jsonl",
        [
            {"text": "great", "label": "positive"},
            {"text": "dull", "label": "negative", "note": "short"},
        ],
    )
    ds = data.load_jsonl(path, SCHEMA)
    assert ds.num_rows == 2 and ds[0]["label"] == "positive"
    # an optional field missing from the first row is still a column
    assert ds.column_names == ["text", "label", "note"]
    assert ds["note"][:] == [None, "short"]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"txt": "great", "label": "positive"}], r"bad.jsonl:1: unknown field\(s\) \['txt'\]"),
        (
            [{"text": "great", "label": "positive"}, {"text": "meh", "label": "neutral"}],
            r"bad.jsonl:2: unknown label 'neutral'.*allowed",
        ),
        ([{"label": "positive"}], r"bad.jsonl:1: missing field 'text'"),
        ([{"text": 3, "label": "positive"}], r"bad.jsonl:1: field 'text' should be str"),
        (['{"text": "great", "label": "positive"'], r"bad.jsonl:1: invalid JSON"),
        (['["great", "positive"]'], r"bad.jsonl:1: expected a JSON object"),
        ([], r"bad.jsonl: the file is empty"),
    ],
)
def test_jsonl_errors_name_file_line_and_fix(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataFormatError, match=message):
        data.load_jsonl(path, SCHEMA)


def test_jsonl_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        data.load_jsonl(tmp_path / "nope.jsonl", SCHEMA)


@pytest.mark.assets
def test_movie_reviews_splits_and_labels():
    ds = data.load_movie_reviews()
    assert list(ds) == ["train", "validation", "test"]
    sizes = {k: v.num_rows for k, v in ds.items()}
    assert sizes == {
        "train": 8003,
        "validation": 1045,
        "test": 1022,
    }  # fixed: same on every machine
    ids = [set(ds[s]["id"]) for s in ds]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    train = ds["train"].to_pandas()
    assert (train["rating"].abs() >= data.MIN_ABS_RATING).all()
    assert ((train["rating"] > 0) == (train["label"] == 1)).all()
    assert 0.45 < train["label"].mean() < 0.55
    assert 0.35 < train["label"][:100].mean() < 0.65  # shuffled: the first rows are a sample
    assert ds["train"].features["label"].names == ["negative", "positive"]
    assert ds["test"]["id"] == data.load_movie_reviews()["test"]["id"]  # a fixed order


@pytest.mark.assets
def test_other_sets():
    ood = data.load_ood_sets()
    assert {k: v.num_rows for k, v in ood.items()} == {"amazon": 2967, "nyt": 2931, "tweets": 3278}
    zh = data.load_chinese_reviews()
    assert {k: v.num_rows for k, v in zh.items()} == {
        "train": 13713,
        "validation": 1831,
        "test": 1776,
    }
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh["test"][0]["text"])
    small = data.load_chinese_reviews(max_per_class=100)
    assert sum(v.num_rows for v in small.values()) == 200


def _texts(ds, column):
    return {data.normalize_text(t) for t in ds[column]}


def _split_sets():
    """(name, DatasetDict, columns): every data set the course splits, by the columns it compares."""
    return [
        ("movies", data.load_movie_reviews(), ["text"]),
        ("movies seed 1", data.load_movie_reviews(seed=1), ["text"]),
        ("chinese reviews", data.load_chinese_reviews(), ["text"]),
        ("hsk pairs", data.load_hsk_pairs(), ["chinese", "english"]),
        ("conll headlines", data.load_conll_headlines(), ["headline", "body"]),
    ]


@pytest.mark.assets
def test_no_normalised_text_is_in_two_splits():
    """No leakage: a text (after normalize_text) never appears in two splits of any data set."""
    for name, ds, columns in _split_sets():
        for column in columns:
            seen: dict[str, str] = {}
            for split, part in ds.items():
                for text in _texts(part, column):
                    assert seen.setdefault(text, split) == split, (
                        f"{name}: {text!r} in {seen[text]} and {split}"
                    )
    # the out-of-domain test sets share no text with the movie reviews' training split
    movies_train = _texts(data.load_movie_reviews()["train"], "text")
    for source, part in data.load_ood_sets().items():
        assert not movies_train & _texts(part, "text"), source


@pytest.mark.assets
def test_conll2003_official_split_and_its_known_overlap():
    ds = data.load_conll2003()
    assert {k: v.num_rows for k, v in ds.items()} == {
        "train": 14041,
        "validation": 3250,
        "test": 3453,
    }
    assert ds["train"].features["ner_tags"].feature.names == data.NER_TAGS
    # the files are IOB2 already: converting changes no tag
    raw = [
        t[3]
        for doc in data.read_conll(data.asset_path("conll2003") / "train.txt")
        for s in doc
        for t in s
    ]
    assert data.to_iob2(raw) == raw
    names = ds["train"].features["ner_tags"].feature.names
    tags = [names[t] for row in ds["train"] for t in row["ner_tags"]]
    assert sum(t.startswith("B-") for t in tags) == 23_499
    assert {t[2:] for t in tags if t != "O"} == {"PER", "ORG", "LOC", "MISC"}
    assert len({row["document"] for row in ds["test"]}) == 231
    # the official split is kept; its cross-split repeats are short boilerplate lines (data/README.md)
    train = _texts(ds["train"].map(lambda r: {"text": " ".join(r["tokens"])}), "text")
    test = ds["test"].map(lambda r: {"text": data.normalize_text(" ".join(r["tokens"]))})
    repeated = [t for t in test["text"] if t in train]
    assert len(repeated) == 149 and max(len(t.split()) for t in repeated) <= 10


@pytest.mark.assets
def test_conll_headlines():
    every = data.load_conll_headlines(unique_headlines=False)
    assert {k: v.num_rows for k, v in every.items()} == {
        "train": 946,
        "validation": 216,
        "test": 231,
    }
    ds = data.load_conll_headlines()
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 857, "validation": 201, "test": 218}
    for part in ds.values():
        assert all(part["body"]) and all(part["headline"])
        assert all(data._DATELINE.search(d) for d in part["dateline"] if d)
    first = {r["document"]: r for r in every["train"]}[0]
    assert first["headline"] == "EU rejects German call to boycott British lamb."
    assert first["dateline"] == "BRUSSELS 1996-08-22" and first["body"].startswith(
        "The European Commission"
    )


@pytest.mark.assets
def test_similarity_ratings_verified():
    import numpy as np

    lee = data.load_lee_similarity()
    assert {k: v.num_rows for k, v in lee.items()} == {
        "documents": 50,
        "pairs": 1225,
        "background": 300,
    }
    sims = np.array(lee["pairs"]["similarity"])
    assert 0.2 <= sims.min() and sims.max() <= 1.0 and round(float(sims.mean()), 3) == 0.327
    matrix = np.loadtxt(data.asset_path("similarity") / "similarities0-1.txt")
    assert matrix.shape == (50, 50) and (np.diag(matrix) == 1).all()
    assert (np.tril(matrix, -1) == 0).all()  # stored as an upper triangle, not symmetric
    assert sum("£3,000" in t for t in lee["documents"]["text"]) == 1  # read as latin-1
    for name, n, top in [("wordsim353", 353, 10.0), ("simlex999", 999, 9.8)]:
        words = data.load_word_similarity(name)
        assert words.num_rows == n and 0 <= min(words["score"]) and max(words["score"]) == top


@pytest.mark.assets
def test_hsk_pairs():
    ds = data.load_hsk_pairs()
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 3438, "validation": 411, "test": 421}
    for part in ds.values():
        assert set(part["hsk_level"]) == set(data.HSK_LEVELS)
        assert all(data.is_translation(e) for e in part["english"])
        assert all(data._CJK.search(z) for z in part["chinese"])


def test_authored_data_files_validate():
    """Every authored set in data/ has a registered schema and passes it."""
    files = sorted(p.name for p in data.DATA_DIR.glob("*.jsonl"))
    assert files == sorted(data.AUTHORED_SCHEMAS), "register each data/*.jsonl in AUTHORED_SCHEMAS"
    for name, schema in data.AUTHORED_SCHEMAS.items():
        assert data.load_jsonl(data.DATA_DIR / name, schema).num_rows > 0


def test_glossary_is_bilingual_and_unique():
    glossary = data.load_glossary()
    assert glossary.num_rows >= 25
    assert len(set(glossary["en"])) == glossary.num_rows
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in zh) for zh in glossary["def_zh"])


def test_conll2003_unknown_tag_is_a_clear_error(tmp_path, monkeypatch):
    for name in data.CONLL_SPLITS.values():
        (tmp_path / name).write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n")
    monkeypatch.setattr(data, "asset_path", lambda name: tmp_path)
    assert data.load_conll2003()["train"][0]["ner_tags"] == [data.NER_TAGS.index("B-ORG")]
    (tmp_path / "test.txt").write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-COMPANY\n")
    with pytest.raises(DataFormatError, match=r"test-0-0: unknown ner_tag 'B-COMPANY'"):
        data.load_conll2003()
