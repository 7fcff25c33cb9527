"""Scaled copies of a LoRA adapter: a family of models of graded safety from one alignment run.

A LoRA adapter adds ΔW = (alpha / r) · B · A to each target weight. Multiplying every `lora_B` tensor by s
multiplies every ΔW by exactly s (A, alpha and r untouched), so factor 0 is the base model, 1 the aligned
model, 0.5 half-way along the straight line between them in weight space and 1.5 beyond it. Scaling B rather
than `lora_alpha` keeps the copy exact for any peft settings (per-module `alpha_pattern`, rsLoRA) and never
turns alpha into a fraction. Adapters whose delta is not linear in B (DoRA) or that also save whole modules
(`modules_to_save`) are refused: scaling B would not scale their effect.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safety_bench.provenance import software_versions
from safety_bench.training import core

ADAPTER_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
SCALE_FILE = "scaled_from.json"


def adapter_weights_file(adapter: str | Path) -> Path:
    folder = Path(adapter)
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no LoRA adapter weights ({' or '.join(WEIGHT_FILES)})")


def check_scalable(adapter: str | Path) -> dict:
    """The adapter's config, after checking that scaling lora_B scales its whole effect."""
    path = Path(adapter) / ADAPTER_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{adapter}: not a peft adapter folder (no {ADAPTER_CONFIG})")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{adapter}: only LoRA adapters can be scaled (peft_type {config.get('peft_type')!r})")
    if config.get("use_dora"):
        raise ValueError(f"{adapter}: a DoRA adapter's delta is not linear in lora_B; it cannot be scaled")
    if config.get("modules_to_save"):
        raise ValueError(f"{adapter}: the adapter saves whole modules ({config['modules_to_save']}); scaling "
                         "lora_B would leave them at full strength")
    return config


def scale_adapter(adapter: str | Path, factor: float, out: str | Path) -> Path:
    """Write a copy of `adapter` whose weight delta is `factor` times the original's (lora_B scaled),
    atomically, with `scaled_from.json` naming the source and the factor."""
    import torch
    from safetensors.torch import load_file, save_file

    check_scalable(adapter)
    weights = adapter_weights_file(adapter)
    if weights.suffix == ".bin":
        state = torch.load(weights, map_location="cpu", weights_only=True)
    else:
        state = load_file(str(weights))
    scaled_names = [name for name in state if "lora_B" in name]
    if not scaled_names:
        raise ValueError(f"{adapter}: no lora_B tensors in {weights.name}")
    factor = float(factor)
    with core.atomic_dir(out) as tmp:
        new_state = {}
        for name, tensor in state.items():
            if name in scaled_names:
                # scale in fp32 and cast back, so fp16 adapters lose no more than one rounding
                tensor = (tensor.float() * factor).to(tensor.dtype)
            new_state[name] = tensor.contiguous()
        save_file(new_state, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        shutil.copy2(Path(adapter) / ADAPTER_CONFIG, tmp / ADAPTER_CONFIG)
        core.write_json(tmp / SCALE_FILE, {"source": str(Path(adapter).resolve()), "factor": factor,
                                           "scaled_tensors": len(scaled_names), "method": "lora_B times factor",
                                           "versions": software_versions()})
    return Path(out)
