"""Chapter 1 — Introduction: reference solutions and the exercises' hidden cases."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..exercises import Case, Exercise


# -- Exercise 1: count tokens ------------------------------------------------------------------
def count_tokens(text: str, tokenizer) -> int:
    """How many tokens ``tokenizer`` splits ``text`` into, without special tokens."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


# -- Exercise 2: predict with the encoder --------------------------------------------------------
def most_similar(query: str, candidates: Sequence[str], embed: Callable) -> int:
    """The index of the candidate closest in meaning to ``query`` (cosine similarity)."""
    vectors = embed([query, *candidates])  # one unit-length row per text
    scores = vectors[1:] @ vectors[0]  # dot products of unit vectors = cosine similarities
    return int(scores.argmax())


# -- Exercise 3: find a glossary term ------------------------------------------------------------
def find_term(term: str, glossary: Sequence[Mapping]) -> Mapping | None:
    """The glossary entry whose English name, Chinese name or abbreviation is ``term``.

    Case and surrounding spaces do not matter; returns ``None`` when there is no such entry.
    """
    key = term.strip().casefold()
    for entry in glossary:
        names = {entry["en"].casefold(), entry["zh"].casefold()}
        if entry.get("abbr"):
            names.add(entry["abbr"].casefold())
        if key in names:
            return entry
    return None


# -- Exercise 4 (an experiment): what Chinese costs SmolLM2 --------------------------------------
ZH_EXPLANATIONS = {
    "a": "every Chinese character is one token of SmolLM2's vocabulary",
    "b": "byte-level BPE starts from each character's 3 UTF-8 bytes and merges only combinations "
    "frequent in its mostly English training text, so most characters take more than one token",
    "c": "SmolLM2 maps Chinese characters to an unknown token, as MiniLM does",
}


def chinese_names(glossary: Sequence[Mapping]) -> list[str]:
    """The glossary's Chinese names made of Chinese characters only."""
    return [
        e["zh"] for e in glossary if e["zh"] and all("\u4e00" <= ch <= "\u9fff" for ch in e["zh"])
    ]


def chinese_cost(tokenizer, glossary: Sequence[Mapping]) -> tuple[float, str]:
    """SmolLM2 tokens per Chinese character over the glossary's all-Chinese names, and why."""
    names = chinese_names(glossary)
    tokens = sum(len(tokenizer(name, add_special_tokens=False)["input_ids"]) for name in names)
    return tokens / sum(len(name) for name in names), "b"


TOKEN_TEXTS = [
    "Fine-tuning adapts a pretrained model.",
    "",
    "这部电影真好看！",
    "Tokenizers split unbelievably long words, don't they?",
]

SIMILARITY_CASES = [  # (query, candidates, index of the right answer)
    (
        "How do I reset my password?",
        [
            "Opening hours of the city library",
            "Steps to recover access to your account",
            "A recipe for tomato soup",
        ],
        1,
    ),
    (
        "Will it rain tomorrow?",
        [
            "Our team won the match.",
            "My laptop battery died.",
            "The forecast says showers on Friday.",
        ],
        2,
    ),
    (
        "Which animal is known as the king of the jungle?",
        [
            "The lion is often called the king of beasts.",
            "Python is a programming language.",
            "Paris is the capital of France.",
        ],
        0,
    ),
    (
        "GPUs make neural network training faster.",
        [
            "Graphics cards speed up deep learning.",
            "It rained all day yesterday.",
            "She plays the violin beautifully.",
        ],
        0,
    ),
]

TERM_QUERIES = [  # (query, English name of the right entry or None)
    ("fine-tuning", "Fine-tuning"),
    ("  Prompt ", "Prompt"),
    ("微调", "Fine-tuning"),
    ("LoRA", "Low-rank adaptation"),
    ("gpu", "Graphics processing unit"),
    ("过拟合", "Overfitting"),
    ("quantum chromodynamics", None),
]


def exercises(
    tokenizers: Mapping[str, object], embed: Callable, glossary: Sequence[Mapping]
) -> dict[str, Exercise]:
    """Chapter 1's exercises, built from the notebook's tokenizers, ``embed`` function and glossary."""
    token_cases = [
        Case((text, tok), label=f"({text!r}, tokenizer of {name!r})")
        for name, tok in tokenizers.items()
        for text in TOKEN_TEXTS
    ]
    similarity_cases = [
        Case(
            (query, candidates, embed),
            expected=answer,
            label=f"(query={query!r}, candidates={candidates!r})",
        )
        for query, candidates, answer in SIMILARITY_CASES
    ]
    by_name = {entry["en"]: entry for entry in glossary}
    term_cases = [Case((query, glossary), expected=by_name.get(name) if name else None, label=f"({query!r}, glossary)")
                  for query, name in TERM_QUERIES]  # fmt: skip

    def same_measurement(got, expected) -> bool:
        try:
            value, letter = got
            return abs(float(value) - expected[0]) <= 0.01 and str(letter).strip().lower() == "b"
        except (TypeError, ValueError):
            return False

    def same_entry(got, expected) -> bool:
        if expected is None or got is None:
            return got is expected
        return isinstance(got, Mapping) and got.get("en") == expected["en"]

    return {
        "count_tokens": Exercise(
            "count_tokens",
            cases=token_cases,
            solution=count_tokens,
            hints=[
                "Calling a tokenizer on a string, `tokenizer(text)`, returns a dict with the token ids under 'input_ids'.",
                "By default the tokenizer adds special tokens such as [CLS] and [SEP]; pass add_special_tokens=False.",
                "The answer is `len(...)` of those ids.",
            ],
        ),
        "most_similar": Exercise(
            "most_similar",
            cases=similarity_cases,
            solution=most_similar,
            hints=[
                "Embed the query and the candidates together: `embed([query, *candidates])` returns one row per text.",
                "The rows have length 1, so a dot product `@` between two rows is their cosine similarity.",
                "`scores.argmax()` gives the index of the best candidate; return it as a plain `int`.",
            ],
        ),
        "find_term": Exercise(
            "find_term",
            cases=term_cases,
            solution=find_term,
            compare=same_entry,
            hints=[
                "Loop over the entries; each is a dict with the keys 'en', 'zh' and 'abbr'.",
                "Normalise both sides with `.strip().casefold()` before comparing.",
                "Remember the abbreviation ('abbr', may be empty) and return None when nothing matches.",
            ],
        ),
        "chinese_cost": Exercise(
            "chinese_cost",
            kind="value",
            solution=chinese_cost,
            solution_args=(tokenizers["smollm2"], glossary),
            compare=same_measurement,
            hints=[
                "Keep the entries whose 'zh' consists of Chinese characters only: "
                "`all('\\u4e00' <= ch <= '\\u9fff' for ch in zh)`.",
                "Add up `len(dec_tokenizer(zh, add_special_tokens=False)['input_ids'])` over those "
                "names and divide by their total number of characters.",
                "A character is three bytes in UTF-8; look at what `dec_tokenizer.tokenize('微调')` "
                "returns before you choose.",
            ],
        ),
    }


def test_context() -> dict:
    """What ``exercises()`` needs, built the way the notebook builds it (for the tests)."""
    import torch

    from ..data import Field, load_jsonl
    from ..models import load_encoder, load_tokenizer

    encoder, tokenizer = load_encoder("minilm", device="cpu")

    def embed(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    schema = {
        key: Field(str) for key in ("en", "zh", "abbr", "def_en", "def_zh", "source", "correction")
    }
    return {
        "tokenizers": {"minilm": tokenizer, "smollm2": load_tokenizer("smollm2")},
        "embed": embed,
        "glossary": load_jsonl("glossary.jsonl", schema).to_list(),
    }
