"""Instruction tuning of a chat model, with the loss on the answer only (introduced in chapter 7).

An example is a prompt (a string, or a list of chat messages for a multi-turn conversation) and
the answer the assistant should give. `build_example` renders it with the tokenizer's own chat
template and labels it:

- every token of the prompt, including the template's generation prompt
  (``<|im_start|>assistant\\n`` for SmolLM2), gets label -100: the model is not trained to write
  the question, only to answer it;
- the answer's tokens and the end-of-turn token that closes it (``<|im_end|>``) keep their ids as
  labels, so the model also learns to *stop*; what the template writes after the end-of-turn
  token (a newline) is -100 again.

Where the answer starts is found on tokens: the tokenisation of the rendered prompt should be a
prefix of the tokenisation of the whole conversation. That holds for SmolLM2's template (tested)
but not always: an answer that starts with white space may merge with the template's last
newline into one token, and some templates render the final assistant turn differently. Then the
boundary is found on characters instead (offset mapping): every token that holds a character of
the answer is labelled.

`max_length`: with ``on_overflow="drop"`` (the default) an example longer than `max_length` is
dropped; with ``"truncate"`` it is cut on the right and dropped only if no answer token is left
(its end-of-turn token may be lost). `tokenize_instructions` warns with the count of dropped
examples; shorten long inputs first with `truncate_text`.

Also here: the collator (pads labels with -100: the pad token of SmolLM2 *is* ``<|im_end|>``, so
labels must not be derived from the padded input), batched greedy generation that stops at the
end of the assistant's turn, and offline reference metrics (`rouge`, `bleu_chrf`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "MixedTokenizer",
    "bleu_chrf",
    "build_example",
    "chat_messages",
    "end_of_turn_id",
    "generate_answers",
    "instruction_collator",
    "render_prompt",
    "rouge",
    "tokenize_instructions",
    "truncate_text",
]

Prompt = str | Sequence[dict]


def chat_messages(prompt: Prompt, answer: str | None = None, system: str | None = None):
    """The chat: an optional system message, the prompt (a user message, or messages as given),
    and, if `answer` is given, the assistant's reply."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
        if not messages or messages[-1]["role"] != "user":
            raise ValueError("a conversation prompt must end with a user message")
    if system is not None:
        if messages[0]["role"] == "system":
            raise ValueError("the messages already hold a system message; do not pass system=")
        messages.insert(0, {"role": "system", "content": system})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def render_prompt(tokenizer, prompt: Prompt, system: str | None = None) -> str:
    """The prompt as the model reads it: chat template applied, the assistant's turn opened."""
    return tokenizer.apply_chat_template(
        chat_messages(prompt, system=system), add_generation_prompt=True, tokenize=False
    )


def _ids(tokenizer, text: str) -> list[int]:
    # the chat template already holds the special tokens: add none (as course_utils.prompting)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def end_of_turn_id(tokenizer) -> int:
    """The token that closes an assistant turn in this tokenizer's chat template.

    Found by rendering a reply and reading the first token after it (``<|im_end|>`` for ChatML
    templates such as SmolLM2's, ``<|eot_id|>`` for Llama 3); the EOS token if the template
    writes nothing after the reply.
    """
    sentinel = "Answer-7f3a"
    rendered = tokenizer.apply_chat_template(
        chat_messages("Hi", sentinel), tokenize=False, add_generation_prompt=False
    )
    after = rendered[rendered.rindex(sentinel) + len(sentinel) :]
    ids = _ids(tokenizer, after) if after.strip() else []
    if ids:
        return ids[0]
    if tokenizer.eos_token_id is None:
        raise ValueError("the chat template ends a turn with nothing and there is no EOS token")
    return tokenizer.eos_token_id


def _answer_start(tokenizer, prompt_text: str, full_text: str, answer: str) -> tuple[list, int]:
    """Token ids of the conversation and the index of its first answer token."""
    prompt_ids, full_ids = _ids(tokenizer, prompt_text), _ids(tokenizer, full_text)
    if full_ids[: len(prompt_ids)] == prompt_ids:
        return full_ids, len(prompt_ids)
    # not a token prefix: find the answer's first character and the token that holds it
    if full_text.startswith(prompt_text):
        first_char = len(prompt_text)
    else:
        found = full_text.rfind(answer) if answer else -1
        if found < 0:
            raise ValueError(
                "cannot find the answer in the rendered conversation: the chat template "
                "changes the assistant's text; build the labels by hand for this template"
            )
        first_char = found
    enc = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    for i, (_, end) in enumerate(enc["offset_mapping"]):
        if end > first_char:
            return enc["input_ids"], i
    return enc["input_ids"], len(enc["input_ids"])


def build_example(
    tokenizer,
    prompt: Prompt,
    answer: str,
    system: str | None = None,
    max_length: int | None = None,
    on_overflow: Literal["drop", "truncate"] = "drop",
    eot_id: int | None = None,
) -> dict | None:
    """``{"input_ids", "attention_mask", "labels"}`` of one (prompt, answer) pair, labels on
    the answer and its end-of-turn token only (the rule is in the module docstring).

    The answer's surrounding white space is stripped (a leading space would merge with the
    template's newline into a token the model never sees before it answers, and
    `generate_answers` strips its output too). Returns ``None`` when the example does not fit
    `max_length` (see `on_overflow`).
    """
    answer = answer.strip()
    if on_overflow not in ("drop", "truncate"):
        raise ValueError(f"on_overflow must be 'drop' or 'truncate', not {on_overflow!r}")
    eot_id = end_of_turn_id(tokenizer) if eot_id is None else eot_id
    prompt_text = render_prompt(tokenizer, prompt, system)
    full_text = tokenizer.apply_chat_template(chat_messages(prompt, answer, system), tokenize=False)
    ids, start = _answer_start(tokenizer, prompt_text, full_text, answer)
    stop = next((i for i in range(start, len(ids)) if ids[i] == eot_id), len(ids) - 1)
    labels = [-100] * start + ids[start : stop + 1] + [-100] * (len(ids) - stop - 1)
    if max_length is not None and len(ids) > max_length:
        if on_overflow == "drop":
            return None
        ids, labels = ids[:max_length], labels[:max_length]
        if all(label == -100 for label in labels):
            return None
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_instructions(
    dataset,
    tokenizer,
    prompt_column: str = "prompt",
    answer_column: str = "answer",
    system: str | None = None,
    max_length: int | None = 512,
    on_overflow: Literal["drop", "truncate"] = "drop",
):
    """`build_example` on every row of a `datasets.Dataset`; the rows that do not fit are
    dropped with a warning. Adds `example_index` (the source row) next to the model inputs."""
    from datasets import Dataset

    eot_id = end_of_turn_id(tokenizer)
    rows = []
    for index, row in enumerate(dataset):
        example = build_example(
            tokenizer, row[prompt_column], row[answer_column], system, max_length, on_overflow,
            eot_id,
        )  # fmt: skip
        if example is not None:
            rows.append({**example, "example_index": index})
    if not rows:
        raise ValueError(
            f"no example fits max_length={max_length}: shorten the prompts (truncate_text) "
            "or raise max_length"
        )
    dropped = len(dataset) - len(rows)
    if dropped:
        warnings.warn(
            f"{dropped} of {len(dataset)} examples do not fit max_length={max_length} and were "
            "dropped; shorten the prompts (truncate_text) or raise max_length",
            stacklevel=2,
        )
    return Dataset.from_list(rows)


def truncate_text(tokenizer, text: str, max_tokens: int) -> str:
    """`text` cut after its first `max_tokens` tokens (at a token boundary, no special tokens)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return text
    return text[: enc["offset_mapping"][max_tokens - 1][1]] if max_tokens > 0 else ""


def instruction_collator(tokenizer):
    """Pads `input_ids` with the pad token, `attention_mask` with 0 and `labels` with -100."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)


def _stop_ids(model, token_id: int) -> list[int]:
    """The model's end-of-sequence tokens plus `token_id` (the end of the assistant's turn)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = base.generation_config.eos_token_id
    current = [] if saved is None else ([saved] if isinstance(saved, int) else list(saved))
    return current + ([token_id] if token_id not in current else [])


def generate_answers(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    system: str | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 16,
) -> tuple[list[str], float]:
    """Greedy answers to chat prompts, batched and left-padded, each ending at the end of the
    assistant's turn; and the seconds it took. Uses `course_utils.prompting.generate`."""
    from ..prompting import generate

    rendered = [render_prompt(tokenizer, p, system) for p in prompts]
    stop = _stop_ids(model, end_of_turn_id(tokenizer))
    answers, seconds = generate(
        model, tokenizer, rendered, max_new_tokens, batch_size, eos_token_id=stop
    )
    return [a.strip() for a in answers], seconds


# --------------------------------------------------------------------------------------------
# Reference metrics that work offline
# --------------------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[a-z0-9]+")


class MixedTokenizer:
    """A `rouge_score` tokenizer that keeps Chinese: one token per CJK character (Chinese,
    Japanese kana, Korean syllables) and, elsewhere, exactly rouge-score's default rule
    (lower-case, runs of ``[a-z0-9]``; Porter stems of words longer than 3 letters if
    `use_stemmer`). The default tokenizer drops every non-ASCII character, so Chinese scores 0."""

    def __init__(self, use_stemmer: bool = False):
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = _TOKEN.findall(text.lower())
        if self._stemmer is not None:
            tokens = [self._stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]
        return tokens


def rouge(
    predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = False
) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (in [0, 1]) with `rouge-score` and `MixedTokenizer`."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    types = ["rouge1", "rouge2", "rougeL"]
    scorer = rouge_scorer.RougeScorer(types, tokenizer=MixedTokenizer(use_stemmer))
    totals = dict.fromkeys(types, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # (target, prediction)
        for t in types:
            totals[t] += scores[t].fmeasure
    return {t: totals[t] / len(predictions) for t in types}


def bleu_chrf(
    predictions: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    target_lang: str = "en",
) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) with `sacrebleu`.

    `references[i]` is the reference of prediction i, or a list of several. BLEU tokenises
    with sacrebleu's ``"zh"`` tokenizer when `target_lang` is ``"zh"`` (else its standard
    ``"13a"``); chrF works on characters and needs no tokenizer.
    """
    import sacrebleu

    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    multi = [[r] if isinstance(r, str) else list(r) for r in references]
    n_refs = max(len(r) for r in multi)
    streams = [[r[j] if j < len(r) else None for r in multi] for j in range(n_refs)]
    tokenize = "zh" if target_lang.lower().startswith("zh") else "13a"
    bleu = sacrebleu.corpus_bleu(list(predictions), streams, tokenize=tokenize)
    chrf = sacrebleu.corpus_chrf(list(predictions), streams)
    return {"bleu": float(bleu.score), "chrf": float(chrf.score)}
