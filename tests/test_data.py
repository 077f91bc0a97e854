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


def test_split_of_is_a_fixed_function_of_the_id():
    # The exact assignment is part of the course's contract: same split on every machine.
    assert [data.split_of(f"movies-{i}") for i in range(1, 6)] == [
        data.split_of(f"movies-{i}") for i in range(1, 6)
    ]
    counts = {s: 0 for s in data.SPLIT_FRACTIONS}
    for i in range(10_000):
        counts[data.split_of(str(i))] += 1
    assert 7800 < counts["train"] < 8200 and 900 < counts["test"] < 1100
    assert any(data.split_of(str(i), seed=0) != data.split_of(str(i), seed=1) for i in range(100))


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
    assert sizes == {"train": 8029, "validation": 1059, "test": 984}  # fixed: same on every machine
    ids = [set(ds[s]["id"]) for s in ds]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    train = ds["train"].to_pandas()
    assert (train["rating"].abs() >= data.MIN_ABS_RATING).all()
    assert ((train["rating"] > 0) == (train["label"] == 1)).all()
    assert 0.45 < train["label"].mean() < 0.55
    assert ds["train"].features["label"].names == ["negative", "positive"]


@pytest.mark.assets
def test_other_sets():
    ood = data.load_ood_sets()
    assert {k: v.num_rows for k, v in ood.items()} == {"amazon": 2985, "nyt": 2970, "tweets": 3432}
    zh = data.load_chinese_reviews()
    assert sum(v.num_rows for v in zh.values()) == 35_123
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh["test"][0]["text"])
    small = data.load_chinese_reviews(max_per_class=100)
    assert sum(v.num_rows for v in small.values()) == 200


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
