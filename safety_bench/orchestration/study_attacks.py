"""The attacks the VISAGE-vs-attack study runs: `safety-bench attack`'s recipes, adapted to the study's needs.

An attack is any callable `fn(model_dir, adapter, recipe, out_dir, seed, settings) -> attacked model folder`
(a full HF folder, so the sweep's evaluation can load it). `run_attack` is the default: it runs a recipe of
`orchestration/attacks.py` (the one trainer behind `safety-bench attack`) from the recipe's `--mini` preset
(or the plan's `preset:`), with the plan's settings on top and the plan's seed, and writes the LoRA merged
into a full model. `ATTACK_RECIPES` names the recipes and the setting names each accepts (the plan's
`attacks[].settings` are checked against them before anything runs).

An attack trained with a system prompt or an instruction template (identity shifting) is evaluated with the
same ones (Qi et al. 2023): `evaluation_overrides` gives the sweep settings the attacked model is asked with.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from safety_bench.orchestration import attacks
from safety_bench.validation import UsageError

AttackFn = Callable[..., Path]

# Settings a study attack takes: every training setting of `safety-bench attack` except the seed (the plan's
# seed is every attack's), plus the preset to start from and the device to train on.
STUDY_ONLY = ("preset", "device")
# Sweep settings a plan's `attacks[].eval` may change for the attacked model's evaluation only.
EVAL_KEYS = ("max_gen_toks", "batch_size")


def _settings_names() -> set[str]:
    return (set(attacks.DEFAULTS) - {"seed"}) | set(STUDY_ONLY)


ATTACK_RECIPES: dict[str, Callable[[], set[str]]] = {r: _settings_names for r in attacks.RECIPES}


def resolve(recipe: str, settings: Mapping[str, Any], seed: int) -> tuple[str, dict[str, Any]]:
    """(preset name, every training setting): the recipe's mini preset (or `settings['preset']`) with the
    plan's settings and seed on top, validated like the command's flags."""
    if recipe not in ATTACK_RECIPES:
        raise UsageError("attack recipe", recipe, "not available in this install", sorted(ATTACK_RECIPES))
    explicit = {k: v for k, v in settings.items() if k not in STUDY_ONLY} | {"seed": int(seed)}
    preset, resolved = attacks.resolve_settings(recipe, True, settings.get("preset"), explicit)
    return preset.name, resolved


def evaluation_overrides(recipe: str, settings: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Sweep settings under which the attacked model is evaluated: the system prompt and instruction
    template it was trained with (none for the default ones)."""
    _, s = resolve(recipe, settings, seed)
    out: dict[str, Any] = {}
    if s["system_prompt"] != "default":
        out["system_prompt"] = s["system_prompt"]
    if s["prompt_template"] not in (None, "none"):
        out["prompt_template"] = s["prompt_template"]
    return out


def run_attack(model_dir: str | Path, adapter: str | Path | None, recipe: str, out_dir: str | Path, seed: int,
               settings: Mapping[str, Any] | None = None) -> Path:
    """The default attack: `recipe` on `model_dir` (with `adapter` merged first, if any), written as a full
    HF folder `out_dir`; the attack's own record (`attack.json`, training log) stays beside it in
    `<out_dir>.training/`. No evaluation here: the study evaluates the attacked model itself."""
    settings = dict(settings or {})
    preset, resolved = resolve(recipe, settings, seed)
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".training")
    if work.exists():  # what a killed attack left: start it afresh
        shutil.rmtree(work)
    spec = attacks.AttackSpec(model=str(model_dir), out=work, settings=resolved, preset=preset,
                              adapter=str(adapter) if adapter else None, evaluation=None, baseline=False,
                              device=str(settings.get("device", "auto")), progress=False, merge=True,
                              command=f"study attack {recipe} (seed {seed})")
    attacks.run_attack(spec)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(work / attacks.MODEL_DIR, out_dir)
    return out_dir
