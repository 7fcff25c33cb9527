"""How a sweep generates on its device: the batch size and the KV cache.

A grid point is one fixed set of prompts answered greedily, so on a GPU the fastest way is all of them in
one batch (decode reads every weight once per step, whatever the batch) with a static KV cache (allocated
once, and on CUDA transformers then compiles the decode step). `auto` picks that where it is possible:

- batch size: on a GPU, as many sequences as the free memory holds after the weights, the saved original
  and the cached directions (each sequence costs its KV cache at full length plus a logits row), capped
  at `MAX_AUTO_BATCH`; on the CPU, `CPU_BATCH` (compute-bound there: the demo's 88 prompts took the
  same time per point at batch 32 and 88, 14–16 s, and 15–18 s at 16).
- KV cache: static on a GPU when the architecture supports it (`_can_compile_fullgraph`), dynamic
  otherwise; on the CPU static measured several times slower (benchmarks/RESULTS.md).
Neither changes what a greedy point generates beyond floating-point noise, so neither is part of a
landscape's identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from safety_bench.landscape.perturb import fits

CPU_BATCH = 32
MAX_AUTO_BATCH = 512
CONTEXT_TOKENS = 512  # prompt-side budget per sequence (chat template + system prompt + instruction)
MEMORY_FRACTION = 0.85  # of the free GPU memory, leaving room for activations and the allocator
KV_CACHES = ("auto", "static", "dynamic")


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Bytes of K and V cached per token over all layers."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def auto_batch_size(model: torch.nn.Module, max_gen_toks: int, free_bytes: int | None = None,
                    context_tokens: int = CONTEXT_TOKENS) -> int:
    """The batch size `auto` means for this model on its device (see the module docstring)."""
    device = next(model.parameters()).device
    if device.type != "cuda" and free_bytes is None:
        return CPU_BATCH
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return batch_that_fits(free_bytes, per_sequence_bytes(model, max_gen_toks, context_tokens))


def batch_that_fits(free_bytes: int, per_sequence: int) -> int:
    return max(1, min(MAX_AUTO_BATCH, int(free_bytes * MEMORY_FRACTION) // per_sequence))


def per_sequence_bytes(model: torch.nn.Module, max_gen_toks: int, context_tokens: int = CONTEXT_TOKENS) -> int:
    """Device memory one sequence of a generation batch needs (see `sequence_bytes`)."""
    return sequence_bytes(model.config, next(model.parameters()).dtype, max_gen_toks, context_tokens)


def sequence_bytes(config: Any, dtype: torch.dtype, max_gen_toks: int, context_tokens: int = CONTEXT_TOKENS) -> int:
    """One sequence's KV cache at full length plus the step's logits and scores in fp32."""
    return kv_bytes_per_token(config, dtype) * (context_tokens + max_gen_toks) + 2 * config.vocab_size * 4


@dataclass
class MemoryPlan:
    """What a GPU sweep will hold, estimated before loading the model (`landscape --dry-run`)."""

    free_bytes: int
    weight_bytes: int  # the model, and once more for the saved original (bit-exact restore)
    original_on_device: bool
    sequence_bytes: int
    batch: int
    direction_bytes: int  # one fp32 direction
    cache_directions: bool

    def lines(self) -> list[str]:
        gb = 1e9
        return [
            f"GPU memory plan (estimate): {self.free_bytes / gb:.1f} GB free; weights {self.weight_bytes / gb:.1f} GB "
            f"+ original copy {self.weight_bytes / gb:.1f} GB ({'on the GPU' if self.original_on_device else 'in host memory: slower restores'})",
            f"  batch {self.batch} x {self.sequence_bytes / 1e6:.0f} MB (KV cache at full length + logits) = "
            f"{self.batch * self.sequence_bytes / gb:.1f} GB",
            f"  fp32 direction {self.direction_bytes / gb:.1f} GB: "
            + ("cached on the GPU" if self.cache_directions else "regenerated at every point (no room beside the batch)"),
        ]


def plan_gpu_memory(config: Any, dtype: torch.dtype, n_params: int, free_bytes: int, max_gen_toks: int,
                    n_prompts: int, batch_size: int | str = "auto") -> MemoryPlan:
    """The same decisions the sweep makes after loading (`auto_batch_size`, the perturber's original copy and
    direction cache with its reserve), made from the config and the free memory before loading."""
    weights = n_params * torch.tensor([], dtype=dtype).element_size()
    original_on_device = fits(weights, free_bytes - weights)
    left = free_bytes - weights * (2 if original_on_device else 1)
    seq = sequence_bytes(config, dtype, max_gen_toks)
    batch = (min(batch_that_fits(max(left, 0), seq), max(1, n_prompts)) if batch_size == "auto"
             else int(batch_size))
    direction = n_params * 4
    cache = fits(direction, left, reserve=batch * seq)
    return MemoryPlan(free_bytes, weights, original_on_device, seq, batch, direction, cache)


def kv_cache_kwargs(model: torch.nn.Module, requested: str = "auto") -> dict[str, Any]:
    """Generation kwargs selecting the KV cache (empty = transformers' default dynamic cache)."""
    if requested not in KV_CACHES:
        raise ValueError(f"kv cache {requested!r}: choose one of {', '.join(KV_CACHES)}")
    supported = bool(getattr(model, "_can_compile_fullgraph", False))
    if requested == "static" and not supported:
        raise ValueError(f"{type(model).__name__} does not support a static KV cache in this transformers "
                         "version; use --kv-cache dynamic (or auto)")
    on_gpu = next(model.parameters()).device.type == "cuda"
    if requested == "static" or (requested == "auto" and on_gpu and supported):
        return {"cache_implementation": "static"}
    return {}
