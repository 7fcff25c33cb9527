"""Subcommands of this area: `leaderboard build`, `compare`, `nightly`, `store add` (thin wrappers)."""

from __future__ import annotations

import argparse
import json
import sys

from safety_bench import validation as check
from safety_bench.jsonio import RecordError


def _err(command: str, exc: BaseException) -> int:
    print(f"safety-bench {command}: {exc}", file=sys.stderr)
    return 2


def _cmd_build(args: argparse.Namespace) -> int:
    from safety_bench.leaderboard.board_config import BoardSettings, board_settings, load_board_settings
    from safety_bench.leaderboard.ranking import build_board
    from safety_bench.leaderboard.remote import open_store
    from safety_bench.leaderboard.render import write_board
    from safety_bench.leaderboard.store import StoreError

    check.existing_store("--store", args.store)  # a read path: a typo must not create an empty store
    check.output_dir("--out", args.out)
    settings = load_board_settings(args.config) if args.config else BoardSettings()
    if args.over_refusal_threshold is not None:  # the flag wins over the config file
        settings = board_settings({"over_refusal_threshold": args.over_refusal_threshold}, "--over-refusal")
    try:
        store = open_store(args.store)
        problems = store.reindex() if args.reindex else []
        board = build_board(store, harm_judge=args.harm_judge, visage_judge=args.visage_judge,
                            refusal_judge=args.refusal_judge,
                            over_refusal_threshold=settings.over_refusal_threshold)
    except (StoreError, OSError) as exc:
        return _err("leaderboard build", exc)
    board.log = [f"index: {p}" for p in problems] + board.log
    paths = write_board(board, args.out)
    for line in board.log:
        print(f"warning: {line}", file=sys.stderr)
    print(json.dumps({"models": len(board.rows), "skipped": len(board.skipped), "warnings": len(board.log),
                      **{k: str(v) for k, v in paths.items()}}))
    if args.strict and board.skipped:
        print(f"safety-bench leaderboard build: --strict: {len(board.skipped)} run(s) or model(s) skipped "
              "(see the warnings above and build.log)", file=sys.stderr)
        return 1
    return 0


def _cmd_store_add(args: argparse.Namespace) -> int:
    from safety_bench.leaderboard.ingest import add_path
    from safety_bench.leaderboard.remote import open_store
    from safety_bench.leaderboard.store import StoreError

    check.existing_path("path", args.path)
    check.output_store("--store", args.store)
    if args.judge:
        from safety_bench.judges.registry import load_specs

        check.judge("--judge", args.judge, names=sorted(load_specs()))
    try:
        runs = add_path(open_store(args.store), args.path, args.name, weights_id=args.weights_id, judge=args.judge)
    except (StoreError, RecordError, OSError, KeyError, ValueError) as exc:
        return _err("store add", exc)
    for run in runs:
        print(json.dumps({"model": run.model, "kind": run.kind, "run": run.run_id, "judges": run.judges,
                          "path": str(run.path)}))
    return 0


def _cmd_store_list(args: argparse.Namespace) -> int:
    from safety_bench.leaderboard.remote import open_store

    store = open_store(check.existing_store("--store", args.store))
    for m in store.models():
        for run in store.runs(m["name"]):
            print(f"{m['name']:30s} {run.kind:9s} {run.run_id} {run.created} "
                  f"{','.join(f'{j}@{v}' for j, v in sorted(run.judges.items()))}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from safety_bench.jsonio import atomic_write_text, write_json
    from safety_bench.leaderboard.compare import Thresholds, compare, load_side, regressions
    from safety_bench.leaderboard.compare_report import json_report, markdown_report
    from safety_bench.leaderboard.store import StoreError

    if args.store:
        check.existing_store("--store", args.store)
    check.number("--alpha", args.alpha, minimum=0, maximum=1, exclusive_minimum=True)
    check.number("--min-delta", args.min_delta, minimum=0, maximum=1)
    check.number("--max-visage-drop", args.max_visage_drop, minimum=0, maximum=100)
    check.number("--max-flips", args.max_flips, minimum=0, integer=True)
    for flag, value in (("--out", args.out), ("--json", args.json)):
        if value:
            check.output_file(flag, value)
    try:
        base = load_side(args.baseline, args.store)
        cand = load_side(args.candidate, args.store)
        result = compare(base, cand, judges=args.judge, seed=args.seed)
    except (StoreError, RecordError, OSError, ValueError) as exc:
        return _err("compare", exc)
    thresholds = Thresholds(alpha=args.alpha, min_delta=args.min_delta, max_visage_drop=args.max_visage_drop,
                            categories=args.gate_categories)
    reasons = regressions(result, thresholds)
    report = markdown_report(result, reasons, max_flips=args.max_flips)
    if args.out:
        atomic_write_text(Path(args.out), report)
    if args.json:
        write_json(Path(args.json), json_report(result, reasons))
    sys.stdout.write(report)
    if args.fail_on_regression and reasons:
        print(f"safety-bench compare: candidate is significantly less safe ({len(reasons)} finding(s))",
              file=sys.stderr)
        return 1
    return 0


def _cmd_nightly(args: argparse.Namespace) -> int:
    from safety_bench.leaderboard.lock import LockHeld
    from safety_bench.leaderboard.store import StoreError
    from safety_bench.orchestration.nightly import ConfigError, load_config, run_nightly
    from safety_bench.orchestration.ray_executor import ClusterError

    check.existing_path("--config", args.config, "file")
    ray_options = None
    if args.executor == "ray":
        from safety_bench.orchestration.ray_executor import RayNotInstalled, import_ray, options_from_args

        ray_options = options_from_args(args)
        problems = ray_options.problems()
        if not problems:
            try:
                import_ray()
            except RayNotInstalled as exc:
                problems = [str(exc)]
        if problems:
            print(f"safety-bench nightly: error: {problems[0]}", file=sys.stderr)
            return 2
    try:
        cfg = load_config(args.config)
        _check_nightly(cfg, args.config)
        report = run_nightly(cfg, executor=args.executor, ray_options=ray_options)
    except LockHeld as exc:
        print(f"safety-bench nightly: another run holds the lock: {exc}", file=sys.stderr)
        return 3
    except (ConfigError, StoreError, ClusterError) as exc:
        return _err("nightly", exc)
    for gap in report.gaps:
        print(f"warning: {gap}", file=sys.stderr)
    for name, err in report.failures.items():
        print(f"FAILED {name}: {err}", file=sys.stderr)
    for entry in report.board_skipped:
        print(f"SKIPPED on the board (strict): {entry}", file=sys.stderr)
    print(json.dumps({"generations": report.generations, "judge_calls": report.judge_calls, "sweeps": report.sweeps,
                      "failed": sorted(report.failures), "board": str(report.board.get("html", ""))}))
    return report.exit_code


def _check_nightly(cfg, path: str) -> None:
    """The config's names, presets and output paths, checked before the lock is taken or a model is loaded."""
    from safety_bench.harness.system_prompts import PRESETS
    from safety_bench.judges.registry import load_specs

    where = f"{path}:"
    for task in cfg.tasks:
        if str(task).startswith("safety_"):
            check.task(f"{where} tasks", task)
    judges = sorted(load_specs())
    for judge in cfg.judges:
        check.judge(f"{where} judges", judge, names=judges)
    check.system_prompt(f"{where} system_prompt", cfg.system_prompt, list(PRESETS))
    check.data_source(f"{where} data", cfg.data)
    check.output_store(f"{where} store", cfg.store)
    check.output_dir(f"{where} out", cfg.out)
    for sweep in [cfg.sweep, *(spec.sweep or {} for spec in cfg.models)]:  # the landscape flags' own checks
        for key, low in (("points", 2), ("beta_points", 2), ("directions", 1), ("steps", 1), ("extra", 0),
                         ("limit", 1), ("max_gen_toks", 1)):
            check.number(f"{where} sweep.{key}", sweep.get(key), minimum=low, integer=True)
        for key in ("range", "beta_range"):
            check.number(f"{where} sweep.{key}", sweep.get(key), minimum=0, exclusive_minimum=True)
        if sweep.get("task"):
            check.task(f"{where} sweep.task", sweep["task"])
        for judge in [sweep["judges"]] if isinstance(sweep.get("judges"), str) else sweep.get("judges") or []:
            check.judge(f"{where} sweep.judges", judge, names=judges)
    # a model's missing checkpoint is that model's failure, not the night's: run_nightly reports it and goes on


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's subcommands."""
    p = sub.add_parser("leaderboard", help="build the leaderboard from a results store")
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    b = lsub.add_parser("build", help="rank the store's models; write leaderboard.md/.csv/.json and index.html",
                        description="Ranks by VISAGE (higher first), ties by harm rate; models without a landscape "
                        "follow by harm rate. Corrupt entries are reported and skipped.")
    b.add_argument("--store", required=True, help="results store: a folder or an fsspec URL (s3://…, gs://…)")
    b.add_argument("--out", required=True, help="output folder for the board")
    b.add_argument("--harm-judge", help="judge for the harm rate (default: a rubric judge if any, else keyword)")
    b.add_argument("--visage-judge", help="landscape judge for VISAGE (default: keyword)")
    b.add_argument("--refusal-judge", help="judge for over-refusal on benign prompts (default: keyword)")
    b.add_argument("--config", help="a leaderboard YAML whose `board:` section sets e.g. over_refusal_threshold "
                   "(leaderboards/nightly.yaml)")
    b.add_argument("--over-refusal-threshold", type=float,
                   help="flag models whose over-refusal exceeds this fraction (default 0.2, or the config's)")
    b.add_argument("--reindex", action="store_true", help="rebuild the store's SQLite index from its files first")
    b.add_argument("--strict", action="store_true",
                   help="exit 1 when any run or model was skipped as corrupt (the board is still written)")
    b.set_defaults(func=_cmd_build)

    p = sub.add_parser("store", help="manage a results store")
    ssub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    a = ssub.add_parser("add", help="add outputs made elsewhere: an lm-eval output folder (with samples), a "
                        "judged JSONL, or a landscape folder")
    a.add_argument("path")
    a.add_argument("--store", required=True)
    a.add_argument("--name", required=True, help="model name on the board")
    a.add_argument("--weights-id", help="weights id (default: computed from a local pretrained= path if any)")
    a.add_argument("--judge", help="judge records that carry no verdict with this judge (default keyword)")
    a.set_defaults(func=_cmd_store_add)
    ls = ssub.add_parser("list", help="list the store's models and runs")
    ls.add_argument("--store", required=True)
    ls.set_defaults(func=_cmd_store_list)

    c = sub.add_parser("compare", help="paired comparison of a candidate checkpoint against a baseline",
                       description="A and B are model names in --store or result folders/files (lm-eval output "
                       "folder, judged JSONL, landscape folder). Prints a Markdown report.")
    c.add_argument("--baseline", required=True)
    c.add_argument("--candidate", required=True)
    c.add_argument("--store", help="results store holding the named models")
    c.add_argument("--judge", action="append", help="compare only this judge (repeatable; default: all shared)")
    c.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when the candidate is significantly less safe")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    c.add_argument("--min-delta", type=float, default=0.0,
                   help="smallest harm-rate increase (fraction, e.g. 0.02) that counts as a regression")
    c.add_argument("--max-visage-drop", type=float, default=0.0,
                   help="VISAGE points the candidate may lose (CI entirely below 0) before it counts")
    c.add_argument("--gate-categories", action="store_true",
                   help="also gate each category (Bonferroni-corrected alpha)")
    c.add_argument("--max-flips", type=int, help="list at most this many flipped prompts per judge")
    c.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    c.add_argument("--out", help="also write the Markdown report here")
    c.add_argument("--json", help="also write the numbers as JSON here")
    c.set_defaults(func=_cmd_compare)

    n = sub.add_parser("nightly", help="evaluate new/changed models from a config, then rebuild the board")
    n.add_argument("--config", required=True, help="e.g. leaderboards/nightly.yaml")
    from safety_bench.orchestration.ray_executor import add_arguments

    add_arguments(n, what="task")  # --executor ray: evaluations and sweeps due tonight as parallel Ray tasks
    n.set_defaults(func=_cmd_nightly)
