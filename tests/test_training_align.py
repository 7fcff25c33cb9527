"""`safety-bench align` on a tiny random model: loss goes down, the adapter loads, runs are reproducible."""

from __future__ import annotations

import json

import pytest

from safety_bench.cli import main
from safety_bench.training import core
from safety_bench.training.align import AlignConfig, align, merge_adapter

from helpers.training import build_trainable_tiny

FAST = ["--harmful-per-category", "2", "--benign-limit", "6", "--borderline-limit", "4", "--distill-max-new-tokens", "6",
        "--max-steps", "16", "--epochs", "8", "--lr", "1e-2", "--batch-size", "8", "--quiet"]

@pytest.fixture(scope="module")
def tmodel(tmp_path_factory):
    return build_trainable_tiny(tmp_path_factory.mktemp("tiny-trainable") / "model")



@pytest.fixture(scope="module")
def adapter(tmodel, tmp_path_factory):
    out = tmp_path_factory.mktemp("align") / "adapter"
    assert main(["align", "--base", str(tmodel), "--out", str(out), "--seed", "3", *FAST]) == 0
    return out


def _losses(folder):
    return [json.loads(line)["loss"] for line in (folder / "train_log.jsonl").read_text().splitlines()]


def test_align_lowers_the_loss_and_records_the_recipe(adapter):
    losses = _losses(adapter)
    assert len(losses) == 16
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.5
    recipe = json.loads((adapter / "recipe.json").read_text())
    assert recipe["seed"] == 3 and recipe["command"].startswith("safety-bench align --base")
    assert recipe["data"]["harmful"]["examples"] == 22 and recipe["data"]["benign"]["examples"] == 6
    assert recipe["data"]["borderline"]["examples"] == 4
    kept = 10 - recipe["data"]["distilled_refusals_dropped"]
    assert recipe["data"]["training_examples"] == 22 + kept
    assert recipe["data"]["eval_overlap"] == 0
    assert recipe["result"]["last_loss"] < recipe["result"]["first_loss"]
    assert set(recipe["versions"]) >= {"torch", "transformers", "peft"}
    assert "--seed 3" in recipe["command"] and "--max-steps 16" in recipe["command"]
    assert recipe["command"] in (adapter / "README.md").read_text()
    cache = core.read_jsonl(adapter / "distill_cache.jsonl")
    assert len(cache) == 10 and {r["system_variant"] for r in cache} == {"default", "empty"}


def test_adapter_loads_with_peft_and_changes_the_model(adapter, tmodel):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    assert {t.dtype for t in load_file(adapter / "adapter_model.safetensors").values()} == {torch.float16}

    base = AutoModelForCausalLM.from_pretrained(tmodel)
    ids = torch.tensor([[1, 5, 9, 12, 2]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(adapter))
        after = tuned(input_ids=ids).logits
    assert after.shape == before.shape and torch.isfinite(after).all()
    assert not torch.allclose(after, before)


def test_rerun_reuses_the_distillation_cache_and_is_deterministic(adapter, tmodel, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "again"
    out.mkdir()
    shutil.copy(adapter / "distill_cache.jsonl", out / "distill_cache.jsonl")

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached answers should have been used")

    monkeypatch.setattr(core, "generate_greedy", no_generation)
    assert main(["align", "--base", str(tmodel), "--out", str(out), "--seed", "3", *FAST]) == 0
    assert _losses(out) == _losses(adapter)


def test_merge_adapter_writes_a_full_model_with_the_base_layout(adapter, tmodel, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    merged = tmp_path / "merged"
    assert main(["align", "--merge", "--base", str(tmodel), "--adapter", str(adapter), "--out", str(merged)]) == 0
    base_sd = load_file(tmodel / "model.safetensors")
    merged_sd = load_file(merged / "model.safetensors")
    assert {k: v.shape for k, v in base_sd.items()} == {k: v.shape for k, v in merged_sd.items()}
    assert (merged / "tokenizer_config.json").is_file()
    ids = torch.tensor([[1, 7, 3, 2]])
    with torch.no_grad():
        full = AutoModelForCausalLM.from_pretrained(merged)(input_ids=ids).logits
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmodel), str(adapter))
        expected = peft_model(input_ids=ids).logits
    torch.testing.assert_close(full, expected, atol=1e-4, rtol=1e-4)
    # merging again over an existing folder replaces it atomically (no leftovers beside it)
    merge_adapter(tmodel, adapter, merged)
    assert sorted(p.name for p in merged.parent.iterdir()) == ["merged"]


def test_align_rejects_unknown_system_variant(tmodel, tmp_path):
    with pytest.raises(ValueError, match="unknown system variant"):
        align(tmodel, tmp_path / "x", AlignConfig(system_variants=("nope",)), progress=False)
    assert main(["align", "--base", str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2
