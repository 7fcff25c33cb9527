"""`safety-bench finetune` on a tiny random model: LoRA and full, bundled and user data."""

from __future__ import annotations

import json

import pytest

from safety_bench.cli import main

from helpers.training import build_trainable_tiny

FAST = ["--max-steps", "12", "--epochs", "10", "--batch-size", "4", "--limit", "8", "--quiet"]

@pytest.fixture(scope="module")
def tmodel(tmp_path_factory):
    return build_trainable_tiny(tmp_path_factory.mktemp("tiny-trainable") / "model")



def _losses(folder):
    return [json.loads(line)["loss"] for line in (folder / "train_log.jsonl").read_text().splitlines()]


def _dropped(losses):
    return sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3


def test_lora_finetune_writes_a_loadable_adapter(tmodel, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "ft-lora"
    assert main(["finetune", "--model", str(tmodel), "--out", str(out), "--lora", "--lr", "1e-2", *FAST]) == 0
    assert _dropped(_losses(out))
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["layout"] == "adapter" and recipe["config"]["mode"] == "lora"
    assert recipe["data"]["source"] == "bundled:finetune_benign.jsonl" and recipe["data"]["examples"] == 8
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmodel), str(out))
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=torch.tensor([[1, 4, 2]])).logits).all()


def test_full_finetune_of_an_aligned_model_keeps_names_and_shapes(tmodel, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    aligned = tmp_path / "aligned-adapter"
    assert main(["align", "--base", str(tmodel), "--out", str(aligned), "--harmful-per-category", "1",
                 "--benign-limit", "2", "--distill-max-new-tokens", "4", "--max-steps", "2", "--quiet"]) == 0
    data = tmp_path / "mine.jsonl"
    rows = [{"instruction": f"Count to {n}.", "response": " ".join(map(str, range(1, n + 1)))} for n in range(2, 8)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "ft-full"
    assert main(["finetune", "--model", str(tmodel), "--adapter", str(aligned), "--out", str(out), "--full",
                 "--data", str(data), "--lr", "3e-3", *FAST]) == 0
    assert _dropped(_losses(out))
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["layout"] == "full" and recipe["merged_adapter"] == str(aligned)
    assert recipe["data"]["examples"] == 6 and recipe["config"]["lr"] == 3e-3
    base = load_file(tmodel / "model.safetensors")
    tuned = load_file(out / "model.safetensors")
    assert {k: v.shape for k, v in base.items()} == {k: v.shape for k, v in tuned.items()}
    assert any(not (base[k] == tuned[k]).all() for k in base)
    AutoModelForCausalLM.from_pretrained(out)  # a plain HF folder


def test_lora_merge_writes_a_full_folder(tmodel, tmp_path):
    out = tmp_path / "ft-merged"
    assert main(["finetune", "--model", str(tmodel), "--out", str(out), "--lora", "--merge", "--lr", "1e-2",
                 *FAST]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()


def test_finetune_reports_bad_data(tmodel, tmp_path, capsys):
    assert main(["finetune", "--model", str(tmodel), "--out", str(tmp_path / "x"),
                 "--data", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("flags", [["--lora", "--full"]])
def test_lora_and_full_are_exclusive(flags, tmodel, tmp_path):
    with pytest.raises(SystemExit):
        main(["finetune", "--model", str(tmodel), "--out", str(tmp_path / "x"), *flags])
