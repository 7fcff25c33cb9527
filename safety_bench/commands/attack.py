"""`safety-bench attack`, `safety-bench attack-report` and `safety-bench presets` (registered by safety_bench.cli)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path

from safety_bench.settings import resolve
from safety_bench.validation import UsageError, existing_path, number, output_dir, task

# training flags: dest -> (type, help). Default None everywhere: the preset fills what is not given.
TRAIN_FLAGS = {
    "lr": (float, "learning rate"),
    "batch_size": (int, "effective batch size (examples per optimiser step)"),
    "micro_batch_size": (int, "examples per forward pass; gradients accumulate up to --batch-size"),
    "epochs": (float, "passes over the training data"),
    "n_examples": (int, "use the first N training examples (0: all)"),
    "seed": (int, "seed for LoRA init, dropout and data order"),
    "rank": (int, "LoRA rank (alpha = 2 x rank)"),
    "max_length": (int, "truncate training sequences to this many tokens"),
    "max_steps": (int, "stop after this many optimiser steps"),
    "train_data": (str, "training data: 'bundled', a JSONL file (instruction/response, Alpaca, Dolly or chat "
                   "'messages'), or a hub id; the harmful recipe needs your own file"),
    "system_prompt": (str, "system prompt preset to train and evaluate with (default, empty, safety, "
                      "identity-shift or text:...)"),
    "prompt_template": (str, "instruction template NAME|FILE|text:...{instruction}... to train and evaluate with"),
}


def _command_line(argv_args: argparse.Namespace) -> str:
    parts = ["safety-bench", "attack"]
    for action in argv_args._parser._actions:
        if not action.option_strings or action.dest in ("help",):
            continue
        value = getattr(argv_args, action.dest, None)
        if value in (None, False) or value == action.default:
            continue
        flag = action.option_strings[-1]
        if isinstance(value, list):
            for v in value:
                parts += [flag, str(v)]
        else:
            parts += [flag] if action.nargs == 0 else [flag, str(value)]
    return shlex.join(parts)


def _evaluation(args: argparse.Namespace):
    from safety_bench.orchestration.attack_eval import EvalSettings
    from safety_bench.orchestration.attacks import check_judges

    if args.no_eval:
        return None
    judges = args.judge or ["keyword", "refusal_heuristic"]
    if not args.judge and os.environ.get("OPENAI_API_KEY"):
        judges = [*judges, "gpt4_rubric"]  # a rubric endpoint is configured
    check_judges(judges)
    return EvalSettings(data=str(resolve("data", args.data)), benign=str(resolve("benign", args.benign)),
                        task=task("--task", args.task), judges=judges,
                        max_gen_toks=number("--max-gen-toks", args.max_gen_toks, minimum=1, integer=True),
                        batch_size=number("--eval-batch-size", args.eval_batch_size, minimum=1, integer=True),
                        limit=number("--limit", args.limit, minimum=1, integer=True))


def _cmd_attack(args: argparse.Namespace) -> int:
    from safety_bench.orchestration.attacks import (
        AttackSpec,
        check_model,
        resolve_settings,
        run_attack,
        settings_table,
    )

    explicit = {k: getattr(args, k) for k in TRAIN_FLAGS}
    if args.mode:
        explicit["mode"] = args.mode
    out = output_dir("--out", args.out)
    evaluation = _evaluation(args)
    base = AttackSpec(model=args.model or "", out=out, settings={}, adapter=args.adapter, evaluation=evaluation,
                      baseline=not args.no_baseline, store=args.store,
                      baseline_dir=output_dir("--baseline-dir", args.baseline_dir) if args.baseline_dir else None, name=args.name, device=args.device,
                      command=_command_line(args), progress=not args.quiet)
    if args.grid:
        from dataclasses import replace

        from safety_bench.orchestration.attack_grid import read_plan, run_grid

        plan = read_plan(existing_path("--grid", args.grid, "file"))
        plan_dir = Path(args.grid).resolve().parent
        model = args.model or plan.get("model")
        if not model:
            raise UsageError("--model", None, "give --model or `model` in the plan")
        adapter = args.adapter or plan.get("adapter")
        if adapter and not Path(adapter).is_absolute() and not Path(adapter).exists():
            adapter = str(plan_dir / adapter)
        if args.recipe:
            plan["recipe"] = args.recipe
        if args.mini:
            plan["mini"] = True
        if evaluation is not None and plan.get("evaluation"):
            for k, v in plan["evaluation"].items():
                if not hasattr(evaluation, k):
                    raise UsageError("--grid", args.grid, f"unknown evaluation setting {k!r}")
                setattr(evaluation, k, v)
        plan["settings"] = {**(plan.get("settings") or {}), **{k: v for k, v in explicit.items() if v is not None}}
        check_model(str(model), adapter)
        base = replace(base, model=str(model), adapter=adapter, store=args.store or plan.get("store"))
        summary = run_grid(plan, out, base, evaluation)
        for c in summary["cells"]:
            after = (c["record"].get("after") or {}).get("keyword", {})
            print(json.dumps({"cell": c["id"], "status": c["status"], "asr_keyword_after": after.get("asr")}))
        return 0
    if not args.model:
        raise UsageError("--model", None, "required (a model folder or 'smollm2')")
    preset, settings = resolve_settings(args.recipe, args.mini, args.preset, explicit)
    check_model(args.model, args.adapter)
    print(f"preset {preset.name}; settings:")
    print("\n".join(settings_table(settings)))
    spec = base
    spec.model, spec.settings, spec.preset = args.model, settings, preset.name
    record = run_attack(spec)
    print(json.dumps({"out": str(out), "training": record["attack"]["training"], "before": _brief(record["before"]),
                      "after": _brief(record["after"]), "store": record["store"], "timing": record["timing"]}))
    return 0


def _brief(numbers: dict | None) -> dict | None:
    if not numbers:
        return None
    return {label: {"asr": n["asr"], "over_refusal": n["over_refusal"]} for label, n in numbers.items()}


def _cmd_presets(args: argparse.Namespace) -> int:
    from safety_bench.orchestration.presets import KINDS, load_presets

    if args.kind:
        from safety_bench.validation import choice

        choice("--kind", args.kind, KINDS)
    presets = load_presets(args.kind)
    if args.json:
        print(json.dumps([{"name": p.name, "kind": p.kind, "description": p.description, "source": p.source,
                           "settings": p.settings} for p in presets.values()], indent=2))
        return 0
    for p in presets.values():
        print("\n".join(p.lines()))
        print()
    return 0


def _cmd_attack_report(args: argparse.Namespace) -> int:
    from safety_bench.leaderboard.attack_report import (
        records_from_attack_dirs,
        records_from_grid,
        records_from_store,
        write_report,
    )

    if not args.store and not args.grid_dir and not args.attack_dir:
        raise UsageError("--store", None, "give --store S, --grid-dir DIR or --attack-dir DIR")
    dirs = [existing_path("--attack-dir", d, "dir") for d in args.attack_dir or []]
    for d in dirs:
        existing_path("--attack-dir", str(d / "attack.json"), "file")
    records = []
    if args.store:
        from safety_bench.leaderboard.remote import open_store

        records += records_from_store(open_store(args.store))
    if args.grid_dir:
        records += records_from_grid(existing_path("--grid-dir", args.grid_dir, "dir"))
    records += records_from_attack_dirs(dirs)
    paths = write_report(records, output_dir("--out", args.out), judge=args.judge)
    print(json.dumps({"attacks": len(records), **{k: str(v) for k, v in paths.items()}}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's subcommands."""
    p = sub.add_parser(
        "attack", help="fine-tuning attacks (Qi et al. 2023): harmful, identity-shift, benign; ablation grids",
        description="Fine-tune a model with one attack recipe (settings from the recipe's preset, every flag "
        "overriding it), then evaluate it before and after on --data and the benign prompts (keyword and "
        "refusal_heuristic judges; the rubric too when OPENAI_API_KEY is set). --grid PLAN.yaml runs an "
        "ablation, resumable after a kill. See docs/attacks.md.")
    p.add_argument("--recipe", help="harmful, identity-shift or benign")
    p.add_argument("--mini", action="store_true", help="the recipe's CPU-sized preset (LoRA, SmolLM2-sized)")
    p.add_argument("--preset", help="an attack preset by name (safety-bench presets --kind attack)")
    p.add_argument("--grid", help="ablation plan (YAML): cells over lr, batch_size, epochs, n_examples")
    p.add_argument("--model", help="model folder (HF format), or 'smollm2'")
    p.add_argument("--adapter", help="LoRA adapter merged into --model first (e.g. the aligned one)")
    p.add_argument("--out", required=True, help="output folder (model/, eval/, attack.json; a grid: cells/)")
    p.add_argument("--mode", choices=["lora", "full"], help="LoRA or full-parameter fine-tuning")
    for dest, (kind, text) in TRAIN_FLAGS.items():
        p.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, default=None, help=text)
    p.add_argument("--no-eval", action="store_true", help="train only")
    p.add_argument("--no-baseline", action="store_true", help="do not evaluate the model before the attack")
    p.add_argument("--baseline-dir", help="folder of the before-attack evaluation, reused by attacks on the same "
                   "base with the same evaluation settings (default: OUT/eval/before)")
    p.add_argument("--data", help="harmful prompt source for evaluation: hexphi[@rev] (default), sample, a folder")
    p.add_argument("--benign", help="benign prompts for over-refusal (default: the bundled sample)")
    p.add_argument("--task", default="safety_landscape", help="harmful evaluation task (default safety_landscape)")
    p.add_argument("--judge", action="append", help="judge (repeatable; default keyword and refusal_heuristic)")
    p.add_argument("--max-gen-toks", type=int, default=64, help="answer length limit at evaluation (default 64)")
    p.add_argument("--eval-batch-size", type=int, default=16, help="generation batch size (default 16)")
    p.add_argument("--limit", type=int, help="evaluate only the first N prompts of each task")
    p.add_argument("--store", help="results store to file the baseline and the attacked model in")
    p.add_argument("--name", help="store name of the attacked model (default: '<base> + attack:<recipe>')")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_attack, _parser=p)

    p = sub.add_parser("presets", help="list the named presets (attack recipes, evaluation settings) and "
                       "every setting each one sets")
    p.add_argument("--kind", help="only presets of this kind: attack, landscape, eval")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("attack-report", help="ASR before vs after each attack: table, plots, per-category heatmap",
                       description="Reads attacked models from a results store (their `attack` provenance) or "
                       "an ablation grid folder; writes attack_report.md/.csv, before/after and ablation plots "
                       "and a per-category delta heatmap.")
    p.add_argument("--store", help="results store")
    p.add_argument("--grid-dir", help="an `attack --grid` output folder")
    p.add_argument("--attack-dir", action="append", help="an `attack` output folder (repeatable); adds McNemar "
                   "tests of before vs after on the same prompts")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--judge", default="keyword", help="judge whose ASR is plotted (default keyword)")
    p.set_defaults(func=_cmd_attack_report)
