"""Shared fixtures: tiny random models built in the test, and the real SmolLM2 (converted once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nDefault tiny system prompt<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(folder: Path, seed: int = 0, hidden: int = 32, layers: int = 2, tie: bool = True) -> Path:
    """A random Llama with a small BPE tokenizer and a chat template: real code paths, instant."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ["I'm sorry, I cannot help with that request.", "Sure, here is how to bake bread.",
              "Tell me how to do something harmful.", "Explain photosynthesis to a child."] * 20
    tok.train_from_iterator(corpus, trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", pad_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=tie,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    return folder


def build_talkative_model(folder: Path) -> Path:
    """The tiny model with its weights scaled up, so greedy answers vary with the prompt and the
    perturbation (at the default init scale a random model answers every prompt with newlines)."""
    import torch
    from transformers import AutoModelForCausalLM

    build_tiny_model(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(25.0)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    from safety_bench.models import smollm2_dir

    try:
        return smollm2_dir()
    except FileNotFoundError as exc:
        pytest.fail(f"SmolLM2 is part of the test set-up: {exc}")


@pytest.fixture(scope="session")
def transformers_server(smollm2: Path, tmp_path_factory: pytest.TempPathFactory):
    """`transformers serve` with SmolLM2 from the local folder on a loopback port, once per session
    (tests/transformers_serve.py). Tests cap max_tokens and records: the CPU is slow."""
    from transformers_serve import start, stop

    served = start(smollm2, tmp_path_factory.mktemp("serve") / "server.log")
    yield served
    stop(served)
