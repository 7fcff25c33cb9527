"""`safety-bench attack --grid PLAN.yaml`: an ablation over learning rate x effective batch x epochs x
number of examples (any attack setting can be an axis), resumable after a kill.

PLAN.yaml:

    recipe: identity-shift        # or `preset: NAME`
    mini: true
    model: smollm2                # --model / --adapter on the command line win
    adapter: artifacts/smollm2-aligned-lora
    settings: {seed: 0}           # fixed settings for every cell (over the preset)
    evaluation: {data: sample, max_gen_toks: 48, judges: [keyword, refusal_heuristic]}
    grid:
      lr: [1.0e-4, 3.0e-4]
      batch_size: [5, 10]
      epochs: [1, 3]
      n_examples: [5, 10]

Each cell runs `run_attack` into `OUT/cells/<cell id>/`; a cell is finished exactly when its
`attack.json` exists (written last, atomically). A re-run skips finished cells and starts unfinished ones
afresh. The base model is evaluated once (`OUT/baseline/`) and shared by every cell. `OUT/grid.json`
lists the plan and, when all cells are done, every cell's record.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from safety_bench.jsonio import read_json, write_json
from safety_bench.orchestration.attack_eval import EvalSettings
from safety_bench.orchestration.attacks import (
    ATTACK_FILE,
    DEFAULTS,
    AttackSpec,
    clear_partial,
    resolve_settings,
    run_attack,
)
from safety_bench.validation import UsageError

GRID_FILE = "grid.json"
PLAN_KEYS = ("recipe", "preset", "mini", "model", "adapter", "settings", "evaluation", "grid", "store", "name")


def read_plan(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        plan = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError("--grid", str(path), f"cannot read the plan ({exc})") from None
    if not isinstance(plan, dict):
        raise UsageError("--grid", str(path), "the plan must be a YAML mapping")
    unknown = sorted(set(plan) - set(PLAN_KEYS))
    if unknown:
        raise UsageError("--grid", str(path), f"unknown plan key {unknown[0]!r}", PLAN_KEYS)
    grid = plan.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise UsageError("--grid", str(path), "needs a `grid` mapping of setting -> list of values")
    for axis, values in grid.items():
        if axis not in DEFAULTS:
            raise UsageError("--grid", str(path), f"grid axis {axis!r} is not an attack setting", sorted(DEFAULTS))
        if not isinstance(values, list) or not values:
            raise UsageError("--grid", str(path), f"grid axis {axis!r} needs a non-empty list")
    return plan


def cells(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    axes = sorted(grid)
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*(grid[a] for a in axes))]


def cell_id(cell: dict[str, Any]) -> str:
    text = "_".join(f"{k}={cell[k]:g}" if isinstance(cell[k], float) else f"{k}={cell[k]}" for k in sorted(cell))
    return re.sub(r"[^A-Za-z0-9_.=+-]", "-", text)


def plan_specs(plan: dict[str, Any], out: Path, base: AttackSpec, evaluation: EvalSettings | None
               ) -> list[tuple[str, AttackSpec]]:
    """(cell id, spec) for every cell, validated before anything runs."""
    fixed = dict(plan.get("settings") or {})
    specs = []
    for cell in cells(plan["grid"]):
        preset, settings = resolve_settings(plan.get("recipe"), bool(plan.get("mini")), plan.get("preset"),
                                            {**fixed, **cell})
        cid = cell_id(cell)
        specs.append((cid, replace(base, out=out / "cells" / cid, settings=settings, preset=preset.name,
                                   evaluation=replace(evaluation) if evaluation else None,
                                   baseline_dir=out / "baseline", grid_cell=cell)))
    return specs


def run_grid(plan: dict[str, Any], out: str | Path, base: AttackSpec, evaluation: EvalSettings | None,
             on_cell: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every unfinished cell; returns {plan, cells: [{id, cell, status, record}]}."""
    out = Path(out)
    specs = plan_specs(plan, out, base, evaluation)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / GRID_FILE, {"plan": plan, "cells": [{"id": cid, "cell": s.grid_cell} for cid, s in specs]})
    done: list[dict[str, Any]] = []
    for cid, spec in specs:
        if (spec.out / ATTACK_FILE).is_file():
            logging.getLogger("safety_bench.attack").info("grid: cell %s already done", cid)
            done.append({"id": cid, "cell": spec.grid_cell, "status": "reused",
                         "record": read_json(spec.out / ATTACK_FILE)})
            continue
        clear_partial(spec.out)
        record = run_attack(spec)
        done.append({"id": cid, "cell": spec.grid_cell, "status": "ran", "record": record})
        if on_cell:
            on_cell(cid, record)
    summary = {"plan": plan, "cells": done}
    write_json(out / GRID_FILE, summary)
    return summary
