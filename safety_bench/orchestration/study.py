"""The VISAGE-vs-attack study: does a wider safety basin predict how well a model survives fine-tuning?

For every model of a family (a plan's variants) the study measures, with one set of settings for all:
its 1D landscape and VISAGE (the sweep, ≥ 2 directions), its ASR at the origin, and its ASR after each
fine-tuning attack of the plan (same recipe, data, seed and settings for every model, the attacked model
evaluated on the same prompts with the same judges as the origin); then Spearman's rho between VISAGE and
post-attack ASR, the partial rho given the origin's ASR (`study_stats`), and a scatter plot per attack.

Work folder (`out`), resumable step by step — a finished step is a complete file or folder (written
atomically), so a killed study re-runs only what is missing:

    OUT/plan.json                               the validated plan (a different plan here is refused)
    OUT/variants/<name>/adapter/                the scaled adapter (if the variant scales one)
    OUT/variants/<name>/model/                  the variant as a full HF folder (adapter merged)
    OUT/variants/<name>/landscape/              the sweep's own resumable folder (landscape.json)
    OUT/variants/<name>/origin/                 origin evaluation when the grid has no α = 0 point
    OUT/variants/<name>/attacks/<recipe>/model/ the attacked model; attack.json its settings
    OUT/variants/<name>/attacks/<recipe>/eval/  its evaluation (a one-point sweep folder at the origin)
    OUT/variants/<name>/result.json             the variant's numbers, written when all of it is done
    OUT/study.json, OUT/table.md, OUT/scatter_<recipe>.png

With a store, each variant's landscape, origin answers and attacked answers go in as they finish (models
named `<variant>` and `<variant>+<recipe>`, the attack's provenance in the run's metadata), and the study's
own files under `STORE/studies/<plan name>/`.

Attacks are pluggable: `run_study(..., attack=fn)` with `fn(model_dir, adapter, recipe, out_dir, seed,
settings) -> attacked model folder`. The default, `run_attack`, knows the recipes in `ATTACK_RECIPES`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from safety_bench.jsonio import read_jsonl, write_json
from safety_bench.landscape.grid import Grid, Point
from safety_bench.orchestration import study_stats
from safety_bench.orchestration.sweep import (
    SweepConfig,
    Sweeper,
    build_task_manager,
    check_or_write_config,
    clean_partial,
    config_from_settings,
    config_hash,
    is_done,
    point_dir,
    run_sweep,
    write_point,
)
from safety_bench.provenance import model_identity, now_iso, software_versions
from safety_bench.validation import UsageError, UserError

log = logging.getLogger("safety_bench.study")

FORMAT = "safety-bench/study/visage-vs-attack/v1"
ORIGIN = Point("origin", {}, (0.0,))
ORIGIN_GRID = Grid("1d_random", [[0.0]], [])  # the unperturbed model only: no direction is ever drawn

AttackFn = Callable[..., Path]


class StudyMismatch(UserError, RuntimeError):
    """The work folder holds a study (or an attack) of different settings."""


# ---------------------------------------------------------------------- attacks

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


# ---------------------------------------------------------------------- the plan

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
        _unknown(f"plan.attacks[{i}]", item, ("recipe", "settings"))
        recipe = item.get("recipe")
        if recipe not in ATTACK_RECIPES:
            raise UsageError(f"plan.attacks[{i}].recipe", recipe, "not available in this install",
                             sorted(ATTACK_RECIPES))
        settings = _mapping(f"plan.attacks[{i}].settings", item.get("settings"))
        _unknown(f"plan.attacks[{i}].settings", settings, ATTACK_RECIPES[recipe]())
        attacks.append(AttackSpec(str(recipe), settings))
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


# ---------------------------------------------------------------------- steps

class _TaskManagerCache:
    """lm-eval's task index costs ~15 s to build: one for the whole study (every model shares the settings)."""

    def __init__(self, config: SweepConfig) -> None:
        self.config, self.tm = config, None

    def get(self) -> Any:
        if self.tm is None:
            self.tm = build_task_manager(self.config)
        return self.tm


def materialize(variant: Variant, folder: Path) -> Path:
    """The variant as a full HF folder: the base model itself, or its adapter (scaled) merged in."""
    if variant.adapter is None:
        return Path(variant.model)
    model_dir = folder / "model"
    if (model_dir / "config.json").is_file():
        return model_dir
    from safety_bench.training.adapters import scale_adapter
    from safety_bench.training.align import merge_adapter

    adapter = Path(variant.adapter)
    if variant.scale is not None:
        adapter = folder / "adapter"
        if not (adapter / "adapter_config.json").is_file():
            scale_adapter(variant.adapter, variant.scale, adapter)
    merge_adapter(variant.model, adapter, model_dir)
    return model_dir


def evaluate_origin(config: SweepConfig, out: Path, tm: _TaskManagerCache) -> dict[str, Any]:
    """ASR of an unperturbed model with the sweep's task, prompts and judges, in a one-point sweep folder
    (same config check and atomic point files as a sweep, so it resumes the same way)."""
    config = SweepConfig(**{**{f.name: getattr(config, f.name) for f in fields(SweepConfig)}, "grid": ORIGIN_GRID})
    model = model_identity(config.model, config.name, config.dtype)
    identity = config.identity(model["weights_id"], None)
    digest = config_hash(identity)
    check_or_write_config(out, identity, digest, {"model": model, "towards": None})
    clean_partial(out)
    if not is_done(out, ORIGIN.id):
        sweeper = Sweeper(config, task_manager=tm.get())
        write_point(out, ORIGIN.id, sweeper.run_point(ORIGIN))
        del sweeper
    info = json.loads((point_dir(out, ORIGIN.id) / "point.json").read_text(encoding="utf-8"))
    return {"asr": info["asr"], "n": info["n"], "prompt_set_hash": info["prompt_set_hash"], "model": model,
            "folder": str(out)}


def run_landscape(config: SweepConfig, out: Path, tm: _TaskManagerCache, progress: bool) -> dict[str, Any]:
    """The variant's sweep (resumed point by point); the model is loaded only when a point is missing."""
    landscape_file = out / "landscape.json"
    pending = [p for p in config.grid.points() if not is_done(out, p.id)]
    if not pending and landscape_file.is_file():
        stored = json.loads((out / "config.json").read_text(encoding="utf-8"))
        landscape = json.loads(landscape_file.read_text(encoding="utf-8"))
        model = model_identity(config.model, config.name, config.dtype)
        if stored.get("config_hash") == config_hash(config.identity(model["weights_id"], None)):
            return landscape
    sweeper = Sweeper(config, task_manager=tm.get()) if pending else None
    landscape = run_sweep(config, out, sweeper=sweeper, progress=progress)
    if landscape is None:  # pragma: no cover - a single-share sweep always finishes
        raise RuntimeError(f"{out}: the landscape did not finish")
    return landscape


def attack_variant(variant: Variant, model_dir: Path, spec: AttackSpec, folder: Path, seed: int,
                   attack: AttackFn) -> Path:
    """The attacked model (made once; attack.json records what made it, and a different attack is refused)."""
    record = {"recipe": spec.recipe, "settings": spec.settings, "seed": seed, "model": str(model_dir),
              "model_weights": model_identity(str(model_dir))["weights_id"]}
    info_path, model_out = folder / "attack.json", folder / "model"
    if info_path.is_file():
        old = json.loads(info_path.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in record} != record:
            raise StudyMismatch(f"{folder} holds an attack made with other settings; use another work folder "
                                "or delete this one")
    if (model_out / "config.json").is_file() and info_path.is_file():
        return model_out
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    made = Path(attack(model_dir, None, spec.recipe, model_out, seed, dict(spec.settings)))
    if made.resolve() != model_out.resolve():  # an attack that wrote elsewhere: keep our layout
        if model_out.exists():
            shutil.rmtree(model_out)
        shutil.copytree(made, model_out)
    write_json(info_path, {**record, "created": now_iso(), "seconds": round(time.perf_counter() - t0, 1),
                           "software": software_versions()})
    return model_out


def _visage(landscape: Mapping[str, Any], judge: str) -> dict[str, Any]:
    v = (landscape.get("visage") or {}).get(judge) or {}
    return {"mean": v.get("mean"), "ci": v.get("ci"), "per_direction": v.get("per_direction"),
            "untrimmed": v.get("untrimmed")}


def run_variant(plan: StudyPlan, variant: Variant, tm: _TaskManagerCache, attack: AttackFn,
                store: Any | None, progress: bool) -> dict[str, Any]:
    """Every measurement of one model (each step reused when present); returns and records its result."""
    folder = Path(plan.out) / "variants" / variant.name
    result_path = folder / "result.json"
    if result_path.is_file():
        done = json.loads(result_path.read_text(encoding="utf-8"))
        if done.get("identity") == plan.identity() and done.get("variant") == asdict(variant):
            log.info("study: %s already measured (%s)", variant.name, result_path)
            return done
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    model_dir = materialize(variant, folder)
    config = config_from_settings(str(model_dir), plan.sweep, name=variant.name)
    landscape = run_landscape(config, folder / "landscape", tm, progress)
    landscape_dir = folder / "landscape"
    if is_done(landscape_dir, ORIGIN.id):  # the grid's α = 0 point is the origin evaluation
        origin_info = json.loads((point_dir(landscape_dir, ORIGIN.id) / "point.json").read_text(encoding="utf-8"))
        origin = {"asr": origin_info["asr"], "folder": str(landscape_dir)}
        origin_folder = landscape_dir
    else:
        origin = evaluate_origin(config, folder / "origin", tm)
        origin_folder = folder / "origin"
    attacks: dict[str, Any] = {}
    for spec in plan.attacks:
        afolder = folder / "attacks" / spec.recipe
        attacked = attack_variant(variant, model_dir, spec, afolder, plan.seed, attack)
        aconfig = config_from_settings(str(attacked), plan.sweep, name=f"{variant.name}+{spec.recipe}")
        evaluation = evaluate_origin(aconfig, afolder / "eval", tm)
        attacks[spec.recipe] = {"asr": evaluation["asr"], "weights_id": evaluation["model"]["weights_id"],
                                "folder": str(afolder)}
    result = {
        "identity": plan.identity(), "variant": asdict(variant), "name": variant.name,
        "model": landscape.get("model"), "judge": plan.judge,
        "visage": _visage(landscape, plan.judge),
        "visage_all": {j: _visage(landscape, j) for j in landscape.get("judges", [])},
        "origin_asr": origin["asr"], "attacks": attacks,
        "n_prompts": landscape.get("n_prompts"), "prompt_set_hash": landscape.get("prompt_set_hash"),
        "timing": {"seconds_this_run": round(time.perf_counter() - t0, 1)},
    }
    if store is not None:
        file_variant(store, variant, landscape_dir, origin_folder, plan, result)
    write_json(result_path, result)
    return result


def _point_records(folder: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    pdir = point_dir(folder, ORIGIN.id)
    generations = read_jsonl(pdir / "samples.jsonl")
    judged = {}
    for path in sorted(pdir.glob("judged_*.jsonl")):
        judged[path.stem.removeprefix("judged_")] = read_jsonl(path)
    return generations, judged


def file_variant(store: Any, variant: Variant, landscape_dir: Path, origin_folder: Path, plan: StudyPlan,
                 result: Mapping[str, Any]) -> None:
    """The variant's landscape, its origin answers and every attacked model's answers, into the store."""
    meta = {"study": plan.name, "variant": asdict(variant)}
    store.add_landscape(variant.name, landscape_dir, meta=dict(meta))
    generations, judged = _point_records(origin_folder)
    weights = (result.get("model") or {}).get("weights_id")
    store.add_base_run(variant.name, generations, {**meta, "model": {"weights_id": weights}}, judged=judged)
    for spec in plan.attacks:
        info = result["attacks"][spec.recipe]
        afolder = Path(info["folder"])
        generations, judged = _point_records(afolder / "eval")
        attack_meta = json.loads((afolder / "attack.json").read_text(encoding="utf-8"))
        store.add_base_run(f"{variant.name}+{spec.recipe}", generations,
                           {**meta, "model": {"weights_id": info["weights_id"]},
                            "attack": {"recipe": spec.recipe, "settings": spec.settings, "seed": plan.seed,
                                       "base_weights_id": attack_meta.get("model_weights")}},
                           judged=judged)


# ---------------------------------------------------------------------- the whole study

def check_work_folder(plan: StudyPlan) -> None:
    out = Path(plan.out)
    path = out / "plan.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("identity") != plan.identity():
            diff = sorted(k for k in plan.identity() if (stored.get("identity") or {}).get(k) != plan.identity()[k])
            raise StudyMismatch(f"{out} holds a study of other settings (differs in: {', '.join(diff)}); use "
                                "another work folder, or delete this one to start over")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"identity": plan.identity(), "name": plan.name,
                      "variants": [asdict(v) for v in plan.variants]})


def summarize(plan: StudyPlan, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The statistics per attack over the measured models (the plan's judge)."""
    judge = plan.judge
    table = [{"name": r["name"], "scale": r["variant"].get("scale"), "visage": r["visage"]["mean"],
              "origin_asr": (r["origin_asr"] or {}).get(judge),
              "attacks": {k: (v["asr"] or {}).get(judge) for k, v in r["attacks"].items()}} for r in rows]
    per_attack = {}
    for spec in plan.attacks:
        res = study_stats.association([t["visage"] for t in table], [t["attacks"].get(spec.recipe) for t in table],
                                      [t["origin_asr"] for t in table], n_boot=plan.bootstrap,
                                      n_perm=plan.permutations, seed=plan.seed)
        per_attack[spec.recipe] = res
    sizes = {str(r): study_stats.spearman_sample_size(r) for r in (0.3, 0.5, 0.7)}
    return {"format": FORMAT, "name": plan.name, "judge": judge, "n_models": len(rows), "table": table,
            "statistics": per_attack, "sample_size_for_power_0.8": sizes, "identity": plan.identity(),
            "software": software_versions()}


def render_table(summary: Mapping[str, Any]) -> str:
    attacks = list(summary["statistics"])
    head = "| model | scale | VISAGE | ASR origin % | " + " | ".join(f"ASR after {a} %" for a in attacks) + " |"
    lines = [head, "|" + "---|" * (4 + len(attacks))]

    def f(v: Any) -> str:
        return "—" if v is None else f"{v:.1f}"

    for t in summary["table"]:
        scale = "" if t["scale"] is None else f"{t['scale']:g}"
        lines.append(f"| {t['name']} | {scale} | {f(t['visage'])} | "
                     f"{f(t['origin_asr'])} | " + " | ".join(f(t["attacks"].get(a)) for a in attacks) + " |")
    lines.append("")
    for a, res in summary["statistics"].items():
        part = res.get("partial") or {}

        def fmt(r: Mapping[str, Any]) -> str:
            if r.get("rho") is None:
                return f"undefined ({r.get('note', '')})"
            ci = f" [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]" if r.get("ci") else ""
            return f"{r['rho']:+.3f}{ci}, p = {r['p']:.3g}"

        lines.append(f"- after `{a}` (judge {summary['judge']}, n = {res['n']}): Spearman rho(VISAGE, ASR) = "
                     f"{fmt(res)}; partial rho given origin ASR = {fmt(part)}")
    return "\n".join(lines) + "\n"


def _file_study(store: Any, plan: StudyPlan, out: Path) -> Path:
    """Copy the study's files into STORE/studies/<name>/ (built under a temp name, renamed into place)."""
    from safety_bench.leaderboard.store import model_slug

    parent = Path(store.root) / "studies"
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / model_slug(plan.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=parent))
    for name in ["study.json", "table.md", *sorted(p.name for p in out.glob("scatter_*.png"))]:
        shutil.copy2(out / name, tmp / name)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    publish = getattr(store, "_publish", None)
    if callable(publish):
        publish([final])
    return final


def run_study(plan: StudyPlan, attack: AttackFn | None = None, progress: bool = True,
              on_variant: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Measure every variant (resuming), then compute and write the statistics, table and plots."""
    attack = attack or run_attack
    out = Path(plan.out)
    check_work_folder(plan)
    store = None
    if plan.store:
        from safety_bench.leaderboard.remote import open_store

        store = open_store(plan.store)
    tm = _TaskManagerCache(config_from_settings("plan", plan.sweep))
    t0 = time.perf_counter()
    rows = []
    for variant in plan.variants:
        row = run_variant(plan, variant, tm, attack, store, progress)
        rows.append(row)
        if on_variant:
            on_variant(row)
    summary = summarize(plan, rows)
    summary["timing"] = {"seconds_this_run": round(time.perf_counter() - t0, 1),
                         "seconds_per_variant_when_measured": {r["name"]: r["timing"]["seconds_this_run"]
                                                                for r in rows}}
    for recipe, res in summary["statistics"].items():
        study_stats.scatter_plot(summary["table"], recipe, res, out / f"scatter_{recipe}.png", judge=plan.judge)
    write_json(out / "study.json", summary)
    tmp = out / ".table.md.tmp"
    tmp.write_text(render_table(summary), encoding="utf-8")
    os.replace(tmp, out / "table.md")
    if store is not None:
        summary["stored"] = str(_file_study(store, plan, out))
    return summary
