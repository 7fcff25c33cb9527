"""A tiny random model whose loss can actually move under a few LoRA steps (shared by test_training_*)."""

from __future__ import annotations

from pathlib import Path

from helpers.models import build_tiny_model


def build_trainable_tiny(folder: Path) -> Path:
    """conftest's tiny Llama with its (tied) embeddings scaled up: with the default 0.02 init, the final norm
    caps the logits near zero, so adapters on the inner layers could barely change the loss."""
    import torch
    from transformers import AutoModelForCausalLM

    build_tiny_model(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(30.0)
    model.save_pretrained(folder)
    return folder
