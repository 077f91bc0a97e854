"""Tests for course_utils.pretraining (chapter 2): tiny configs, fast."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import Dataset

from course_utils.pretraining import (
    SavedTensorMeter,
    decoder_classifier,
    decoder_features,
    embedding_parameters,
    gguf_round_trip,
    non_embedding_parameters,
    pack_corpus,
    perplexity,
    text_perplexity,
    tiny_gpt,
    training_flops,
    training_memory_bytes,
)
from course_utils.training import TrainConfig, count_parameters, predict, train


class CharTokenizer:
    """A minimal tokenizer: one id per character (enough for packing and perplexity)."""

    eos_token_id = 1
    bos_token_id = 0
    pad_token_id = 1
    eos_token = "</s>"
    pad_token = "</s>"

    def __len__(self) -> int:
        return 64

    def __call__(self, texts, add_special_tokens=True, **kwargs):
        return {"input_ids": [[2 + ord(c) % 62 for c in t] for t in texts]}


@pytest.fixture
def tok():
    return CharTokenizer()


@pytest.fixture
def model(tok):
    return tiny_gpt(tok, hidden_size=32, num_layers=2, num_heads=2, max_length=64)


def test_pack_corpus_makes_full_blocks_with_eos(tok):
    texts = ["abcde", "fgh", "ijklmnop"]  # 5+1 + 3+1 + 8+1 = 19 tokens
    blocks = pack_corpus(texts, tok, block_size=4)
    assert len(blocks) == 4  # 19 // 4, the tail of 3 is dropped
    assert all(len(ids) == 4 for ids in blocks["input_ids"])
    assert blocks["labels"] == blocks["input_ids"]
    stream = [t for ids in blocks["input_ids"] for t in ids]
    assert stream[5] == tok.eos_token_id and stream[9] == tok.eos_token_id


def test_tiny_gpt_is_a_transformers_llama_with_tied_embeddings(model, tok):
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tok)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert embedding_parameters(model) == 64 * 32
    assert non_embedding_parameters(model) == count_parameters(model) - 64 * 32


def test_perplexity_of_untrained_model_is_near_vocab_size(model, tok):
    texts = ["the quick brown fox jumps over the lazy dog"] * 4
    ppl = perplexity(model, tok, texts, block_size=16, batch_size=2)
    assert 0.5 * len(tok) < ppl < 2 * len(tok)  # near-uniform guesses score about V


@pytest.fixture(scope="module")
def word_tokenizer():
    """A real fast tokenizer over a few words (WordLevel), with an EOS token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<eos>", "<unk>", *"the movie was good and plot great bad".split()]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<eos>", pad_token="<eos>", unk_token="<unk>"
    )


def test_training_lowers_perplexity_with_the_course_loop(word_tokenizer):
    tiny_tokenizer = word_tokenizer
    assert len(tiny_tokenizer) == 10
    model = tiny_gpt(tiny_tokenizer, hidden_size=32, num_layers=2, num_heads=2, max_length=64)
    texts = ["the movie was good and the plot was great"] * 160
    blocks = pack_corpus(texts, tiny_tokenizer, block_size=16)
    before = perplexity(model, tiny_tokenizer, texts[:8], block_size=16)
    config = TrainConfig(lr=1e-2, num_epochs=3, batch_size=8, progress=False, max_length=None,
                         warmup_ratio=0.0, mixed_precision="no")  # fmt: skip
    history = train(model, blocks, blocks, config=config, tokenizer=tiny_tokenizer)
    assert history.final_metrics["loss"] < math.log(len(tiny_tokenizer))
    assert perplexity(model, tiny_tokenizer, texts[:8], block_size=16) < before / 2


def test_training_flops_counts_tied_lm_head_but_not_lookups(model):
    n = non_embedding_parameters(model)
    assert training_flops(model, 10, include_lm_head=False) == 6 * n * 10
    assert training_flops(model, 10) == 6 * (n + 64 * 32) * 10


def test_training_memory_parts_add_up_and_respect_frozen_parameters(model):
    parts = training_memory_bytes(model, batch_size=2, seq_len=8)
    n = count_parameters(model)
    assert parts["parameters"] == parts["gradients"] == 4 * n
    assert parts["optimizer"] == 8 * n
    assert parts["total"] == pytest.approx(sum(v for k, v in parts.items() if k != "total"))
    for p in model.model.layers.parameters():
        p.requires_grad_(False)
    frozen = training_memory_bytes(model, batch_size=2, seq_len=8)
    assert frozen["gradients"] < parts["gradients"] and frozen["parameters"] == parts["parameters"]


def test_saved_tensor_meter_measures_activations_of_the_same_order_as_the_estimate(model):
    x = torch.randint(0, 64, (4, 32))
    with SavedTensorMeter(model) as meter:
        out = model(input_ids=x, labels=x)
    out.loss.backward()
    estimate = training_memory_bytes(model, batch_size=4, seq_len=32)["activations"]
    assert 0.2 * estimate < meter.bytes < 5 * estimate


def test_text_perplexity_scores_each_text_alone_and_ignores_padding(word_tokenizer):
    model = tiny_gpt(word_tokenizer, hidden_size=32, num_layers=2, num_heads=2, max_length=64)
    texts = ["the movie was good", "bad plot", "the plot was great and the movie was bad"]
    together = text_perplexity(model, word_tokenizer, texts, batch_size=3)
    alone = []  # per-text mean losses, weighted by the tokens each predicts
    for text in texts:
        n = len(word_tokenizer(text)["input_ids"]) - 1
        alone.append((math.log(text_perplexity(model, word_tokenizer, [text])), n))
    expected = math.exp(sum(loss * n for loss, n in alone) / sum(n for _, n in alone))
    assert together == pytest.approx(expected, rel=1e-4)  # padding in the batch changes nothing
    with_eos = text_perplexity(model, word_tokenizer, texts, add_eos=True)
    assert with_eos != pytest.approx(together)


def test_decoder_features_read_the_last_real_token_and_the_mean(word_tokenizer):
    model = tiny_gpt(word_tokenizer, hidden_size=32, num_layers=2, num_heads=2, max_length=64)
    texts = ["the movie was good and the plot was great", "bad"]
    batched = decoder_features(model, word_tokenizer, texts, batch_size=2)
    for i, text in enumerate(texts):
        ids = torch.tensor([word_tokenizer(text)["input_ids"]])
        with torch.no_grad():
            hidden = model.model(input_ids=ids).last_hidden_state[0]
        assert np.allclose(batched["last"][i], hidden[-1].numpy(), atol=1e-5)
        assert np.allclose(batched["mean"][i], hidden.mean(0).numpy(), atol=1e-5)
    eos = decoder_features(model, word_tokenizer, texts[1:], append_eos=True)
    assert not np.allclose(eos["last"][0], batched["last"][1])


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_decoder_classifier_copies_the_body_and_trains(word_tokenizer, pooling):
    lm = tiny_gpt(word_tokenizer, hidden_size=32, num_layers=2, num_heads=2, max_length=64)
    clf = decoder_classifier(lm, pooling, pad_token_id=word_tokenizer.pad_token_id, seed=1)
    assert type(clf).__name__.endswith("ForSequenceClassification")
    for name, p in lm.model.state_dict().items():
        assert torch.equal(clf.model.state_dict()[name], p)
    again = decoder_classifier(lm, pooling, pad_token_id=word_tokenizer.pad_token_id, seed=1)
    assert torch.equal(clf.score.weight, again.score.weight)  # the head is seeded
    data = Dataset.from_dict({"text": ["the movie was good", "bad plot bad", "great movie",
                                       "the plot was bad"] * 4, "label": [1, 0, 1, 0] * 4})  # fmt: skip
    config = TrainConfig(lr=1e-2, num_epochs=2, batch_size=4, progress=False,
                         warmup_ratio=0.0, mixed_precision="no")  # fmt: skip
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    history = train(clf, data, config=config, tokenizer=word_tokenizer)
    assert history.steps and all(torch.equal(p, before[n]) for n, p in lm.named_parameters())
    logits = predict(clf, data, tokenizer=word_tokenizer)
    assert logits.shape == (16, 2)


def test_gguf_round_trip_rounds_matrices_and_embedding_to_their_formats(model):
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    counts = gguf_round_trip(model, matrix_format="Q4_1", embedding_format="Q8_0")
    assert counts["Q8_0"] == 64 * 32
    assert counts["Q4_1"] == non_embedding_parameters(model) - sum(
        p.numel() for p in model.parameters() if p.dim() == 1
    )
    for name, p in model.named_parameters():
        if p.dim() == 1:
            assert torch.equal(p, original[name])  # norms stay float
        else:
            assert not torch.equal(p, original[name])
            assert (p - original[name]).abs().max() < 0.2 * original[name].abs().max()
    again = {n: p.detach().clone() for n, p in model.named_parameters()}
    gguf_round_trip(model)  # already on the grids: nothing moves
    assert all(torch.equal(p, again[n]) for n, p in model.named_parameters())
