"""Scaled LoRA adapters: factor s gives exactly s times the adapter's weight delta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.training.adapters import SCALE_FILE, scale_adapter

from helpers.models import build_tiny_model


def _tiny_adapter(base: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base)
    # init_lora_weights=False: B is random too, so the adapter changes the weights (the default B = 0 does not)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(out)
    return out


def _merged_state(base: Path, adapter: Path | None) -> dict:
    from safety_bench.training.align import load_model

    model, _ = load_model(base, adapter=adapter, device="cpu", dtype="float32", merge=True)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def base_and_adapter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("family")
    base = build_tiny_model(root / "base")
    return base, _tiny_adapter(base, root / "adapter")


def test_scaled_adapter_scales_the_weight_delta(base_and_adapter: tuple[Path, Path], tmp_path: Path) -> None:
    import torch

    base, adapter = base_and_adapter
    theta0 = _merged_state(base, None)
    full = _merged_state(base, adapter)
    changed = [k for k in theta0 if not torch.equal(theta0[k], full[k])]
    assert changed and all(("q_proj" in k or "down_proj" in k) for k in changed)
    for factor in (0.0, 0.5, 1.5):
        scaled = scale_adapter(adapter, factor, tmp_path / f"x{factor}")
        merged = _merged_state(base, scaled)
        for k in theta0:
            expected = theta0[k] + factor * (full[k] - theta0[k])
            torch.testing.assert_close(merged[k], expected, rtol=1e-5, atol=1e-6)
        info = json.loads((scaled / SCALE_FILE).read_text())
        assert info["factor"] == factor and info["scaled_tensors"] > 0
    # the source adapter is untouched
    torch.testing.assert_close(_merged_state(base, adapter)[changed[0]], full[changed[0]])


def test_unscalable_adapters_are_refused(base_and_adapter: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    _, adapter = base_and_adapter
    dora = tmp_path / "dora"
    shutil.copytree(adapter, dora)
    cfg = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(ValueError, match="DoRA"):
        scale_adapter(dora, 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError):
        scale_adapter(tmp_path, 0.5, tmp_path / "out2")
