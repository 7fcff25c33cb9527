"""The `perturbed` model type with a LoRA adapter: `peft=ADAPTER` (merged before any perturbation) and
`towards=ADAPTER` (interpolation towards the adapter), on a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.models import build_tiny_model


@pytest.fixture(scope="module")
def base_and_adapter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("peft")
    base = build_tiny_model(root / "base")
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(model, cfg)
    torch.manual_seed(1)
    with torch.no_grad():  # B = 0 at init: give the adapter a real delta
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    adapter = root / "adapter"
    peft_model.save_pretrained(adapter)
    merged_dir = root / "merged"
    peft_model.merge_and_unload().save_pretrained(merged_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(merged_dir)
    return base, adapter, merged_dir


def _lm(args: str):
    from lm_eval.api.registry import get_model

    import safety_bench.harness.perturbed_hf  # noqa: F401  (registers `perturbed`)

    return get_model("perturbed").create_from_arg_string(args, {"batch_size": 1, "device": "cpu"})


def _state(lm) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in lm.model.state_dict().items()}


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert set(a) == set(b), sorted(set(a) ^ set(b))[:5]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-5, msg=k)


def test_peft_adapter_is_merged_before_perturbing(base_and_adapter) -> None:
    from peft import PeftModel

    base, adapter, merged = base_and_adapter
    lm = _lm(f"pretrained={base},peft={adapter},dtype=float32")
    assert not isinstance(lm.model, PeftModel)
    assert not any("lora_" in k for k in lm.model.state_dict())
    ref = _lm(f"pretrained={merged},dtype=float32")
    _assert_close(_state(lm), _state(ref))  # origin = the merged weights, base parameter names

    lm.set_point(0.1)
    ref.set_point(0.1)
    moved, expected = _state(lm), _state(ref)
    _assert_close(moved, expected, atol=1e-5)  # direction normalised on the merged weights
    assert any(not torch.equal(moved[k], _state(_lm(f"pretrained={merged},dtype=float32"))[k]) for k in moved)
    lm.restore()
    _assert_close(_state(lm), _state(_lm(f"pretrained={merged},dtype=float32")))


def test_towards_adapter_interpolates_to_the_merged_weights(base_and_adapter) -> None:
    base, adapter, merged = base_and_adapter
    target = _state(_lm(f"pretrained={merged},dtype=float32"))
    start = _state(_lm(f"pretrained={base},dtype=float32"))
    lm = _lm(f"pretrained={base},towards={adapter},alpha=1.0,dtype=float32")
    _assert_close(_state(lm), target, atol=1e-5)
    lm.set_point(0.5)
    half = _state(lm)
    for k in half:
        torch.testing.assert_close(half[k], 0.5 * (start[k] + target[k]), atol=1e-5, rtol=1e-5, msg=k)
    assert lm.perturbation_info()["towards"] == str(adapter)


def test_peft_model_generates_through_lm_eval_interface(base_and_adapter) -> None:
    from lm_eval.api.instance import Instance

    base, adapter, _ = base_and_adapter
    lm = _lm(f"pretrained={base},peft={adapter},alpha=0.05,seed=3,dtype=float32")
    req = Instance(request_type="generate_until", doc={}, idx=0,
                   arguments=("Hello", {"until": ["<|im_end|>"], "max_gen_toks": 4, "do_sample": False}))
    out = lm.generate_until([req])
    assert len(out) == 1 and isinstance(out[0], str)
    assert lm.get_model_info()["perturbation"]["coefficients"] == {0: 0.05} or \
        lm.get_model_info()["perturbation"]["alpha"] == 0.05
