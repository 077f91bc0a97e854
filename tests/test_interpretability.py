"""course_utils.interpretability: integrated gradients, attention, the deletion test (chapter 9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_tiny_bert

from course_utils.interpretability import (
    cls_attention,
    content_positions,
    delete_positions,
    integrated_gradients,
    predict_ids,
    random_positions,
    top_positions,
)

TEXTS = ["the movie was great and fun", "a dull and boring plot", "good"]


@pytest.fixture
def bert(tiny_bert):
    model, tokenizer = tiny_bert
    return model.eval(), tokenizer


def test_attributions_cover_every_token_and_converge(bert):
    model, tokenizer = bert
    results = integrated_gradients(model, tokenizer, TEXTS, n_steps=64)
    for text, r in zip(TEXTS, results, strict=True):
        ids = tokenizer(text)["input_ids"]
        assert r.input_ids == ids and len(r.scores) == len(ids) == len(r.tokens)
        probs = predict_ids(model, [ids], tokenizer.pad_token_id)[0]
        assert r.target == int(probs.argmax()) and r.probability == pytest.approx(probs.max())
        # completeness: the scores add up to p(text) - p(baseline), up to the delta
        gap = r.probability - r.baseline_probability
        assert r.scores.sum() == pytest.approx(gap + r.delta, abs=1e-5)
        assert abs(r.delta) < 0.05 * max(abs(gap), 1e-3) + 1e-4
    assert not model.training


def test_attribution_of_a_given_target_changes_sign(bert):
    model, tokenizer = bert
    (pos,), (neg,) = (
        integrated_gradients(model, tokenizer, TEXTS[:1], targets=[t]) for t in (0, 1)
    )
    np.testing.assert_allclose(pos.scores, -neg.scores, atol=1e-4)  # p0 + p1 = 1


def test_positions_helpers(bert):
    _, tokenizer = bert
    ids = tokenizer("the plot was dull")["input_ids"]
    content = content_positions(ids, tokenizer)
    assert content == list(range(1, len(ids) - 1))  # [CLS] and [SEP] excluded
    scores = np.array([9.0, 0.1, 0.7, 0.7, -1.0, 9.0])
    assert top_positions(scores, content, 2) == [2, 3]  # ties: the earlier position first
    assert top_positions(scores, content, 10) == [2, 3, 1, 4]
    rng = np.random.default_rng(0)
    picked = random_positions(content, 2, rng)
    assert len(set(picked)) == 2 and set(picked) <= set(content)
    assert delete_positions(ids, [1, 3]) == [ids[0], ids[2], *ids[4:]]


def test_predict_ids_pads_without_changing_predictions(bert):
    model, tokenizer = bert
    seqs = [tokenizer(t)["input_ids"] for t in TEXTS]
    together = predict_ids(model, seqs, tokenizer.pad_token_id, batch_size=8)
    alone = np.concatenate([predict_ids(model, [s], tokenizer.pad_token_id) for s in seqs])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert together.shape == (3, 2) and np.allclose(together.sum(1), 1)


def test_cls_attention_needs_eager_attention(tiny_tokenizer):
    model = build_tiny_bert(tiny_tokenizer).eval()
    ids = tiny_tokenizer("a good movie")["input_ids"]
    model.config._attn_implementation = "eager"
    weights = cls_attention(model, ids)
    assert weights.shape == (len(ids),) and weights.sum() == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        attentions = model(input_ids=torch.tensor([ids]), output_attentions=True).attentions
    np.testing.assert_allclose(weights, attentions[-1][0].mean(0)[0].numpy(), atol=1e-6)
