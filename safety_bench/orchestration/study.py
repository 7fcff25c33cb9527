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
settings) -> attacked model folder`. The default, `study_attacks.run_attack`, knows the recipes in
`study_attacks.ATTACK_RECIPES`; the plan lives in `study_plan`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from safety_bench.jsonio import read_jsonl, write_json
from safety_bench.landscape.grid import Grid, Point
from safety_bench.orchestration import study_stats
from safety_bench.orchestration.study_attacks import ATTACK_RECIPES, AttackFn, evaluation_overrides, run_attack
from safety_bench.orchestration.study_plan import FORMAT, AttackSpec, StudyPlan, Variant, load_plan
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
from safety_bench.validation import UserError

log = logging.getLogger("safety_bench.study")

__all__ = ["ATTACK_RECIPES", "AttackFn", "AttackSpec", "StudyMismatch", "StudyPlan", "Variant", "check_work_folder",
           "load_plan", "render_table", "run_attack", "run_study"]

ORIGIN = Point("origin", {}, (0.0,))
ORIGIN_GRID = Grid("1d_random", [[0.0]], [])  # the unperturbed model only: no direction is ever drawn


class StudyMismatch(UserError, RuntimeError):
    """The work folder holds a study (or an attack) of different settings."""


# ---------------------------------------------------------------------- steps

class _TaskManagerCache:
    """lm-eval's task index costs ~15 s to build: one per task metadata for the whole study. The metadata
    carries the system prompt and instruction template, so an attack evaluated with its own (identity
    shifting) gets its own index instead of silently reusing the landscape's."""

    def __init__(self) -> None:
        self.by_metadata: dict[str, Any] = {}

    def get(self, config: SweepConfig) -> Any:
        key = json.dumps(config.task_metadata(), sort_keys=True, default=str)
        if key not in self.by_metadata:
            self.by_metadata[key] = build_task_manager(config)
        return self.by_metadata[key]


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
        sweeper = Sweeper(config, task_manager=tm.get(config))
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
    sweeper = Sweeper(config, task_manager=tm.get(config)) if pending else None
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
        asked = {**plan.sweep, **evaluation_overrides(spec.recipe, spec.settings, plan.seed), **spec.eval}
        aconfig = config_from_settings(str(attacked), asked, name=f"{variant.name}+{spec.recipe}")
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
    tm = _TaskManagerCache()
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
