"""Shared pytest fixtures: tiny random BERT / Llama models and a small synthetic sentiment set.

Everything here is built offline in milliseconds: the tokenizer from a vocabulary file written
to a temporary folder, the models from small configs with random weights.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import sys
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest-xdist (`-n 2` in pyproject's addopts) runs two test workers side by side. Each worker, and
# every process it starts (notebook kernels, torchrun jobs), gets an equal share of the cores, so
# the two do not oversubscribe them (README, "What the test command runs", has the measurements).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads per worker: `OMP_NUM_THREADS` when set, else an equal share of the cores."""
    return int(os.environ.get("OMP_NUM_THREADS") or max(1, CORES // workers))


if WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(threads_per_worker(WORKERS))
    if "torch" in sys.modules:  # a plugin imported it before this file: too late for the variable
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
# No test reads or writes the repository's runs/ (Trainer folders, caches, saved models).
os.environ["COURSE_RUNS"] = tempfile.mkdtemp(prefix="course-runs-tests-")
atexit.register(shutil.rmtree, os.environ["COURSE_RUNS"], True)

POSITIVE = ["good", "great", "fine", "lovely", "superb", "fun", "moving", "smart"]
NEGATIVE = ["bad", "awful", "dull", "boring", "weak", "poor", "tedious", "silly"]
NEUTRAL = ["the", "a", "movie", "film", "plot", "actors", "was", "is", "very", "and", "story"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """A BERT WordPiece tokenizer over a 40-word vocabulary (no hub access needed)."""
    from transformers import BertTokenizer, BertTokenizerFast

    words = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL
    try:  # transformers 5: the tokenizer is built from the vocabulary itself
        tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)
    except TypeError:  # transformers 4: from a vocab.txt file
        vocab = tmp_path_factory.mktemp("tiny_tokenizer") / "vocab.txt"
        vocab.write_text("\n".join(words) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    assert len(tokenizer) == len(words), "the tiny tokenizer lost its vocabulary"
    return tokenizer


def _sentence(rng: random.Random, label: int) -> str:
    words = rng.choices(NEUTRAL, k=rng.randint(2, 12))
    polar = POSITIVE if label == 1 else NEGATIVE
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randint(0, len(words)), rng.choice(polar))
    return " ".join(words)


def make_sentiment_dataset(n: int, seed: int = 0):
    """A `datasets.Dataset` with `text` and `label` columns, learnable from keywords."""
    from datasets import Dataset

    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return Dataset.from_dict({"text": [_sentence(rng, y) for y in labels], "label": labels})


@pytest.fixture
def sentiment_data():
    """Train (64) and validation (32) splits of the synthetic sentiment set."""
    return make_sentiment_dataset(64, seed=0), make_sentiment_dataset(32, seed=1)


def build_tiny_bert(tokenizer, seed: int = 0, dropout: float = 0.1):
    """A random 2-layer, 32-wide `BertForSequenceClassification` with 2 labels."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config)


def build_tiny_llama(tokenizer, seed: int = 0):
    """A random 2-layer, 32-wide `LlamaForCausalLM` sharing the tiny tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


@pytest.fixture
def tiny_bert(tiny_tokenizer):
    """(model, tokenizer): a tiny random BERT classifier and its tokenizer."""
    return build_tiny_bert(tiny_tokenizer), tiny_tokenizer


@pytest.fixture
def tiny_llama(tiny_tokenizer):
    """(model, tokenizer): a tiny random Llama causal LM and a tokenizer with a pad token."""
    return build_tiny_llama(tiny_tokenizer), tiny_tokenizer


# -- the notebook SMOKE times (tests/test_notebooks.py records them) --------------------------------
# Collected from the test reports, so they reach the main process from xdist's workers too.
SMOKE_BUDGET_S = 40  # per notebook, on the 2-core reference machine (reported, not asserted)
_smoke_runs: list[dict] = []


def pytest_runtest_logreport(report):
    properties = dict(report.user_properties)
    if report.when == "call" and "smoke_seconds" in properties:
        _smoke_runs.append({"test": report.nodeid.split("[")[-1].rstrip("]")} | properties)


def pytest_terminal_summary(terminalreporter):
    """Each notebook's SMOKE wall time against its budget, its start-up and its slowest cell."""
    if not _smoke_runs:
        return
    workers = terminalreporter.config.getoption("numprocesses", None) or 1  # xdist's -n
    terminalreporter.section(
        f"notebook SMOKE runs (budget {SMOKE_BUDGET_S} s each; {workers} test worker(s) side by "
        f"side, {threads_per_worker(workers)} torch thread(s) per kernel)"
    )
    for run in sorted(_smoke_runs, key=lambda r: r["test"]):
        flag = "" if run["smoke_seconds"] <= SMOKE_BUDGET_S else "  OVER BUDGET"
        terminalreporter.write_line(
            f"{run['test']:<28} {run['smoke_seconds']:6.1f} s  (kernel start and papermill "
            f"{run['smoke_overhead']:4.1f} s; slowest cell {run['smoke_slowest_s']:5.1f} s: "
            f"cell {run['smoke_slowest_cell']}){flag}"
        )
    total = sum(r["smoke_seconds"] for r in _smoke_runs)
    terminalreporter.write_line(f"{'total':<28} {total:6.1f} s for {len(_smoke_runs)} notebooks")
    terminalreporter.write_line(
        f"this machine: fp32 matrix products at {host_gflops():.0f} GFLOP/s on {CORES} cores "
        "(machines of one kind differ up to 3x: compare SMOKE times of runs at similar speeds)"
    )


def host_gflops() -> float:
    """This machine's fp32 matrix-product speed on all its cores, measured after the tests."""
    import torch

    from course_utils.tools import matmul_peak_flops

    threads = torch.get_num_threads()
    torch.set_num_threads(CORES)
    try:
        return matmul_peak_flops(n=2048, reps=5) / 1e9
    finally:
        torch.set_num_threads(threads)
