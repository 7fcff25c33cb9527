"""`safety-bench study visage-vs-attack PLAN.yaml` (registered by safety_bench.cli).

A command rather than an example script because the study is a plan-driven, resumable pipeline that files
into the results store like `landscape` and `nightly` do, and users run it on their own families of
checkpoints; the logic lives in `safety_bench.orchestration.study`.
"""

from __future__ import annotations

import argparse
import json


def _cmd_visage_vs_attack(args: argparse.Namespace) -> int:
    from safety_bench.orchestration.study import load_plan, render_table, run_study

    plan = load_plan(args.plan, out=args.out, store=args.store)  # every setting checked before any work
    if args.dry_run:
        print(json.dumps({"name": plan.name, "out": plan.out, "store": plan.store,
                          "variants": [v.name for v in plan.variants],
                          "attacks": [a.recipe for a in plan.attacks],
                          "grid_points_per_variant": len(plan_grid_points(plan)),
                          "evaluations": len(plan.variants) * (len(plan_grid_points(plan)) + len(plan.attacks))},
                         indent=2))
        return 0
    summary = run_study(plan, progress=not args.no_progress)
    print(render_table(summary), end="")
    print(f"study written to {plan.out}/study.json" + (f"; filed in {summary['stored']}" if "stored" in summary
                                                       else ""))
    return 0


def plan_grid_points(plan) -> list:
    from safety_bench.orchestration.sweep import config_from_settings

    return config_from_settings("plan", plan.sweep).grid.points()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="cross-model studies (visage-vs-attack: does VISAGE predict fine-tuning risk?)",
                       description="Studies that run the sweep and the attacks over a family of models.")
    studies = p.add_subparsers(dest="study", metavar="STUDY")
    q = studies.add_parser(
        "visage-vs-attack", help="VISAGE vs ASR after fine-tuning attacks across a family of models",
        description="For every model of the plan's family: the 1D landscape and VISAGE, the ASR at the origin "
        "and after each attack (same seed, data and settings for all); then Spearman's rho between VISAGE and "
        "post-attack ASR (bootstrap CI, permutation p), the partial rho given the origin's ASR, a table and "
        "a scatter plot per attack. Resumable: re-run the same command to continue. See docs/study.md.")
    q.add_argument("plan", metavar="PLAN.yaml", help="the study plan (family, sweep, attacks, statistics)")
    q.add_argument("--out", help="work folder (overrides the plan's `out`)")
    q.add_argument("--store", help="results store to file everything in (overrides the plan's `store`)")
    q.add_argument("--dry-run", action="store_true", help="check the plan and print what it would run")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_visage_vs_attack)
    p.set_defaults(func=lambda args: p.print_help() or 0)
