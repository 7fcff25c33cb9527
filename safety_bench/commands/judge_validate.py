"""`safety-bench judge-validate`: hold a judge to human labels (see `judges/validation.py`).

Every setting is checked before the judge is built or anything is written; bad input gives one line
`safety-bench judge-validate: error: <setting> <value!r>: <problem> (valid: ...)` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safety_bench.jsonio import RecordError, atomic_write_text
from safety_bench.judges.validation import SPLITS, file_hash, load_labelled, to_text, validate

COMMAND = "judge-validate"
FORMATS = ("text", "json")


class _BadSetting(ValueError):
    def __init__(self, setting: str, value: object, problem: str, valid: str | None = None) -> None:
        tail = f" (valid: {valid})" if valid else ""
        super().__init__(f"{setting} {value!r}: {problem}{tail}")


def _check(args: argparse.Namespace) -> None:
    from safety_bench.judges.registry import load_specs

    try:
        specs = load_specs(args.judges_dir or ())
    except FileNotFoundError as exc:
        raise _BadSetting("--judges-dir", args.judges_dir, str(exc)) from None
    if args.judge not in specs:
        raise _BadSetting("--judge", args.judge, "unknown judge", ", ".join(sorted(specs)))
    if not Path(args.labelled).is_file():
        raise _BadSetting("--labelled", args.labelled, "no such file", "a JSONL file of labelled cases")
    if args.split not in SPLITS:
        raise _BadSetting("--split", args.split, "unknown split", ", ".join(SPLITS))
    if args.format not in FORMATS:
        raise _BadSetting("--format", args.format, "unknown format", ", ".join(FORMATS))
    if args.bootstrap < 100:
        raise _BadSetting("--bootstrap", args.bootstrap, "too few resamples for a 95% interval", "an integer >= 100")


def _cmd_validate(args: argparse.Namespace) -> int:
    from safety_bench.commands.judges import _cache_choice, _params
    from safety_bench.judges.registry import get_judge

    try:
        _check(args)
        target, cases = load_labelled(args.labelled, args.split)
        params = _params(args)
    except (_BadSetting, ValueError) as exc:  # RecordError is a ValueError
        print(f"safety-bench {COMMAND}: error: {exc}", file=sys.stderr)
        return 2
    try:
        judge = get_judge(args.judge, extra_dirs=args.judges_dir or (), cache=_cache_choice(args), **params)
        report = validate(judge, cases, target, n_boot=args.bootstrap, seed=args.seed)
    except (KeyError, RecordError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"safety-bench {COMMAND}: error: {exc}", file=sys.stderr)
        return 2
    report["labelled"] = Path(args.labelled).name
    report["labelled_sha256"] = file_hash(args.labelled)
    report["split"] = args.split
    text = json.dumps(report, indent=2, default=str) + "\n" if args.format == "json" else to_text(report)
    if args.output:
        atomic_write_text(args.output, text)
    sys.stdout.write(text)
    if args.store:
        from safety_bench.leaderboard.remote import open_store

        path = open_store(args.store).add_validation(report)
        print(f"filed in the store: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="accuracy, Cohen's kappa and confusion of a judge against human labels")
    p.add_argument("--judge", required=True, help="judge spec name (see `safety-bench judges`)")
    p.add_argument("--labelled", required=True,
                   help="JSONL: instruction, response, and label (compliance|partial_refusal|full_refusal), "
                        "refused (bool) or harmful (0/1); optional id, category, kind, split, degenerate")
    p.add_argument("--split", default="all", help=f"which cases: {', '.join(SPLITS)} (default all)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--format", default="text", help="text (default) or json")
    p.add_argument("--output", help="also write the report to this file")
    p.add_argument("--store", help="file the validation in this results store (shown on the board)")
    p.add_argument("--judges-dir", action="append", help="extra folder of judge YAML specs (repeatable)")
    p.add_argument("--judge-param", action="append", metavar="KEY=VALUE", help="override a spec parameter")
    p.add_argument("--judge-model", help="judge model (API model name, or classifier folder/hub name)")
    p.add_argument("--base-url", help="OpenAI-compatible server for API judges")
    p.add_argument("--template", help="prompt template file with {instruction} and {response}")
    p.add_argument("--concurrency", type=int, help="simultaneous API requests")
    p.add_argument("--cache", help="judge cache file")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the judge cache")
    p.set_defaults(func=_cmd_validate)
