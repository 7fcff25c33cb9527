"""The sweep's generation settings: `auto` batch size and KV cache, and what they reach."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from safety_bench.landscape.grid import build_grid
from safety_bench.orchestration.generation import (
    CPU_BATCH,
    MAX_AUTO_BATCH,
    MEMORY_FRACTION,
    auto_batch_size,
    kv_bytes_per_token,
    kv_cache_kwargs,
    per_sequence_bytes,
)
from safety_bench.orchestration.sweep import SweepConfig, Sweeper

from helpers.models import build_talkative_model


@pytest.fixture(scope="module")
def talkative(tmp_path_factory) -> Path:
    return build_talkative_model(tmp_path_factory.mktemp("talkative") / "model")


@pytest.fixture(scope="module")
def model(talkative):
    return AutoModelForCausalLM.from_pretrained(talkative, dtype=torch.float32).eval()


def test_kv_bytes_follow_the_architecture(model):
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    expected = 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * 4
    assert kv_bytes_per_token(c, torch.float32) == expected
    assert kv_bytes_per_token(c, torch.bfloat16) == expected // 2


def test_auto_batch_size_fills_the_free_memory_and_is_capped(model):
    per_seq = per_sequence_bytes(model, 64)
    assert auto_batch_size(model, 64) == CPU_BATCH  # CPU without a memory figure
    assert auto_batch_size(model, 64, free_bytes=int(10 * per_seq / MEMORY_FRACTION) + 1) == 10
    assert auto_batch_size(model, 64, free_bytes=per_seq // 2) == 1  # never 0
    assert auto_batch_size(model, 64, free_bytes=1 << 50) == MAX_AUTO_BATCH
    # longer answers hold more KV cache, so fewer fit
    budget = 100 * per_seq
    assert auto_batch_size(model, 512, free_bytes=budget) < auto_batch_size(model, 64, free_bytes=budget)


def test_kv_cache_choice(model, monkeypatch):
    assert kv_cache_kwargs(model, "auto") == {}  # CPU: dynamic
    assert kv_cache_kwargs(model, "dynamic") == {}
    assert kv_cache_kwargs(model, "static") == {"cache_implementation": "static"}
    with pytest.raises(ValueError, match="choose one of"):
        kv_cache_kwargs(model, "paged")
    monkeypatch.setattr(model, "_can_compile_fullgraph", False)
    with pytest.raises(ValueError, match="does not support a static KV cache"):
        kv_cache_kwargs(model, "static")


def _answers(talkative: Path, **settings) -> tuple[list[str], Sweeper]:
    config = SweepConfig(model=str(talkative), grid=build_grid("1d_random", points=3, range_=0.3),
                         task="safety_landscape_mini", data="sample", max_gen_toks=6, limit=4, device="cpu",
                         dtype="float32", **settings)
    sweeper = Sweeper(config)
    point = next(p for p in config.grid.points() if p.id != "origin")
    files = sweeper.run_point(point)
    return [r["response"] for r in files["samples.jsonl"]], sweeper, files


def test_static_cache_and_auto_batch_reach_generation_and_answer_alike(talkative):
    dynamic, s_dyn, f_dyn = _answers(talkative, kv_cache="dynamic", batch_size=3)
    static, s_sta, f_sta = _answers(talkative, kv_cache="static", batch_size="auto")
    assert static == dynamic and len(static) == 4  # greedy: the cache kind changes no answer
    assert s_dyn.lm.batch_size == 3
    assert s_sta.lm.batch_size == 4  # auto on the CPU: CPU_BATCH, but never more than the point's prompts
    assert s_sta.gen_kwargs["cache_implementation"] == "static"
    gen = f_sta["results.json"]["configs"]["safety_landscape_mini"]["generation_kwargs"]
    assert gen["cache_implementation"] == "static"
    assert "cache_implementation" not in f_dyn["results.json"]["configs"]["safety_landscape_mini"]["generation_kwargs"]


def test_cli_batch_size_accepts_auto_or_a_positive_integer(talkative, capsys):
    from safety_bench.cli import main

    for bad in ("0", "-2", "many"):
        with pytest.raises(SystemExit):
            main(["landscape", "--model", str(talkative), "--batch-size", bad, "--dry-run"])
        assert "--batch-size takes a positive integer or auto" in capsys.readouterr().err
    assert main(["landscape", "--model", str(talkative), "--data", "sample", "--points", "3", "--dry-run"]) == 0
    assert f"at batch {CPU_BATCH}" in capsys.readouterr().out


def test_gpu_memory_plan_for_a_7b_shape_matches_the_sweeps_decisions():
    """80 prompts x (512 + 512) tokens of a 7B Llama: on 80 GB one batch of all prompts fits beside the
    weights and their saved original, the fp32 direction does not (regenerated); on 140 GB both fit; on
    24 GB the original goes to host memory and the batch shrinks."""
    from transformers import LlamaConfig

    from safety_bench.orchestration.generation import plan_gpu_memory, sequence_bytes

    config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32)
    n = 6_738_415_616
    h100 = plan_gpu_memory(config, torch.bfloat16, n, 79 * 10**9, 512, 80)
    assert h100.original_on_device and h100.batch == 80 and not h100.cache_directions
    assert h100.sequence_bytes == sequence_bytes(config, torch.bfloat16, 512) == 524288 * 1024 + 2 * 32000 * 4
    h200 = plan_gpu_memory(config, torch.bfloat16, n, 140 * 10**9, 512, 80)
    assert h200.batch == 80 and h200.cache_directions
    small = plan_gpu_memory(config, torch.bfloat16, n, 24 * 10**9, 512, 80)
    assert not small.original_on_device and 1 <= small.batch < 80
    assert plan_gpu_memory(config, torch.bfloat16, n, 79 * 10**9, 512, 80, batch_size=8).batch == 8
    text = "\n".join(h100.lines())
    assert "batch 80" in text and "regenerated at every point" in text


def test_dry_run_gpu_plan_reads_the_model_config(talkative, monkeypatch):
    """The dry run's GPU section (run here with the free-memory query answered for a 10 GB card)."""
    from safety_bench.commands.landscape import _gpu_plan_lines

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 10**9, 10 * 10**9))
    config = SweepConfig(model=str(talkative), grid=build_grid("1d_random", points=3), max_gen_toks=64,
                         device="cuda", dtype="bfloat16")
    lines = _gpu_plan_lines(config, n_params=1_000_000, n_prompts=44)
    assert lines[0].startswith("GPU memory plan (estimate): 10.0 GB free") and "on the GPU" in lines[0]
    assert "batch 44 x" in lines[1] and "cached on the GPU" in lines[2]
