"""The VISAGE-vs-attack study's plan (YAML): read and checked completely before anything runs.

Every setting — models, adapters, the sweep block (the landscape command's keys), judges, task, attack
recipes and their settings, statistics — is checked here, reading configuration files only; a bad one raises
`UsageError`, which the CLI prints as one line with exit code 2, with nothing written and no model loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safety_bench.orchestration import study_stats
from safety_bench.orchestration.study_attacks import ATTACK_RECIPES, EVAL_KEYS
from safety_bench.orchestration.study_attacks import resolve as resolve_attack
from safety_bench.orchestration.sweep import SweepConfig, config_from_settings
from safety_bench.validation import UsageError

FORMAT = "safety-bench/study/visage-vs-attack/v1"

@dataclass
class Variant:
    name: str
    model: str  # base model folder (or `smollm2`)
    adapter: str | None = None  # LoRA adapter merged into it (`shipped`: the repository's aligned adapter)
    scale: float | None = None  # the adapter's delta times this factor (None: as trained)


@dataclass
class AttackSpec:
    recipe: str
    settings: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)  # sweep settings changed for the attacked model only


@dataclass
class StudyPlan:
    name: str
    out: str
    variants: list[Variant]
    sweep: dict[str, Any]
    attacks: list[AttackSpec]
    seed: int = 0
    judge: str = "keyword"
    store: str | None = None
    bootstrap: int = study_stats.DEFAULT_BOOTSTRAP
    permutations: int = study_stats.DEFAULT_PERMUTATIONS

    def identity(self) -> dict[str, Any]:
        """What the numbers depend on (a different identity in the same folder is refused); variants may be
        added to a finished study, so they are checked one by one instead."""
        return {"format": FORMAT, "sweep": self.sweep, "attacks": [asdict(a) for a in self.attacks],
                "seed": self.seed, "judge": self.judge}


PLAN_KEYS = ("name", "out", "store", "seed", "judge", "family", "sweep", "attacks", "statistics")
FAMILY_KEYS = ("base", "adapter", "scales", "variants")
VARIANT_KEYS = ("name", "model", "adapter", "scale")


def _resolve_adapter(value: str | None, setting: str) -> str | None:
    if value is None:
        return None
    if value == "shipped":
        from safety_bench.training import shipped_adapter_dir

        try:
            return str(shipped_adapter_dir())
        except FileNotFoundError as exc:
            raise UsageError(setting, value, str(exc)) from None
    from safety_bench.training.adapters import check_scalable

    path = Path(value).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise UsageError(setting, value, "not a LoRA adapter folder (no adapter_config.json)")
    try:
        check_scalable(path)
    except ValueError as exc:
        raise UsageError(setting, value, str(exc)) from None
    return str(path)


def _resolve_model(value: Any, setting: str) -> str:
    from safety_bench.validation import model_path

    if value == "smollm2":
        from safety_bench.models import smollm2_dir

        try:
            return str(smollm2_dir())
        except FileNotFoundError as exc:
            raise UsageError(setting, value, str(exc)) from None
    if not isinstance(value, str):
        raise UsageError(setting, value, "must be a model folder (or `smollm2`)")
    model_path(setting, value)
    if not (Path(value).expanduser() / "config.json").is_file():
        raise UsageError(setting, value, "the study needs a local model folder (config.json), not a hub id")
    return str(Path(value).expanduser())


def _mapping(setting: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(setting, value, "must be a mapping")
    return dict(value)


def _unknown(setting: str, given: Mapping[str, Any], valid: tuple[str, ...] | set[str]) -> None:
    for key in given:
        if key not in valid:
            raise UsageError(setting, key, "unknown key", sorted(valid))


def _scale_name(factor: float) -> str:
    return f"x{factor:g}".replace(".", "_").replace("-", "m")


def _variants(family: dict[str, Any]) -> list[Variant]:
    _unknown("family", family, FAMILY_KEYS)
    out: list[Variant] = []
    if "scales" in family:
        if "base" not in family or "adapter" not in family:
            raise UsageError("family.scales", family["scales"], "needs family.base and family.adapter")
        scales = family["scales"]
        if not isinstance(scales, list) or not scales:
            raise UsageError("family.scales", scales, "must be a non-empty list of numbers")
        base = _resolve_model(family["base"], "family.base")
        adapter = _resolve_adapter(str(family["adapter"]), "family.adapter")
        from safety_bench.validation import number

        for s in scales:
            factor = number("family.scales", s, minimum=-10, maximum=10)
            out.append(Variant(_scale_name(factor), base, adapter, factor))
    for i, raw in enumerate(family.get("variants") or []):
        item = _mapping(f"family.variants[{i}]", raw)
        _unknown(f"family.variants[{i}]", item, VARIANT_KEYS)
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise UsageError(f"family.variants[{i}].name", item.get("name"), "every variant needs a name")
        model = _resolve_model(item.get("model", family.get("base")), f"family.variants[{i}].model")
        adapter = _resolve_adapter(item.get("adapter"), f"family.variants[{i}].adapter")
        scale = item.get("scale")
        if scale is not None:
            from safety_bench.validation import number

            scale = number(f"family.variants[{i}].scale", scale, minimum=-10, maximum=10)
            if adapter is None:
                raise UsageError(f"family.variants[{i}].scale", scale, "scales an adapter; give `adapter` too")
        out.append(Variant(item["name"], model, adapter, scale))
    names = [v.name for v in out]
    for name in names:
        if names.count(name) > 1:
            raise UsageError("family variant name", name, "used twice")
        if not all(c.isalnum() or c in "._+-" for c in name):
            raise UsageError("family variant name", name, "use letters, digits and . _ + - only")
    if len(out) < 3:
        raise UsageError("family", f"{len(out)} variant(s)", "a rank correlation needs at least 3 models")
    return out


def _check_sweep(sweep: dict[str, Any]) -> SweepConfig:
    from safety_bench.judges.registry import load_specs
    from safety_bench.validation import judge, max_gen_toks, task

    try:
        config = config_from_settings("plan", sweep)
    except (ValueError, TypeError) as exc:
        raise UsageError("plan.sweep", sorted(sweep), str(exc)) from None
    if config.grid.kind != "1d_random":
        raise UsageError("sweep.grid", config.grid.kind, "the study compares 1D VISAGE", ["1d_random"])
    if len(config.grid.directions) < 2:
        raise UsageError("sweep.directions", len(config.grid.directions), "must be ≥ 2")
    task("sweep.task", config.task)
    names = sorted(load_specs())
    for j in config.judges:
        judge("sweep.judges", j, names)
    max_gen_toks("sweep.max_gen_toks", config.max_gen_toks)
    return config


def _check_eval(setting: str, evaluation: dict[str, Any]) -> None:
    """An attack's evaluation overrides, checked like the sweep's own values."""
    from safety_bench.validation import max_gen_toks, number

    if "max_gen_toks" in evaluation:
        max_gen_toks(f"{setting}.max_gen_toks", evaluation["max_gen_toks"])
    if evaluation.get("batch_size", "auto") != "auto":
        number(f"{setting}.batch_size", evaluation["batch_size"], minimum=1, integer=True)


def load_plan(path: str | os.PathLike[str], out: str | None = None, store: str | None = None) -> StudyPlan:
    """Read and check a plan (YAML) completely — models, adapters, sweep keys, judges, attack recipes and
    their settings — before anything is written or loaded; a bad value raises UsageError (one line)."""
    import yaml

    from safety_bench.validation import existing_path, number, output_dir

    existing_path("PLAN", path, "file")
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError("PLAN", str(path), f"not valid YAML ({str(exc).splitlines()[0]})") from None
    raw = _mapping("PLAN", raw)
    _unknown("plan", raw, PLAN_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError("plan.name", name, "the study needs a name")
    out = out or raw.get("out")
    if not out:
        raise UsageError("plan.out", out, "give a work folder (plan `out:` or --out)")
    output_dir("plan.out", out)
    variants = _variants(_mapping("plan.family", raw.get("family")))
    sweep = _mapping("plan.sweep", raw.get("sweep"))
    config = _check_sweep(sweep)
    attacks = []
    for i, item in enumerate(raw.get("attacks") or []):
        item = _mapping(f"plan.attacks[{i}]", item)
        _unknown(f"plan.attacks[{i}]", item, ("recipe", "settings", "eval"))
        recipe = item.get("recipe")
        if recipe not in ATTACK_RECIPES:
            raise UsageError(f"plan.attacks[{i}].recipe", recipe, "not available in this install",
                             sorted(ATTACK_RECIPES))
        settings = _mapping(f"plan.attacks[{i}].settings", item.get("settings"))
        _unknown(f"plan.attacks[{i}].settings", settings, ATTACK_RECIPES[recipe]())
        try:  # every value checked now, not after hours of landscapes
            resolve_attack(str(recipe), settings, 0)
        except UsageError as exc:
            raise UsageError(f"plan.attacks[{i}].settings ({exc.setting})", exc.value, exc.problem,
                             exc.valid) from None
        evaluation = _mapping(f"plan.attacks[{i}].eval", item.get("eval"))
        _unknown(f"plan.attacks[{i}].eval", evaluation, EVAL_KEYS)
        _check_eval(f"plan.attacks[{i}].eval", evaluation)
        attacks.append(AttackSpec(str(recipe), settings, evaluation))
    if not attacks:
        raise UsageError("plan.attacks", raw.get("attacks"), "list at least one attack", sorted(ATTACK_RECIPES))
    if len({a.recipe for a in attacks}) != len(attacks):
        raise UsageError("plan.attacks", [a.recipe for a in attacks], "each recipe once")
    stats = _mapping("plan.statistics", raw.get("statistics"))
    _unknown("plan.statistics", stats, ("bootstrap", "permutations"))
    judge = raw.get("judge", config.judges[0])
    if judge not in config.judges:
        raise UsageError("plan.judge", judge, "must be one of the sweep's judges", config.judges)
    return StudyPlan(
        name=name, out=str(out), variants=variants, sweep=sweep, attacks=attacks,
        seed=number("plan.seed", raw.get("seed", 0), minimum=0, integer=True), judge=str(judge),
        store=store or raw.get("store"),
        bootstrap=number("statistics.bootstrap", stats.get("bootstrap", study_stats.DEFAULT_BOOTSTRAP),
                         minimum=100, integer=True),
        permutations=number("statistics.permutations",
                            stats.get("permutations", study_stats.DEFAULT_PERMUTATIONS), minimum=100, integer=True))
