"""In-place perturbation: bit-exact restore in three dtypes, interpolation end points, adapters, errors."""

from __future__ import annotations

import pytest
import torch

from safety_bench.landscape.directions import direction_for, unique_parameters
from safety_bench.landscape.perturb import TOWARDS, CheckpointMismatch, Perturber


def _load(folder, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def tiny_b(tmp_path_factory):
    from helpers.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tinyb") / "model", seed=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_restore_is_bit_exact_after_many_points(tiny_model, tiny_b, dtype):
    model = _load(tiny_model, dtype)
    before = _snapshot(model)
    pert = Perturber(model, seeds=[0, 1], towards=str(tiny_b))
    gen = torch.Generator().manual_seed(0)
    for i in range(25):
        a, b, t = (torch.rand(3, generator=gen) - 0.5).tolist()
        pert.apply({0: a, 1: b, TOWARDS: t * 3} if i % 2 else {0: a})
        assert pert.max_abs_diff() > 0
        pert.restore()
    assert pert.max_abs_diff() == 0.0
    for n, p in model.named_parameters():
        assert p.dtype == dtype and torch.equal(p, before[n]), n


def test_point_is_theta_plus_alpha_d_in_fp32_and_order_independent(tiny_model):
    model = _load(tiny_model)
    before = _snapshot(model)
    pert = Perturber(model, seeds=[3])
    pert.apply({3: 0.3})
    pert.apply({3: -0.1})  # every point is computed from the original, not from the previous point
    for name, p in unique_parameters(model):
        if "norm" in name:
            assert torch.equal(p, before[name])
        else:
            expected = before[name] + -0.1 * direction_for(3, name, before[name])
            torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)  # fp32 arithmetic
    uncached = Perturber(_load(tiny_model), seeds=[3], cache_directions=False, original_on="host")
    uncached.apply({3: -0.1})
    for (n, p), (_, q) in zip(unique_parameters(model), unique_parameters(uncached.model), strict=True):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interpolation_end_points(tiny_model, tiny_b, dtype):
    model = _load(tiny_model, dtype)
    a = _snapshot(model)
    b = _snapshot(_load(tiny_b, dtype))
    pert = Perturber(model, towards=str(tiny_b))
    pert.apply({TOWARDS: 1.0})
    for n, p in model.named_parameters():
        assert torch.equal(p, b[n]), n
    pert.apply({TOWARDS: 0.5})
    name = "model.layers.0.mlp.up_proj.weight"
    mid = model.get_parameter(name)
    assert torch.allclose(mid.float(), (a[name].float() + b[name].float()) / 2, atol=1e-2)
    pert.apply({TOWARDS: 0.0})
    for n, p in model.named_parameters():
        assert torch.equal(p, a[n]), n


def test_checkpoint_mismatch_names_the_tensor(tiny_model, tmp_path):
    from helpers.models import build_tiny_model

    other = build_tiny_model(tmp_path / "wide", hidden=48)
    with pytest.raises(CheckpointMismatch, match=r"model\.embed_tokens\.weight.*shape"):
        Perturber(_load(tiny_model), towards=str(other))
    deeper = build_tiny_model(tmp_path / "deep", layers=3)
    with pytest.raises(CheckpointMismatch, match="layers.2"):
        Perturber(_load(tiny_model), towards=str(deeper))


def test_lora_adapter_merged_delta(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = _load(tiny_model)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = {n: p.detach().clone() for n, p in peft_model.merge_and_unload().named_parameters()}
    model = _load(tiny_model)
    pert = Perturber(model, towards=str(tmp_path / "adapter"))
    assert set(pert.targets) == {n for n in merged if "q_proj" in n or "v_proj" in n}
    pert.apply({TOWARDS: 1.0})
    for n, p in model.named_parameters():
        assert torch.allclose(p, merged[n], atol=1e-6), n
    pert.restore()
    assert pert.max_abs_diff() == 0.0


def test_reserved_memory_keeps_directions_out_of_the_cache_without_changing_the_point(tiny_model):
    from safety_bench.landscape.perturb import free_bytes

    cached = Perturber(_load(tiny_model), seeds=[5])
    cached.warm([5])
    reserved = Perturber(_load(tiny_model), seeds=[5])
    reserved.reserve_bytes = free_bytes(reserved.device)  # generation needs all of it
    reserved.warm([5])
    assert 5 in cached._cache and 5 not in reserved._cache
    cached.apply({5: 0.2})
    reserved.apply({5: 0.2})  # regenerated tensor by tensor: the same weights
    for (n, p), (_, q) in zip(unique_parameters(cached.model), unique_parameters(reserved.model), strict=True):
        assert torch.equal(p, q), n


def test_one_memory_rule_and_one_cache_policy(monkeypatch):
    import safety_bench.landscape.perturb as perturb
    from safety_bench.landscape.perturb import MEMORY_MARGIN, DirectionCache, fits

    assert fits(85, 100) and not fits(86, 100) and not fits(80, 100, reserve=6)
    assert MEMORY_MARGIN == 0.15
    cache = DirectionCache(None, torch.device("cpu"), nbytes=100)
    # free memory as the device would report it: 300 bytes less what the cache holds (room for two seeds)
    monkeypatch.setattr(perturb, "free_bytes", lambda device: 300 - 100 * len(cache.seeds()))
    built = []

    def build(seed):
        return lambda: built.append(seed) or {"w": torch.full((1,), float(seed))}

    for seed in (0, 1, 0, 2):  # 0 used again after 1: 1 is the least recently used when 2 needs room
        assert cache.get(seed, build(seed))["w"].item() == seed
    assert built == [0, 1, 2] and cache.seeds() == [0, 2] and 1 not in cache
    assert cache.get(3, build(3), reserve=1000) is None  # no room even when empty: regenerate
    assert cache.seeds() == [] and built == [0, 1, 2]
    never = DirectionCache(False, torch.device("cpu"), nbytes=1)
    assert never.get(0, build(0)) is None and built == [0, 1, 2]
    monkeypatch.setattr(perturb, "free_bytes", lambda device: 0)
    always = DirectionCache(True, torch.device("cpu"), nbytes=1 << 40)
    assert always.get(4, build(4)) is not None and 4 in always


def test_copies_stay_on_the_device_only_when_they_fit(monkeypatch):
    import safety_bench.landscape.perturb as perturb
    from safety_bench.landscape.perturb import keep_on

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    monkeypatch.setattr(perturb, "free_bytes", lambda device: 100)
    assert keep_on(gpu, 85) == gpu and keep_on(gpu, 86) == cpu
    assert keep_on(cpu, 10 ** 12) == cpu  # host memory is where a CPU model's copy lives anyway
    assert keep_on(gpu, 10 ** 12, "device") == gpu and keep_on(gpu, 1, "host") == cpu
