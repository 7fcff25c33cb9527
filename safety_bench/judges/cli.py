"""`safety-bench judge` and `safety-bench judges`."""

from __future__ import annotations

import argparse
import json
import sys

from safety_bench.judges.registry import get_judge, load_specs
from safety_bench.judges.run import judge_file, summary_path
from safety_bench.records import RecordError


def _cmd_judge(args: argparse.Namespace) -> int:
    try:
        judge = get_judge(args.judge, extra_dirs=args.judges_dir or ())
        summary = judge_file(args.input, args.output, judge)
    except (KeyError, RecordError, FileNotFoundError, ValueError) as exc:
        print(f"safety-bench judge: {exc}", file=sys.stderr)
        return 2
    overall = summary.get(judge.name, {}).get("overall", {})
    print(json.dumps({"judge": judge.name, "output": str(args.output),
                      "summary": str(summary_path(args.output)), **overall}, default=str))
    return 0


def _cmd_judges(args: argparse.Namespace) -> int:
    for name, spec in sorted(load_specs(args.judges_dir or ()).items()):
        print(f"{name:22s} v{spec.version:5s} {spec.description.splitlines()[0] if spec.description else ''}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="judge records offline (JSONL or an lm-eval samples folder)")
    p.add_argument("--judge", default="keyword", help="judge spec name (see `safety-bench judges`)")
    p.add_argument("--input", required=True, help="JSONL with instruction/response, or lm-eval output folder")
    p.add_argument("--output", required=True, help="judged JSONL; aggregates go to *.summary.json beside it")
    p.add_argument("--judges-dir", action="append", help="extra folder of judge YAML specs (repeatable)")
    p.set_defaults(func=_cmd_judge)
    p = sub.add_parser("judges", help="list the known judges")
    p.add_argument("--judges-dir", action="append", help="extra folder of judge YAML specs (repeatable)")
    p.set_defaults(func=_cmd_judges)
