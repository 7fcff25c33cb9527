"""The attacks the VISAGE-vs-attack study can run: the one place to plug in other attack recipes.

An attack is any callable `fn(model_dir, adapter, recipe, out_dir, seed, settings) -> attacked model folder`
(a full HF folder, so the sweep's evaluation can load it). `run_attack` is the default; `ATTACK_RECIPES`
names the recipes it runs, each with a function returning the setting names it accepts (the plan's
`attacks[].settings` are checked against them before anything runs). Here only `benign` is available: the
miniature benign fine-tuning attack of `safety-bench finetune` (LoRA, merged into a full model). The
`safety-bench attack` recipes (identity-shift; harmful with user data) plug in by extending both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from safety_bench.validation import UsageError

AttackFn = Callable[..., Path]

def _finetune_fields() -> set[str]:
    from safety_bench.training.finetune import FinetuneConfig

    return {f.name for f in fields(FinetuneConfig)} - {"seed", "merge", "lora"} | {"rank", "alpha"}


# Recipes this install runs, and the settings each takes. `benign` is the miniature benign fine-tuning
# attack of `safety-bench finetune` (LoRA, merged into a full model), run with the plan's settings.
ATTACK_RECIPES: dict[str, Callable[[], set[str]]] = {"benign": _finetune_fields}


def run_attack(model_dir: str | Path, adapter: str | Path | None, recipe: str, out_dir: str | Path, seed: int,
               settings: Mapping[str, Any] | None = None) -> Path:
    """The default attack: fine-tune `model_dir` (with `adapter` merged first, if any) by `recipe` into a
    full HF folder `out_dir` and return it. Only `benign` is available here (training/finetune.py)."""
    if recipe not in ATTACK_RECIPES:
        raise UsageError("attack recipe", recipe, "not available in this install", sorted(ATTACK_RECIPES))
    from safety_bench.training.align import LoraSettings
    from safety_bench.training.finetune import FinetuneConfig, finetune

    s = dict(settings or {})
    lora = LoraSettings(rank=int(s.pop("rank", 16)), alpha=int(s.pop("alpha", 32)))
    if "system_variants" in s and isinstance(s["system_variants"], (list, str)):
        v = s["system_variants"]
        s["system_variants"] = tuple(v.split(",") if isinstance(v, str) else v)
    config = FinetuneConfig(**s, seed=int(seed), merge=True, lora=lora)
    return finetune(model_dir, out_dir, adapter=adapter, config=config,
                    command=f"study attack {recipe} (seed {seed})", progress=False)
