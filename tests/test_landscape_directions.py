"""Directions: a pure function of (seed, name, shape), per-tensor normalised, norms excluded, ties once."""

from __future__ import annotations

import math

import pytest
import torch

from safety_bench.landscape.directions import (
    MASK32,
    Direction,
    Selection,
    direction_for,
    direction_values,
    frobenius_norm64,
    gaussian_chunk,
    gaussian_sumsq,
    hash32,
    parse_patterns,
    tensor_keys,
    unique_parameters,
)


def _py_fmix(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & MASK32
    x ^= x >> 15
    x = (x * 0x7FEB352D) & MASK32
    return x ^ (x >> 15)


def _py_hash(index: int, a: int, b: int) -> int:
    x = _py_fmix((index & MASK32) ^ a)
    x ^= ((index >> 32) + b) & MASK32
    return _py_fmix(x)


def test_tensor_hash_matches_exact_integer_arithmetic():
    # The int64 tensor path must equal unbounded-integer mod-2^32 arithmetic, including indices >= 2^32.
    idx = [0, 1, 2, 12345, MASK32 - 1, MASK32, MASK32 + 7, (5 << 32) + 99]
    a, b, _, _ = tensor_keys(7, "layer.weight")
    got = hash32(torch.tensor(idx, dtype=torch.int64), a, b).tolist()
    assert got == [_py_hash(i, a, b) for i in idx]


def test_same_seed_same_tensor_and_chunking_does_not_matter():
    p = torch.randn(37, 53)
    d1 = direction_for(3, "model.x.weight", p)
    d2 = direction_for(3, "model.x.weight", p.clone(), chunk=100)  # odd chunk: pairs straddle boundaries
    assert torch.equal(d1, d2)
    assert not torch.equal(d1, direction_for(4, "model.x.weight", p))
    assert not torch.equal(d1, direction_for(3, "model.y.weight", p))


@pytest.mark.parametrize("shape", [(37, 53), (6, 5, 4), (11,)])
@pytest.mark.parametrize("chunk", [7, 64, 1 << 22])  # 7: smaller than a row, odd, pairs straddle chunks
def test_any_slice_is_that_slice_of_the_whole_direction(shape, chunk):
    # the vLLM workers ask the one generator for the rows/columns they hold; the HF backend for whole tensors
    p = torch.randn(shape)
    whole = direction_for(9, "m.w", p, chunk=chunk)
    norm = frobenius_norm64(p)
    z_sumsq = gaussian_sumsq(tensor_keys(9, "m.w"), p.numel(), chunk=chunk)
    rows = [(0, shape[0]), (1, 3), (shape[0] - 2, shape[0]), (2, 2)]
    cols = [None] + ([(0, shape[1]), (1, 4), (shape[1] - 1, shape[1])] if len(shape) > 1 else [])
    for r in rows:
        for c in cols:
            want = whole[r[0]:r[1]] if c is None else whole[r[0]:r[1], c[0]:c[1]]
            for known in (None, z_sumsq):
                got = direction_values(9, "m.w", shape, norm, r, c, chunk=chunk, z_sumsq=known)
                assert got.shape == want.shape and torch.equal(got, want), (r, c, known)


def test_keys_do_not_depend_on_python_hash_seed():
    assert tensor_keys(0, "a") == tensor_keys(0, "a")
    assert tensor_keys(0, "a") != tensor_keys(1, "a")
    # pinned value: a change to the derivation would silently change every published landscape
    z = gaussian_chunk(tensor_keys(0, "w"), 0, 4)
    assert z.dtype == torch.float64 and z.shape == (4,)
    assert torch.equal(z, gaussian_chunk(tensor_keys(0, "w"), 0, 4))


def test_values_are_standard_normal():
    from scipy import stats

    z = gaussian_chunk(tensor_keys(11, "big"), 0, 200_001).numpy()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CPU/CUDA comparison needs a GPU")
def test_cpu_and_cuda_agree():
    p = torch.randn(300, 301)
    cpu = direction_for(5, "m.w", p)
    gpu = direction_for(5, "m.w", p.cuda()).cpu()
    idx = torch.arange(0, 1000, dtype=torch.int64)
    keys = tensor_keys(5, "m.w")
    assert torch.equal(hash32(idx, keys[0], keys[1]), hash32(idx.cuda(), keys[0], keys[1]).cpu())
    ulp = torch.finfo(torch.float32).eps * cpu.abs().clamp_min(torch.finfo(torch.float32).tiny)
    assert bool(((cpu - gpu).abs() <= ulp * 2).all())


def test_per_tensor_norm_equals_parameter_norm(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    direction = Direction(0)
    seen = 0
    for name, p in unique_parameters(model):
        d = direction.tensor(name, p)
        if d is None:
            continue
        seen += 1
        assert d.shape == p.shape and d.dtype == torch.float32
        assert math.isclose(d.double().norm().item(), p.double().norm().item(), rel_tol=1e-6)
    assert seen > 5


def test_norm_layers_are_excluded_and_patterns_configurable(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    params = unique_parameters(model)
    norms = [n for n, _ in params if "norm" in n]
    assert norms
    moved = dict(Direction(0).tensors(params))
    assert not any("norm" in n for n in moved)
    everything = dict(Direction(0, Selection(exclude=())).tensors(params))
    assert set(norms) <= set(everything)
    only_attn = dict(Direction(0, Selection(include=("*self_attn*",), exclude=())).tensors(params))
    assert only_attn and all("self_attn" in n for n in only_attn)
    assert parse_patterns("norm|embed") == ("norm", "embed")
    assert parse_patterns("none") == ()
    assert parse_patterns(None, ("norm",)) == ("norm",)


def test_tied_weights_count_once(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)  # built with tie_word_embeddings=True
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    names = [n for n, _ in unique_parameters(model)]
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names

    class Shared(torch.nn.Module):  # two Parameter objects over one storage: still one tensor
        def __init__(self) -> None:
            super().__init__()
            base = torch.randn(4, 4)
            self.a = torch.nn.Parameter(base)
            self.b = torch.nn.Parameter(base)

    assert [n for n, _ in unique_parameters(Shared())] == ["a"]
