"""The vLLM worker extension without vLLM: fake workers holding a tiny Llama fused and sharded the vLLM way
must end up with exactly the weights the HF backend gives, fused and sharded afterwards."""

from __future__ import annotations

import math

import pytest
import torch

from safety_bench.harness.perturbed_vllm import VLLMPerturbation, check_data_parallel
from safety_bench.harness.vllm_extension import (
    Layout,
    LayoutError,
    SafetyBenchWorkerExtension,
    plan_parameter,
)
from safety_bench.landscape.directions import (
    Selection,
    direction_for,
    direction_values,
    frobenius_norm64,
    sumsq64,
    unique_parameters,
)
from safety_bench.landscape.perturb import TOWARDS, Perturber

PAD = 64  # vLLM's vocabulary padding


# ---------------------------------------------------------------------- a fake vLLM, written independently

def vllm_layout(hf: dict[str, torch.Tensor], config, rank: int, size: int) -> dict[str, torch.Tensor]:
    """What a vLLM worker of rank `rank` holds for these HF weights: q/k/v and gate/up fused, column
    shards by head, row-parallel shards by input column, the vocabulary padded and split by rank."""
    nkv = config.num_key_value_heads
    out = {}
    for name, t in hf.items():
        if ".k_proj." in name or ".v_proj." in name or ".up_proj." in name:
            continue
        if ".q_proj." in name:
            k, v = hf[name.replace("q_proj", "k_proj")], hf[name.replace("q_proj", "v_proj")]
            if nkv >= size:
                k_part, v_part = k.chunk(size)[rank], v.chunk(size)[rank]
            else:
                head = rank // (size // nkv)
                k_part, v_part = k.chunk(nkv)[head], v.chunk(nkv)[head]
            out[name.replace("q_proj", "qkv_proj")] = torch.cat([t.chunk(size)[rank], k_part, v_part])
        elif ".gate_proj." in name:
            up = hf[name.replace("gate_proj", "up_proj")]
            out[name.replace("gate_proj", "gate_up_proj")] = torch.cat([t.chunk(size)[rank], up.chunk(size)[rank]])
        elif ".o_proj." in name or ".down_proj." in name:
            out[name] = t.chunk(size, dim=1)[rank]
        elif "embed_tokens" in name or "lm_head" in name:
            padded = torch.zeros(math.ceil(t.shape[0] / PAD) * PAD, *t.shape[1:], dtype=t.dtype)
            padded[:t.shape[0]] = t
            out[name] = padded.chunk(size)[rank]
        else:
            out[name] = t
    return {n: t.clone() for n, t in out.items()}


def module_from(tensors: dict[str, torch.Tensor]) -> torch.nn.Module:
    root = torch.nn.Module()
    for name, t in tensors.items():
        *path, leaf = name.split(".")
        mod = root
        for part in path:
            if not hasattr(mod, part):
                mod.add_module(part, torch.nn.Module())
            mod = getattr(mod, part)
        mod.register_parameter(leaf, torch.nn.Parameter(t.clone(), requires_grad=False))
    return root


class FakeWorker(SafetyBenchWorkerExtension):
    def __init__(self, model: torch.nn.Module, rank: int, size: int) -> None:
        self.model = model
        self.rank, self.size = rank, size

    def _sb_model(self):
        return self.model

    def _sb_tp(self):
        return self.rank, self.size


class FakeLLM:
    """`collective_rpc` and `reset_prefix_cache`, as `vllm.LLM` offers them."""

    def __init__(self, workers: list[FakeWorker]) -> None:
        self.workers = workers
        self.resets = 0

    def collective_rpc(self, method: str, args: tuple = (), kwargs: dict | None = None) -> list:
        return [getattr(w, method)(*args, **(kwargs or {})) for w in self.workers]

    def reset_prefix_cache(self) -> bool:
        self.resets += 1
        return True


def _load(folder, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)


def _hf(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in unique_parameters(model)}


def fake_engine(folder, size: int, dtype=torch.float32) -> tuple[FakeLLM, object]:
    model = _load(folder, dtype)
    hf = _hf(model)
    workers = [FakeWorker(module_from(vllm_layout(hf, model.config, r, size)), r, size) for r in range(size)]
    return FakeLLM(workers), model.config


def worker_state(llm: FakeLLM) -> list[dict[str, torch.Tensor]]:
    return [{n: p.detach().clone() for n, p in w.model.named_parameters()} for w in llm.workers]


def max_ulp(a: torch.Tensor, b: torch.Tensor) -> int:
    """Largest distance in units in the last place (same-sign floats; 0 = bit-identical)."""
    view = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}[a.dtype]
    return int((a.view(view).to(torch.int64) - b.view(view).to(torch.int64)).abs().max()) if a.numel() else 0


def expected_after(folder, size, coefficients, dtype=torch.float32, towards=None, selection=None):
    """The HF backend's weights at the point, then fused and sharded the vLLM way."""
    model = _load(folder, dtype)
    seeds = [int(k) for k in coefficients if k != TOWARDS]
    Perturber(model, seeds=seeds, towards=towards, selection=selection).apply(coefficients)
    return [vllm_layout(_hf(model), model.config, r, size) for r in range(size)]


def compare(llm, expected, ulps: int) -> int:
    worst = 0
    for got, want in zip(worker_state(llm), expected, strict=True):
        assert set(got) == set(want)
        for name in want:
            worst = max(worst, max_ulp(got[name], want[name]))
    assert worst <= ulps
    return worst


# ---------------------------------------------------------------------- directions

def test_worker_directions_come_from_the_hf_generator_given_only_shape_and_norm(tiny_model):
    model = _load(tiny_model)
    for name, p in unique_parameters(model):
        norm = math.sqrt(sumsq64(p))
        assert norm == frobenius_norm64(p)
        got = direction_values(5, name, p.shape, norm, chunk=1000)  # chunking never changes values
        assert torch.equal(got, direction_for(5, name, p))


@pytest.mark.parametrize("size", [2, 4])
def test_cached_and_regenerated_shards_are_the_same_under_the_shared_cache_policy(tiny_model, size):
    from safety_bench.landscape.perturb import DirectionCache

    runs = {}
    for mode in (True, False):
        llm, config = fake_engine(tiny_model, size)
        VLLMPerturbation(llm, config, seeds=[0, 3], cache_directions=mode).apply({0: 0.2, 3: -0.3})
        assert all(isinstance(w._sb()._cache, DirectionCache) for w in llm.workers)
        assert llm.workers[0].sb_info()["cached_seeds"] == ([0, 3] if mode else [])
        runs[mode] = worker_state(llm)
    for cached, regenerated in zip(runs[True], runs[False], strict=True):
        assert all(torch.equal(cached[n], regenerated[n]) for n in cached)


# ---------------------------------------------------------------------- TP = 1: bit-exact

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_tp1_fused_weights_equal_hf_weights_fused(tiny_model, dtype):
    llm, config = fake_engine(tiny_model, 1, dtype)
    before = worker_state(llm)
    pert = VLLMPerturbation(llm, config, seeds=[0, 1])
    coefficients = {0: 0.3, 1: -0.2}
    pert.apply(coefficients)
    compare(llm, expected_after(tiny_model, 1, coefficients, dtype), ulps=0)
    assert pert.point == {"0": 0.3, "1": -0.2}
    assert pert.max_abs_diff() > 0
    pert.restore()
    assert pert.max_abs_diff() == 0.0
    for got, want in zip(worker_state(llm), before, strict=True):
        assert all(torch.equal(got[n], want[n]) for n in want)
    assert llm.resets == 2  # one prefix-cache reset per weight change


def test_padding_rows_of_the_vocabulary_never_move(tiny_model):
    llm, config = fake_engine(tiny_model, 1)
    VLLMPerturbation(llm, config, seeds=[0], selection=Selection(exclude=())).apply({0: 0.5})
    emb = dict(llm.workers[0].model.named_parameters())["model.embed_tokens.weight"]
    assert emb.shape[0] % PAD == 0 and emb.shape[0] > config.vocab_size
    assert torch.count_nonzero(emb[config.vocab_size:]) == 0


# ---------------------------------------------------------------------- simulated tensor parallelism

@pytest.mark.parametrize("size", [2, 4])  # 4 > 2 KV heads: k/v heads replicated over ranks
def test_tensor_parallel_shards_equal_hf_weights_sharded(tiny_model, size):
    llm, config = fake_engine(tiny_model, size)
    before = worker_state(llm)
    pert = VLLMPerturbation(llm, config, seeds=[0, 7])
    for coefficients in ({0: 0.25}, {0: -0.1, 7: 0.4}):
        pert.apply(coefficients)
        # norms of sharded tensors are summed from per-rank parts: equal within 1 ulp (DESIGN.md)
        compare(llm, expected_after(tiny_model, size, coefficients), ulps=1)
    pert.restore()
    for got, want in zip(worker_state(llm), before, strict=True):
        assert all(torch.equal(got[n], want[n]) for n in want)


def test_replicated_kv_slices_count_once_in_the_norm(tiny_model):
    llm, config = fake_engine(tiny_model, 4)
    pert = VLLMPerturbation(llm, config, seeds=[0])
    model = _load(tiny_model)
    for name, p in unique_parameters(model):
        assert pert.norms[name] == pytest.approx(frobenius_norm64(p), rel=1e-15)


def test_untied_head_and_exclusions(tmp_path):
    from helpers.models import build_tiny_model

    folder = build_tiny_model(tmp_path / "untied", seed=3, tie=False)
    selection = Selection(exclude=("norm", "k_proj"))
    llm, config = fake_engine(folder, 2)
    before = worker_state(llm)
    VLLMPerturbation(llm, config, seeds=[2], selection=selection).apply({2: 0.4})
    compare(llm, expected_after(folder, 2, {2: 0.4}, selection=selection), ulps=1)
    after = worker_state(llm)
    kv_rows = config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) // 2
    q_rows = config.hidden_size // 2
    for r in range(2):
        qkv_now = after[r]["model.layers.0.self_attn.qkv_proj.weight"]
        qkv_was = before[r]["model.layers.0.self_attn.qkv_proj.weight"]
        assert torch.equal(qkv_now[q_rows:q_rows + kv_rows], qkv_was[q_rows:q_rows + kv_rows])  # k: excluded
        assert not torch.equal(qkv_now[:q_rows], qkv_was[:q_rows])
        assert not torch.equal(after[r]["lm_head.weight"], before[r]["lm_head.weight"])


def test_interpolation_towards_a_checkpoint(tiny_model, tmp_path):
    from helpers.models import build_tiny_model

    target = build_tiny_model(tmp_path / "b", seed=1)
    llm, config = fake_engine(tiny_model, 2)
    pert = VLLMPerturbation(llm, config, seeds=[0], towards=str(target))
    coefficients = {TOWARDS: 0.6, 0: 0.1}
    pert.apply(coefficients)
    compare(llm, expected_after(tiny_model, 2, coefficients, towards=str(target)), ulps=1)
    pert.apply({TOWARDS: 1.0})  # t = 1 is the target checkpoint itself
    compare(llm, [vllm_layout(_hf(_load(target)), config, r, 2) for r in range(2)], ulps=0)
    pert.restore()
    assert pert.max_abs_diff() == 0.0


# ---------------------------------------------------------------------- errors

def test_unknown_fused_parameter_is_refused():
    layout = Layout(4, 2, 8)
    with pytest.raises(LayoutError, match="not a known fused module"):
        plan_parameter("model.layers.0.self_attn.c_attn.weight", (64, 32), {"model.x.weight": (3,)}, layout)
    with pytest.raises(LayoutError, match="expects"):
        plan_parameter("model.layers.0.mlp.gate_up_proj.weight", (100, 32),
                       {"model.layers.0.mlp.gate_proj.weight": (64, 32),
                        "model.layers.0.mlp.up_proj.weight": (64, 32)}, layout)


def test_data_parallel_is_refused_and_undeclared_seeds_too(tiny_model):
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        check_data_parallel(2)
    check_data_parallel(1)
    llm, config = fake_engine(tiny_model, 1)
    pert = VLLMPerturbation(llm, config, seeds=[0])
    with pytest.raises(KeyError, match="not declared"):
        pert.apply({9: 0.1})
    with pytest.raises(ValueError, match="towards"):
        pert.apply({TOWARDS: 0.5})
