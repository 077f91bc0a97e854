"""course_utils.prompting on a tiny random Llama: rendering, verbalizer scoring, parsing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from course_utils.prompting import (
    PromptTemplate,
    binomial_se,
    calibrate,
    common_prefix_length,
    generate,
    label_auc,
    label_logprobs,
    label_token_ids,
    normalize_labels,
    paired_gap,
    parse_json,
    parse_label,
    render_prompt,
)

# A ChatML-like template, so the BERT-vocabulary tiny tokenizer can render chats.
CHAT_TEMPLATE = (
    "{% for m in messages %}[CLS] {{ m['role'] }} {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}[CLS] assistant {% endif %}"
)
TEMPLATE = PromptTemplate(
    instruction="the plot", label_words=("bad", "good"), user="movie {text}", name="tiny"
)


@pytest.fixture
def chat_llama(tiny_llama):
    """The tiny Llama with a copy of the shared tokenizer that has a chat template."""
    model, shared = tiny_llama
    tokenizer = copy.deepcopy(shared)  # the session-wide tokenizer stays as other tests expect it
    tokenizer.chat_template = CHAT_TEMPLATE
    return model.eval(), tokenizer


def test_the_shared_tokenizer_is_not_changed(chat_llama, tiny_tokenizer):
    _, tokenizer = chat_llama
    assert tokenizer is not tiny_tokenizer and tokenizer.chat_template == CHAT_TEMPLATE
    assert tiny_tokenizer.chat_template is None
    assert tokenizer.get_vocab() == tiny_tokenizer.get_vocab()


def test_messages_and_render(chat_llama):
    _, tokenizer = chat_llama
    chat = TEMPLATE.messages("fun", examples=[("dull", 0), ("lovely", 1)])
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert chat[2]["content"] == "bad" and chat[4]["content"] == "good"
    assert chat[-1]["content"] == "movie fun"
    text = render_prompt(tokenizer, TEMPLATE, "fun")
    assert text.endswith("[CLS] assistant ") and "movie fun" in text
    prefixed = PromptTemplate(TEMPLATE.instruction, TEMPLATE.label_words, answer_prefix="the ")
    assert render_prompt(tokenizer, prefixed, "fun").endswith("assistant the ")


def test_label_token_ids(chat_llama):
    _, tokenizer = chat_llama
    ids = label_token_ids(tokenizer, ["bad", "good"])
    assert ids == [tokenizer.convert_tokens_to_ids(w) for w in ("bad", "good")]
    with pytest.raises(ValueError):
        label_token_ids(tokenizer, ["good movie", "bad"])  # two tokens
    assert label_token_ids(tokenizer, ["good movie", "bad"], strict=False)[0] == ids[1]
    with pytest.raises(ValueError):
        label_token_ids(tokenizer, ["good", "good"])


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5, 6]]) == 2
    assert common_prefix_length([[1], [2]]) == 0
    assert common_prefix_length([]) == 0


def _reference_logprobs(model, tokenizer, prompts, ids):
    """One prompt at a time, no padding, no cache: the ground truth."""
    rows = []
    with torch.no_grad():
        for prompt in prompts:
            enc = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
            logits = model(**enc).logits[0, -1]
            rows.append(torch.log_softmax(logits, -1)[ids].numpy())
    return np.array(rows)


@pytest.mark.parametrize("share_prefix", [True, False])
def test_label_logprobs_match_one_by_one(chat_llama, share_prefix):
    model, tokenizer = chat_llama
    texts = ["good", "the plot was very dull and boring", "a fun story", "silly", "the actors"]
    prompts = [render_prompt(tokenizer, TEMPLATE, t, [("dull", 0), ("lovely", 1)]) for t in texts]
    ids = label_token_ids(tokenizer, TEMPLATE.label_words)
    got = label_logprobs(model, tokenizer, prompts, ids, batch_size=2, share_prefix=share_prefix)
    expected = _reference_logprobs(model, tokenizer, prompts, ids)
    assert got.shape == (len(texts), 2)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_label_logprobs_without_common_prefix(chat_llama):
    model, tokenizer = chat_llama
    prompts = ["good movie", "bad plot and actors"]
    ids = label_token_ids(tokenizer, ["bad", "good"])
    got = label_logprobs(model, tokenizer, prompts, ids)
    np.testing.assert_allclose(got, _reference_logprobs(model, tokenizer, prompts, ids), atol=1e-4)
    assert label_logprobs(model, tokenizer, [], ids).shape == (0, 2)


def test_normalize_and_calibrate():
    logp = np.log(np.array([[0.6, 0.2], [0.3, 0.3]]))
    norm = normalize_labels(logp)
    np.testing.assert_allclose(np.exp(norm).sum(1), 1.0)
    np.testing.assert_allclose(np.exp(norm[0]), [0.75, 0.25])
    # a content-free input that prefers label 0 three to one: dividing it out
    cf = np.log(np.array([[0.75, 0.25]]))
    cal = np.exp(calibrate(logp, cf))
    np.testing.assert_allclose(cal[0], [0.5, 0.5])
    np.testing.assert_allclose(cal[1], [0.25, 0.75])
    # several content-free inputs: their mean label distribution is the bias
    cf2 = np.log(np.array([[0.9, 0.1], [0.6, 0.4]]))
    np.testing.assert_allclose(np.exp(calibrate(logp, cf2)), cal)


def test_generate_is_greedy_and_batched(chat_llama):
    model, tokenizer = chat_llama
    prompts = [render_prompt(tokenizer, TEMPLATE, t) for t in ["good", "the plot was dull"]]
    answers, seconds = generate(model, tokenizer, prompts, max_new_tokens=3, batch_size=2)
    singles = [generate(model, tokenizer, [p], max_new_tokens=3)[0][0] for p in prompts]
    assert answers == singles and seconds > 0
    assert all(isinstance(a, str) for a in answers)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("positive", 1),
        ("Negative.", 0),
        ("The review is positive, not negative", 1),
        ("It is negative; never positive", 0),
        ("nonpositive", None),
        ("", None),
    ],
)
def test_parse_label(text, expected):
    assert parse_label(text, ("negative", "positive")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"sentiment": "positive"}', {"sentiment": "positive"}),
        ('Sure: ```json\n{"sentiment": "negative"}\n``` done', {"sentiment": "negative"}),
        ("{'sentiment': 'positive'}", {"sentiment": "positive"}),
        ('{"sentiment": "positive",}', {"sentiment": "positive"}),
        ('{sentiment: "negative"}', {"sentiment": "negative"}),
        ('{"sentiment": "positive"', {"sentiment": "positive"}),
        ('{"sentiment": "posi', {"sentiment": "posi"}),
        ('{"a": 1} trailing {', {"a": 1}),
        ("no json here", None),
        ("[1, 2]", None),
    ],
)
def test_parse_json_forgiving(text, expected):
    assert parse_json(text) == expected


def test_parse_json_strict():
    assert parse_json(' {"sentiment": "positive"} ', strict=True) == {"sentiment": "positive"}
    assert parse_json('Answer: {"sentiment": "positive"}', strict=True) is None
    assert parse_json("{'sentiment': 'positive'}", strict=True) is None
    assert parse_json("[1]", strict=True) is None


def test_label_auc_is_threshold_free():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=50)
    logp = np.log(rng.dirichlet([1, 1], size=50))
    odds = logp[:, 1] - logp[:, 0]
    assert label_auc(logp, labels) == pytest.approx(roc_auc_score(labels, odds))
    biased = logp + np.array([0.0, 3.0])  # a constant bias towards label 1
    assert label_auc(biased, labels) == pytest.approx(label_auc(logp, labels))
    cf = np.log(np.array([[0.1, 0.9], [0.2, 0.8]]))
    assert label_auc(calibrate(logp, cf), labels) == pytest.approx(label_auc(logp, labels))
    perfect = np.log(np.where(labels[:, None] == 1, [0.2, 0.8], [0.8, 0.2]))
    assert label_auc(perfect, labels) == 1.0
    assert label_auc(np.zeros((4, 2)), [0, 1, 0, 1]) == 0.5  # all tied
    assert np.isnan(label_auc(logp[:3], [1, 1, 1]))


def test_binomial_se_and_paired_gap():
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    assert binomial_se(1.0, 10) == 0.0
    a = np.array([1, 1, 1, 0, 1, 0, 1, 1])
    gap, half = paired_gap(a, a)
    assert gap == 0.0 and half == 0.0
    b = np.array([1, 0, 1, 0, 0, 0, 1, 1])
    gap, half = paired_gap(a, b)
    diff = a - b
    assert gap == pytest.approx(0.25)
    assert half == pytest.approx(1.96 * diff.std(ddof=1) / np.sqrt(len(a)))
    with pytest.raises(ValueError):
        paired_gap(a, b[:3])
