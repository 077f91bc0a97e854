"""Tests of `course_utils.tasks.retrieval` (embeddings, search metrics, contrastive training)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.tasks import retrieval as rt

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOPICS = [[f"t{t}w{w}" for w in range(3)] for t in range(16)]  # 16 topics, 3 words each
FILLER = "the a of and on it is was this that".split()


@pytest.fixture(scope="module")
def pair_tokenizer():
    from transformers import BertTokenizer

    vocab = SPECIAL + FILLER + [w for topic in TOPICS for w in topic]
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def make_pairs(n: int, seed: int = 0, one_per_topic: bool = False):
    """(anchor, positive) texts about the same topic that share no topic word."""
    from datasets import Dataset

    rng = random.Random(seed)
    rows = {"anchor": [], "positive": []}
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)] if one_per_topic else rng.choice(TOPICS)
        a, p = rng.sample(topic, 2)
        rows["anchor"].append(" ".join(rng.choices(FILLER, k=2) + [a]))
        rows["positive"].append(" ".join([p] + rng.choices(FILLER, k=rng.randint(2, 6))))
    return Dataset.from_dict(rows)


def build_tiny_encoder(tokenizer, seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertModel(config, add_pooling_layer=False)


# ------------------------------------------------------------------ embeddings


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(rt.mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))
    empty = rt.mean_pool(hidden, torch.zeros_like(mask))  # no token: zeros, not NaN
    assert torch.equal(empty, torch.zeros(1, 2))


def test_encode_is_normalised_and_independent_of_batching(pair_tokenizer):
    encoder = build_tiny_encoder(pair_tokenizer)
    texts = ["the t0w0", "t3w1 of the a and this t3w2 it", "t5w0"]
    together = rt.encode(encoder, pair_tokenizer, texts, batch_size=8)
    alone = np.concatenate([rt.encode(encoder, pair_tokenizer, [t]) for t in texts])
    assert together.shape == (3, 32) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding changes nothing
    raw = rt.encode(encoder, pair_tokenizer, texts, normalize=False)
    np.testing.assert_allclose(
        raw / np.linalg.norm(raw, axis=1, keepdims=True), together, atol=1e-5
    )


def test_cosine_similarity():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]])
    expected = np.array([[1.0, 0.0, -np.sqrt(0.5)], [np.sqrt(0.5), np.sqrt(0.5), -1.0]])
    np.testing.assert_allclose(rt.cosine_similarity(a, b), expected, atol=1e-12)


# ------------------------------------------------------------------ search metrics


def test_ranks_recall_and_mrr_hand_computed():
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # ranking 0, 2, 3, 1
            [0.2, 0.8, 0.7, 0.1],  # ranking 1, 2, 0, 3
            [0.5, 0.5, 0.1, 0.9],  # ranking 3, 0, 1, 2 (tie 0/1: lower index first)
        ]
    )
    relevant = [2, [0, 3], 1]
    assert rt.ranks_of_relevant(scores, relevant) == [[2], [3, 4], [3]]
    assert rt.recall_at_k(scores, relevant, 1) == 0.0
    assert rt.recall_at_k(scores, relevant, 2) == pytest.approx(1 / 3)
    assert rt.recall_at_k(scores, relevant, 3) == pytest.approx((1 + 0.5 + 1) / 3)
    assert rt.recall_at_k(scores, relevant, 4) == 1.0
    assert rt.mean_reciprocal_rank(scores, relevant) == pytest.approx((1 / 2 + 1 / 3 + 1 / 3) / 3)
    metrics = rt.retrieval_metrics(scores, relevant, ks=(1, 3))
    assert set(metrics) == {"recall@1", "recall@3", "mrr"}
    indices, values = rt.top_k(scores, 2)
    assert indices.tolist() == [[0, 2], [1, 2], [3, 0]]
    assert values.tolist() == [[0.9, 0.5], [0.8, 0.7], [0.9, 0.5]]
    with pytest.raises(ValueError, match="relevance"):
        rt.recall_at_k(scores, [0], 1)
    with pytest.raises(ValueError, match="at least one"):
        rt.mean_reciprocal_rank(scores, [0, [], 1])


# ------------------------------------------------------------------ pairs and the loss


def test_tokenize_pairs_and_collator_pad_each_side(pair_tokenizer):
    pairs = rt.tokenize_pairs(make_pairs(4), pair_tokenizer)
    assert {"input_ids", "attention_mask", "pos_input_ids", "pos_attention_mask"} <= set(
        pairs.column_names
    )
    batch = rt.PairCollator(pair_tokenizer)([pairs[i] for i in range(4)])  # text columns dropped
    assert set(batch) == {
        "input_ids", "attention_mask", "token_type_ids",
        "pos_input_ids", "pos_attention_mask", "pos_token_type_ids",
    }  # fmt: skip
    anchors, positives = pairs["input_ids"], pairs["pos_input_ids"]
    assert batch["input_ids"].shape == (4, max(map(len, anchors)))
    assert batch["pos_input_ids"].shape == (4, max(map(len, positives)))
    for i, ids in enumerate(positives):
        assert batch["pos_input_ids"][i, : len(ids)].tolist() == ids
        assert batch["pos_attention_mask"][i].sum() == len(ids)


def test_contrastive_loss_is_multiple_negatives_ranking(pair_tokenizer):
    encoder = build_tiny_encoder(pair_tokenizer)
    model = rt.ContrastiveModel(encoder).eval()
    pairs = rt.tokenize_pairs(make_pairs(5), pair_tokenizer)
    batch = rt.PairCollator(pair_tokenizer)([pairs[i] for i in range(5)])
    out = model(**batch)
    a = F.normalize(rt.mean_pool(encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0], batch["attention_mask"]), dim=-1)  # fmt: skip
    p = F.normalize(rt.mean_pool(encoder(input_ids=batch["pos_input_ids"], attention_mask=batch["pos_attention_mask"])[0], batch["pos_attention_mask"]), dim=-1)  # fmt: skip
    expected_logits = 20.0 * a @ p.T
    assert out.logits.shape == (5, 5)
    torch.testing.assert_close(out.logits, expected_logits)
    torch.testing.assert_close(out.loss, F.cross_entropy(expected_logits, torch.arange(5)))
    assert model(**batch, return_loss=False).loss is None


# ------------------------------------------------------------------ training


def _quick_config(**kw):
    from course_utils.training import TrainConfig

    base = dict(
        num_epochs=4, batch_size=16, lr=5e-3, progress=False, max_length=None, warmup_ratio=0.0
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def pair_data(pair_tokenizer):
    train = rt.tokenize_pairs(make_pairs(256, seed=0), pair_tokenizer)
    val = make_pairs(16, seed=1, one_per_topic=True)
    return train, val


def _recall_at_1(model, tokenizer, val) -> float:
    queries = rt.encode(model, tokenizer, val["anchor"])
    documents = rt.encode(model, tokenizer, val["positive"])
    return rt.recall_at_k(queries @ documents.T, list(range(len(val))), 1)


def test_contrastive_training_with_train_and_reload(pair_tokenizer, pair_data, tmp_path):
    from course_utils.models import load_encoder
    from course_utils.training import train

    train_pairs, val = pair_data
    model = rt.ContrastiveModel(build_tiny_encoder(pair_tokenizer))
    before = _recall_at_1(model, pair_tokenizer, val)
    history = train(
        model, train_pairs, None, _quick_config(), pair_tokenizer,
        data_collator=rt.PairCollator(pair_tokenizer),
    )  # fmt: skip
    losses = [row["loss"] for row in history.steps]
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    after = _recall_at_1(model, pair_tokenizer, val)
    assert after >= before + 0.4 and after >= 0.75
    model.save_pretrained(tmp_path / "encoder", pair_tokenizer)
    encoder, tokenizer = load_encoder(tmp_path / "encoder", device="cpu")
    np.testing.assert_allclose(
        rt.encode(encoder, tokenizer, val["anchor"]),
        rt.encode(model, pair_tokenizer, val["anchor"]),
        atol=1e-6,
    )


def test_contrastive_training_with_trainer(pair_tokenizer, pair_data, tmp_path):
    from course_utils.training import make_trainer

    train_pairs, val = pair_data
    model = rt.ContrastiveModel(build_tiny_encoder(pair_tokenizer))
    val_pairs = rt.tokenize_pairs(val, pair_tokenizer)
    trainer = make_trainer(
        model, train_pairs, val_pairs, _quick_config(output_dir=tmp_path), pair_tokenizer,
        data_collator=rt.PairCollator(pair_tokenizer),
    )  # fmt: skip
    before_loss = trainer.evaluate()["eval_loss"]
    before = _recall_at_1(model, pair_tokenizer, val)
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < 0.5 * before_loss
    assert _recall_at_1(model, pair_tokenizer, val) >= before + 0.4


# ------------------------------------------------------------------ the real MiniLM


@pytest.fixture(scope="module")
def minilm():
    from course_utils.models import load_encoder

    return load_encoder("minilm", device="cpu")


PARAPHRASES = [
    ("A man is playing a guitar.", "Someone plays an instrument on stage."),
    (
        "Stocks fell sharply after weak bank earnings.",
        "Shares dropped as banks reported poor results.",
    ),
    (
        "Heavy rain is expected in the north tomorrow.",
        "Forecasters warn of storms in northern areas.",
    ),
    ("The team won the cup final 2-1.", "The side lifted the trophy after a narrow victory."),
]


@pytest.mark.assets
def test_minilm_embeddings_find_paraphrases(minilm):
    encoder, tokenizer = minilm
    queries = rt.encode(encoder, tokenizer, [a for a, _ in PARAPHRASES])
    documents = rt.encode(encoder, tokenizer, [b for _, b in PARAPHRASES])
    metrics = rt.retrieval_metrics(queries @ documents.T, list(range(len(PARAPHRASES))), ks=(1,))
    assert metrics == {"recall@1": 1.0, "mrr": 1.0}


@pytest.mark.assets
def test_minilm_embeddings_equal_sentence_transformers(minilm):
    """The published model's own pipeline (Transformer -> mean Pooling -> Normalize)."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer, models

    from course_utils.assets import asset_path

    path = str(asset_path("minilm"))
    reference = SentenceTransformer(
        modules=[
            models.Transformer(path, max_seq_length=rt.MINILM_MAX_LENGTH),
            models.Pooling(384, "mean"),
            models.Normalize(),
        ],
        device="cpu",
    )
    texts = [a for a, _ in PARAPHRASES] + ["ok", " ".join(["word"] * 400)]  # the last truncated
    encoder, tokenizer = minilm
    np.testing.assert_allclose(
        rt.encode(encoder, tokenizer, texts, batch_size=3), reference.encode(texts), atol=1e-5
    )
