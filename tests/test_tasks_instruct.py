"""Tests of `course_utils.tasks.instruct` (answer-only loss, generation, ROUGE/BLEU/chrF)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.tasks import instruct as it

# SmolLM2-135M-Instruct's chat template, verbatim (ChatML with a default system message)
SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# a template whose generation prompt ends with a space: "Answer: " + "Paris" tokenises as
# "Answer:" + " Paris", so the prompt's tokens are not a prefix of the conversation's
SPACE_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'Question: ' + "
    "message['content'] + '\n' }}{% else %}{{ 'Answer: ' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Answer: ' }}{% endif %}"
)
# a template that renders the final answer differently from the generation prompt
ODD_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'Q: ' + "
    "message['content'] + '\n' }}{% else %}{{ 'A (final): ' + message['content'] + "
    "'<|im_end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'A: ' }}{% endif %}"
)

PAIRS = [
    ("What colour is the sky?", "blue"),
    ("What colour is grass?", "green"),
    ("Capital of France?", "Paris"),
    ("Capital of Italy?", "Rome"),
    ("Translate 你好 to English.", "hello"),
    ("Translate 谢谢 to English.", "thank you"),
    ("Write a headline: stocks fell on Monday.", "Stocks fall"),
    ("Write a headline: rain hit the north.", "Rain hits north"),
]
SYSTEM = "Be brief."


def _train_bpe(corpus):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",  # as SmolLM2: the pad token is the end-of-turn token
        unk_token="<|endoftext|>",
    )


@pytest.fixture(scope="module")
def chat_tokenizer():
    """A byte-level BPE tokenizer (like SmolLM2's) with SmolLM2's chat template."""
    corpus = [p + " " + a for p, a in PAIRS] * 5 + [
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
        "system user assistant Be brief. Question: Answer: Q: A (final): A:",
    ]
    tokenizer = _train_bpe(corpus)
    tokenizer.chat_template = SMOL_TEMPLATE
    return tokenizer


def _labelled(tokenizer, example) -> str:
    ids = [
        i for i, label in zip(example["input_ids"], example["labels"], strict=True) if label != -100
    ]
    assert ids == [label for label in example["labels"] if label != -100]
    return tokenizer.decode(ids)


# ------------------------------------------------------------------ formatting and labels


def test_chat_messages_and_end_of_turn(chat_tokenizer):
    assert it.chat_messages("Hi", "Hello", system="S") == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    with pytest.raises(ValueError, match="end with a user"):
        it.chat_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with pytest.raises(ValueError, match="system"):
        it.chat_messages([{"role": "system", "content": "x"}, {"role": "user", "content": "a"}], system="y")  # fmt: skip
    assert it.end_of_turn_id(chat_tokenizer) == chat_tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_loss_only_on_answer_and_end_of_turn(chat_tokenizer):
    example = it.build_example(chat_tokenizer, "Capital of France?", " Paris ", system=SYSTEM)
    prompt_ids = chat_tokenizer(
        it.render_prompt(chat_tokenizer, "Capital of France?", SYSTEM), add_special_tokens=False
    )["input_ids"]
    n = len(prompt_ids)
    assert example["input_ids"][:n] == prompt_ids  # the prompt, generation prompt included...
    assert example["labels"][:n] == [-100] * n  # ...carries -100 everywhere
    assert _labelled(chat_tokenizer, example) == "Paris<|im_end|>"  # answer stripped, + end
    assert example["labels"][-1] == -100  # the newline after <|im_end|> is not trained
    assert example["attention_mask"] == [1] * len(example["input_ids"])
    # the default system message of the template is part of the prompt too
    default = it.build_example(chat_tokenizer, "Capital of France?", "Paris")
    assert "SmolLM" in chat_tokenizer.decode(default["input_ids"])
    assert _labelled(chat_tokenizer, default) == "Paris<|im_end|>"


def test_multi_turn_trains_only_the_last_answer(chat_tokenizer):
    messages = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "Capital of Italy?"},
    ]
    example = it.build_example(chat_tokenizer, messages, "Rome")
    assert _labelled(chat_tokenizer, example) == "Rome<|im_end|>"


def test_prompt_not_a_token_prefix_falls_back_to_offsets(chat_tokenizer):
    tokenizer = _train_bpe(["Question: Answer: Paris Rome capital"] * 5)
    tokenizer.chat_template = SPACE_TEMPLATE
    prompt_ids = tokenizer(it.render_prompt(tokenizer, "capital?"), add_special_tokens=False)[
        "input_ids"
    ]
    example = it.build_example(tokenizer, "capital?", "Paris")
    assert example["input_ids"][: len(prompt_ids)] != prompt_ids  # the case being tested
    # the token " Paris" holds the prompt's last space and the answer: it is labelled
    assert _labelled(tokenizer, example) == " Paris<|im_end|>"
    assert "Answer:" not in _labelled(tokenizer, example)
    tokenizer.chat_template = ODD_TEMPLATE
    example = it.build_example(tokenizer, "capital?", "Paris")
    assert _labelled(tokenizer, example).strip() == "Paris<|im_end|>"
    assert it.end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_max_length_drop_truncate_and_report(chat_tokenizer):
    full = it.build_example(chat_tokenizer, "Capital of France?", "thank you", system=SYSTEM)
    n, n_answer = len(full["input_ids"]), sum(label != -100 for label in full["labels"])
    assert it.build_example(chat_tokenizer, "Capital of France?", "thank you", SYSTEM, n) == full
    assert (
        it.build_example(chat_tokenizer, "Capital of France?", "thank you", SYSTEM, n - 1) is None
    )
    cut = it.build_example(
        chat_tokenizer, "Capital of France?", "thank you", SYSTEM, n - 2, on_overflow="truncate"
    )
    assert len(cut["input_ids"]) == n - 2
    assert 0 < sum(label != -100 for label in cut["labels"]) < n_answer  # part of the answer
    no_answer = n - 1 - n_answer  # all answer tokens and the end of turn cut away
    assert it.build_example(chat_tokenizer, "Capital of France?", "thank you", SYSTEM, no_answer, "truncate") is None  # fmt: skip
    with pytest.raises(ValueError, match="on_overflow"):
        it.build_example(chat_tokenizer, "x", "y", on_overflow="left")

    from datasets import Dataset

    data = Dataset.from_dict(
        {
            "prompt": ["Capital of France?", "Write a headline: " + "stocks fell " * 20],
            "answer": ["Paris", "Stocks fall"],
        }  # fmt: skip
    )
    with pytest.warns(UserWarning, match="1 of 2 examples"):
        tokenized = it.tokenize_instructions(data, chat_tokenizer, system=SYSTEM, max_length=n)
    assert tokenized["example_index"] == [0]
    with pytest.raises(ValueError, match="no example fits"):
        it.tokenize_instructions(data, chat_tokenizer, max_length=5)


def test_truncate_text(chat_tokenizer):
    text = "Write a headline: stocks fell on Monday."
    short = it.truncate_text(chat_tokenizer, text, 3)
    assert text.startswith(short) and len(chat_tokenizer(short)["input_ids"]) == 3
    assert it.truncate_text(chat_tokenizer, text, 1000) == text


def test_collator_pads_labels_with_minus_100(chat_tokenizer):
    examples = [it.build_example(chat_tokenizer, p, a, SYSTEM) for p, a in PAIRS[:3]]
    batch = it.instruction_collator(chat_tokenizer)(examples)
    width = max(len(e["input_ids"]) for e in examples)
    assert batch["labels"].shape == batch["input_ids"].shape == (3, width)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        assert (
            batch["labels"][row, n:].eq(-100).all() and batch["attention_mask"][row, n:].eq(0).all()
        )
        assert batch["labels"][row, :n].tolist() == example["labels"]


# ------------------------------------------------------------------ metrics


def test_rouge_keeps_chinese_and_matches_rouge_score_on_english():
    from rouge_score import rouge_scorer

    english = [
        ("the cats sat on the mat", "a cat sat on a mat"),
        ("Stocks fall", "stocks fell sharply"),
    ]
    for use_stemmer in (False, True):
        default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=use_stemmer)
        ours = it.rouge([p for p, _ in english], [r for _, r in english], use_stemmer)
        for key in ours:
            expected = np.mean([default.score(r, p)[key].fmeasure for p, r in english])
            assert ours[key] == pytest.approx(expected)
    # Chinese: the default tokenizer sees no token at all; ours one per character
    chinese = it.rouge(["我爱北京"], ["我爱北京天安门"])
    assert chinese["rouge1"] == pytest.approx(8 / 11)  # P 4/4, R 4/7
    assert chinese["rouge2"] == pytest.approx(2 / 3)  # P 3/3, R 3/6
    assert (
        rouge_scorer.RougeScorer(["rouge1"]).score("我爱北京天安门", "我爱北京")["rouge1"].fmeasure
        == 0
    )
    assert it.rouge(["完全不同"], ["我爱北京"])["rouge1"] == 0.0
    assert it.MixedTokenizer().tokenize("GDP 增长 5.2%") == ["gdp", "增", "长", "5", "2"]


def test_bleu_and_chrf():
    same = it.bleu_chrf(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert same["bleu"] == pytest.approx(100) and same["chrf"] == pytest.approx(100)
    # unsegmented Chinese: one "word" per sentence for 13a, characters for "zh"
    zh = it.bleu_chrf(["我爱北京天安门"], ["我爱北京天安门广场"], target_lang="zh")
    assert zh["bleu"] > 50
    assert it.bleu_chrf(["我爱北京天安门"], ["我爱北京天安门广场"], target_lang="en")["bleu"] == 0
    several = it.bleu_chrf(["the cat sat on the mat"], [["a dog", "the cat sat on the mat"]])
    assert several["bleu"] == pytest.approx(100)
    with pytest.raises(ValueError, match="references"):
        it.bleu_chrf(["a"], [])


# ------------------------------------------------------------------ training and generation


def build_tiny_chat_lm(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,  # generation must stop because of the end-of-turn token
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None
    return model


def _quick_config(**kw):
    from course_utils.training import TrainConfig

    base = dict(
        num_epochs=60, batch_size=8, lr=1e-2, progress=False, max_length=None, warmup_ratio=0.0
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def instruction_data(chat_tokenizer):
    from datasets import Dataset

    data = Dataset.from_dict({"prompt": [p for p, _ in PAIRS], "answer": [a for _, a in PAIRS]})
    return it.tokenize_instructions(data, chat_tokenizer, system=SYSTEM)


def test_instruction_tuning_with_train_then_generate(chat_tokenizer, instruction_data):
    from course_utils.training import train

    model = build_tiny_chat_lm(chat_tokenizer)
    history = train(
        model, instruction_data, None, _quick_config(), chat_tokenizer,
        data_collator=it.instruction_collator(chat_tokenizer),
    )  # fmt: skip
    assert history.steps[-1]["loss"] < 0.05 * history.steps[0]["loss"]
    prompts = [p for p, _ in PAIRS]
    answers, seconds = it.generate_answers(
        model, chat_tokenizer, prompts, system=SYSTEM, max_new_tokens=12, batch_size=3
    )
    assert answers == [a for _, a in PAIRS]  # memorised, and stopped at <|im_end|>
    assert seconds > 0 and model.generation_config.eos_token_id is None  # restored


def test_instruction_tuning_with_trainer(chat_tokenizer, instruction_data, tmp_path):
    from course_utils.training import make_trainer

    model = build_tiny_chat_lm(chat_tokenizer)
    trainer = make_trainer(
        model, instruction_data, instruction_data, _quick_config(num_epochs=10, output_dir=tmp_path),
        chat_tokenizer, data_collator=it.instruction_collator(chat_tokenizer),
    )  # fmt: skip
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < 0.5 * before


def test_instruction_tuning_with_lora(chat_tokenizer, instruction_data):
    from course_utils.training import train

    model = build_tiny_chat_lm(chat_tokenizer)
    frozen = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    lora = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    history = train(
        model, instruction_data, instruction_data, _quick_config(num_epochs=20, lr=0.1, lora=lora),
        chat_tokenizer,
    )  # fmt: skip
    # rank-8 adapters on the attention of a *random* model move its loss only a little
    assert history.evals[-1]["loss"] < 0.97 * history.evals[0]["loss"]
    assert hasattr(history.model, "peft_config")
    q_proj = model.model.layers[0].self_attn.q_proj
    assert torch.equal(q_proj.base_layer.weight, frozen)  # the base weights stay frozen
    assert q_proj.lora_B["default"].weight.abs().sum() > 0  # the adapters trained
    answers, _ = it.generate_answers(
        history.model, chat_tokenizer, ["Capital of France?"], SYSTEM, 4
    )
    assert len(answers) == 1


# ------------------------------------------------------------------ the real SmolLM2 tokenizer


@pytest.mark.assets
def test_smollm2_template_prompt_is_a_token_prefix():
    from course_utils.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2")
    eot = it.end_of_turn_id(tokenizer)
    assert tokenizer.convert_ids_to_tokens(eot) == "<|im_end|>"
    history = [
        {"role": "user", "content": "Translate 谢谢 to English."},
        {"role": "assistant", "content": "Thank you."},
        {"role": "user", "content": "And 再见?"},
    ]
    answers = ["Paris", "New York, 1990.", "北京大学", "\nline one\nline two", "42", "Goodbye!"]
    for prompt in ["Write a headline: Stocks fell.", history]:
        for system in (None, "Answer in English."):
            rendered = it.render_prompt(tokenizer, prompt, system)
            prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
            for answer in answers:
                example = it.build_example(tokenizer, prompt, answer, system)
                n = len(prompt_ids)
                assert example["input_ids"][:n] == prompt_ids  # the fast path holds
                assert example["labels"][:n] == [-100] * n
                labelled = [x for x in example["labels"] if x != -100]
                assert labelled == example["input_ids"][n : n + len(labelled)]
                assert tokenizer.decode(labelled) == answer.strip() + "<|im_end|>"
