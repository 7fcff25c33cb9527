"""`safety-bench judge`, `safety-bench judges` and `safety-bench judge-agreement`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from safety_bench import validation as check
from safety_bench.jsonio import RecordError, atomic_write_text
from safety_bench.judges.registry import get_judge, load_specs
from safety_bench.judges.run import judge_file, plan_records, run_report, summary_path
from safety_bench.records import iter_input_records


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """`--judge-param KEY=VALUE` (values read as YAML: numbers, booleans, lists) plus the shortcut flags."""
    params: dict[str, Any] = {}
    for item in args.judge_param or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--judge-param expects KEY=VALUE, got {item!r}")
        params[key.strip()] = yaml.safe_load(value) if value else None
    for flag, key in (("judge_model", "model"), ("base_url", "base_url"), ("template", "template"),
                      ("concurrency", "concurrency")):
        if getattr(args, flag, None) is not None:
            params[key] = getattr(args, flag)
    return params


def _cache_choice(args: argparse.Namespace) -> Any:
    if args.no_cache:
        return False
    return args.cache  # None: the default location (or $SAFETY_BENCH_JUDGE_CACHE)


def _cmd_judge(args: argparse.Namespace) -> int:
    try:
        judge = get_judge(args.judge, extra_dirs=args.judges_dir or (), cache=_cache_choice(args), **_params(args))
        if args.dry_run:
            print(json.dumps(plan_records(iter_input_records(args.input), judge), default=str))
            return 0
        if args.store and not args.name:
            raise ValueError("--store needs --name (the model's name in the store)")
        summary = judge_file(args.input, args.output, judge)
        if args.store:
            from safety_bench.leaderboard.ingest import add_path
            from safety_bench.leaderboard.remote import open_store

            add_path(open_store(args.store), args.output, args.name)
    except (KeyError, RecordError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"safety-bench judge: {exc}", file=sys.stderr)
        return 2
    overall = summary.get(judge.name, {}).get("overall", {})
    print(json.dumps({"judge": judge.name, "output": str(args.output), "summary": str(summary_path(args.output)),
                      **overall, "run": run_report(judge)}, default=str))
    return 0


def _cmd_judges(args: argparse.Namespace) -> int:
    for name, spec in sorted(load_specs(args.judges_dir or ()).items()):
        print(f"{name:22s} v{spec.version:5s} {spec.description.splitlines()[0] if spec.description else ''}")
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    from safety_bench.judges.agreement import agreement, load_judged, to_markdown

    for path in args.input:
        check.existing_path("--input", path, "file")
    if args.output:
        check.output_file("--output", args.output)

    try:
        report = agreement(load_judged(args.input))
    except (RecordError, FileNotFoundError, ValueError) as exc:
        print(f"safety-bench judge-agreement: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2, default=str) + "\n" if args.format == "json" else to_markdown(report)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="judge records offline (JSONL or an lm-eval samples folder)")
    p.add_argument("--judge", default="keyword", help="judge spec name (see `safety-bench judges`)")
    p.add_argument("--input", required=True, help="JSONL with instruction/response, or lm-eval output folder")
    p.add_argument("--output", help="judged JSONL; aggregates go to *.summary.json beside it")
    p.add_argument("--judges-dir", action="append", help="extra folder of judge YAML specs (repeatable)")
    p.add_argument("--judge-param", action="append", metavar="KEY=VALUE",
                   help="override a spec parameter (repeatable), e.g. threshold=0.7 or device=cuda")
    p.add_argument("--judge-model", help="judge model (API model name, or classifier folder/hub name)")
    p.add_argument("--base-url", help="OpenAI-compatible server for API judges (default $OPENAI_BASE_URL)")
    p.add_argument("--template", help="prompt template file with {instruction} and {response}")
    p.add_argument("--concurrency", type=int, help="simultaneous API requests")
    p.add_argument("--cache", help="judge cache file (default $SAFETY_BENCH_JUDGE_CACHE or "
                   "<cache dir>/judge_cache.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the judge cache")
    p.add_argument("--dry-run", action="store_true",
                   help="print how many API calls and tokens the run would need (after cache hits); call nothing")
    p.add_argument("--store", help="also add the judged records to this results store")
    p.add_argument("--name", help="the model's name in the store (with --store)")
    p.set_defaults(func=_checked_judge)
    p = sub.add_parser("judges", help="list the known judges")
    p.add_argument("--judges-dir", action="append", help="extra folder of judge YAML specs (repeatable)")
    p.set_defaults(func=_cmd_judges)
    p = sub.add_parser("judge-agreement", help="Cohen's kappa and confusion tables between judges")
    p.add_argument("--input", nargs="+", required=True, help="judged JSONL files (records matched by id)")
    p.add_argument("--output", help="write the report here instead of stdout")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.set_defaults(func=_cmd_agreement)
    from safety_bench.commands.judge_validate import register as register_validate

    register_validate(sub)


def _checked_judge(args: argparse.Namespace) -> int:
    """Every setting checked before a judge is built or a file written (--dry-run too)."""
    if not args.dry_run and not args.output:
        print("safety-bench judge: --output is required (except with --dry-run)", file=sys.stderr)
        return 2
    for folder in args.judges_dir or ():
        check.existing_path("--judges-dir", folder, "dir")
    check.judge("--judge", args.judge, names=sorted(load_specs(args.judges_dir or ())))
    check.existing_path("--input", args.input)
    if args.output:
        check.output_file("--output", args.output)
    check.number("--concurrency", args.concurrency, minimum=1, integer=True)
    if args.template:
        check.existing_path("--template", args.template, "file")
    if args.store:
        check.output_store("--store", args.store)
    return _cmd_judge(args)
