"""course_utils.privacy: exact candidate log-probabilities, exposure, canaries (chapter 9)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from course_utils.privacy import (
    Canary,
    canary_exposure,
    candidate_logprobs,
    exposure,
    greedy_extraction,
    make_canaries,
)


def brute_force(model, prefix, symbols, length):
    """Every candidate scored as one whole sequence, no cache: what the tree must reproduce."""
    out = []
    with torch.no_grad():
        for candidate in itertools.product(range(len(symbols)), repeat=length):
            ids = torch.tensor([list(prefix) + [symbols[c] for c in candidate]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            n = len(prefix)
            out.append(sum(logp[n - 1 + j, symbols[c]].item() for j, c in enumerate(candidate)))
    return np.array(out)


@pytest.mark.parametrize("length, batch_size", [(1, 1000), (2, 1000), (3, 1000), (3, 4)])
def test_candidate_logprobs_equal_scoring_each_sequence(tiny_llama, length, batch_size):
    model, _ = tiny_llama
    model.eval()
    prefix, symbols = [5, 9, 14, 20], [8, 12, 30]
    tree = candidate_logprobs(model, prefix, symbols, length, batch_size=batch_size)
    assert tree.shape == (len(symbols) ** length,)
    np.testing.assert_allclose(tree, brute_force(model, prefix, symbols, length), atol=1e-4)
    assert not model.training


def test_candidate_logprobs_over_every_token_sum_to_one(tiny_llama):
    model, tokenizer = tiny_llama
    every_token = list(range(len(tokenizer)))
    logp = candidate_logprobs(model.eval(), [5, 9], every_token, 2, batch_size=200)
    assert math.isclose(float(np.exp(logp).sum()), 1.0, rel_tol=1e-4)  # all continuations


def test_exposure_from_ranks():
    logp = np.array([-1.0, -3.0, -0.5, -2.0])
    assert exposure(logp, 2) == pytest.approx(2.0)  # the most likely of 4: log2 4 - log2 1
    assert exposure(logp, 1) == pytest.approx(0.0)  # the least likely: rank 4
    assert exposure(logp, 0) == pytest.approx(1.0)  # rank 2
    assert exposure(np.zeros(8), 3) == pytest.approx(3.0)  # ties count in the secret's favour
    with pytest.raises(ValueError, match="outside the candidate space"):
        exposure(logp, 4)


def test_make_canaries_is_seeded_and_checked():
    prefixes = ["Ann's PIN code is ", "Bo's locker code is "]
    a = make_canaries(prefixes, length=4, seed=3)
    assert a == make_canaries(prefixes, length=4, seed=3)
    assert a != make_canaries(prefixes, length=4, seed=4)
    assert [c.prefix for c in a] == prefixes
    assert all(len(c.secret) == 4 and c.secret.isdigit() for c in a)
    assert a[0].text == a[0].prefix + a[0].secret + "."
    with pytest.raises(ValueError, match="at least one symbol"):
        make_canaries(["Ann's PIN code is "], length=0)


@pytest.fixture(scope="module")
def digit_llama():
    """A tiny random Llama over SmolLM2's vocabulary, whose tokenizer splits digits."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from course_utils.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=64)  # fmt: skip
    return LlamaForCausalLM(config), tokenizer


@pytest.mark.assets
def test_training_on_a_canary_exposes_and_extracts_it(digit_llama):
    model, tokenizer = digit_llama
    canary = Canary("Ann's PIN code is ", "73")
    before = canary_exposure(model, tokenizer, canary)
    assert before["candidates"] == 100 and 0 <= before["exposure"] <= math.log2(100)
    ids = torch.tensor([tokenizer(canary.text)["input_ids"]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = canary_exposure(model, tokenizer, canary)
    assert after["rank"] == 1 and after["exposure"] == pytest.approx(math.log2(100))
    assert greedy_extraction(model, tokenizer, canary) == "73"
    assert model.training  # the measurement put the model back in training mode


def test_an_alphabet_the_tokenizer_splits_is_refused(tiny_llama):
    model, tokenizer = tiny_llama  # a word-level vocabulary without digits
    with pytest.raises(ValueError, match="one token per symbol"):
        canary_exposure(model, tokenizer, Canary("the plot is ", "42"))


@pytest.mark.assets
def test_a_secret_outside_the_alphabet_is_refused(digit_llama):
    model, tokenizer = digit_llama
    with pytest.raises(ValueError, match="outside"):
        canary_exposure(model, tokenizer, Canary("Ann's PIN code is ", "7x"))
