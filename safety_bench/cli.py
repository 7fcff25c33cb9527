"""The `safety-bench` command: thin argument parsing over library functions.

Each area registers its own subcommands (`register(subparsers)` in its `cli` module), so this file only
holds the commands of the foundation: eval, tasks, tasks-dir.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence

from safety_bench import validation as check
from safety_bench.resources import tasks_dir
from safety_bench.validation import UsageError, UserError

AREA_CLIS = (
    "safety_bench.commands.attack",
    "safety_bench.commands.judges",
    "safety_bench.commands.landscape",
    "safety_bench.commands.leaderboard",
    "safety_bench.commands.training",
    "safety_bench.commands.study",
)


def _lm_eval_argv(argv: Sequence[str]) -> list[str]:
    """lm-eval arguments with this suite's tasks folder and, without a GPU, `--device cpu` added."""
    args = list(argv)
    if args and args[0] == "run":
        args = args[1:]
    if not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        args += ["--include_path", str(tasks_dir())]
    if not any(a == "--device" or a.startswith("--device=") for a in args):
        import torch

        if not torch.cuda.is_available():
            args += ["--device", "cpu"]
    return args


def _pop_option(args: list[str], flag: str) -> str | None:
    """Remove `flag VALUE` / `flag=VALUE` from args (this suite's options that lm-eval must not see)."""
    for i, a in enumerate(args):
        if a == flag:
            if i + 1 >= len(args):
                raise SystemExit(f"safety-bench eval: {flag} needs a value")
            value = args[i + 1]
            del args[i:i + 2]
            return value
        if a.startswith(flag + "="):
            del args[i]
            return a.split("=", 1)[1]
    return None


def _option(args: Sequence[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


HF_MODEL_TYPES = ("hf", "hf-auto", "huggingface", "perturbed", "vllm", "perturbed-vllm")
# What lm-eval raises for a user's mistake it finds itself (a task it does not know, a model it cannot load,
# a bad argument value): reported as one line by the eval path; `-v` shows the traceback.
LM_EVAL_USER_ERRORS = (ValueError, OSError, KeyError, ImportError)


def _model_args(text: str | None) -> dict[str, str]:
    """lm-eval's `--model_args` (`k=v,k2=v2` or a JSON object) as strings, for the pre-checks only."""
    if not text:
        return {}
    if text.lstrip().startswith("{"):
        return {str(k): str(v) for k, v in check.json_object("--model_args", text).items()}
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def precheck_eval(args: Sequence[str]) -> None:
    """What can be checked before lm-eval starts (seconds of imports and task indexing): this suite's task
    names, a local model folder, JSON metadata, the store. lm-eval checks the rest itself."""
    tasks = _option(args, "--tasks")
    if tasks:
        for name in (n.strip() for n in tasks.split(",")):
            if name.startswith("safety_"):
                check.task("--tasks", name)
    model = _option(args, "--model") or "hf"
    pretrained = _model_args(_option(args, "--model_args")).get("pretrained")
    if pretrained and model in HF_MODEL_TYPES:
        check.model_path("--model_args pretrained", pretrained)
    metadata = _option(args, "--metadata")
    if metadata and metadata.lstrip().startswith(("{", "[")):
        check.json_object("--metadata", metadata)


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text + (" …" if len(lines) > 1 else "")


def run_lm_eval(argv: Sequence[str]) -> int:
    """Run lm-eval's own CLI in-process, with this suite's model types registered.

    `--store S --name N` (this suite's, not lm-eval's) add the run's logged samples to a results store;
    `--preset`, `--no-chat-template` and `--prompt-template` are this suite's too (commands/eval_options.py).
    """
    from safety_bench.commands.eval_options import translate

    argv, preset_lines = translate(list(argv))
    for line in preset_lines:
        print(line, flush=True)
    store, name = _pop_option(argv, "--store"), _pop_option(argv, "--name")
    output = _option(argv, "--output_path")
    if store and (not output or "--log_samples" not in argv or not name):
        print("safety-bench eval: --store needs --name, --output_path and --log_samples", file=sys.stderr)
        return 2
    if store:
        check.output_store("--store", store)
    if not any(a in ("-h", "--help") for a in argv):
        precheck_eval(argv)
    from safety_bench.harness import register
    from safety_bench.harness.lm_eval_compat import run_cli

    register()
    try:
        run_cli(_lm_eval_argv(argv))
    except UserError:
        raise
    except LM_EVAL_USER_ERRORS as exc:  # lm-eval's own checks: a task or model it cannot find, a bad value
        raise UserError(f"lm-eval stopped: {type(exc).__name__}: {_one_line(exc)} (-v shows the traceback)") \
            from exc
    if store:
        from safety_bench.leaderboard.ingest import add_path
        from safety_bench.leaderboard.remote import open_store

        for run in add_path(open_store(store), output, name):  # type: ignore[arg-type]
            print(f"added to store {store}: {run}")
    return 0


def list_tasks() -> list[tuple[str, str]]:
    """(name, kind) of every task and group this suite defines, read from the YAMLs without lm-eval."""
    from safety_bench.resources import read_task_yaml

    found = []
    for path in sorted(tasks_dir().glob("*.yaml")):
        cfg = read_task_yaml(path)
        if "group" in cfg:
            found.append((str(cfg["group"]), f"group of {len(cfg.get('task') or [])}"))
        elif "task" in cfg:
            found.append((str(cfg["task"]), "task"))
    return found


def _cmd_eval(args: argparse.Namespace) -> int:
    return run_lm_eval(args.lm_eval_args)


def _cmd_tasks(args: argparse.Namespace) -> int:
    for name, kind in list_tasks():
        print(f"{name:45s} {kind}")
    return 0


def _cmd_tasks_dir(args: argparse.Namespace) -> int:
    print(tasks_dir())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safety-bench",
        description="Safety benchmark suite for aligned LLMs (lm-eval tasks, safety landscapes, judges).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("eval", help="lm-eval's CLI with this suite's tasks and model types (same flags)",
                       description="Runs `lm_eval run` with --include_path set to this suite's tasks and the "
                       "`perturbed` model type registered. Every lm_eval flag works; without a GPU, "
                       "--device cpu is added.", add_help=False)
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("tasks", help="list this suite's tasks and groups")
    p.set_defaults(func=_cmd_tasks)
    p = sub.add_parser("tasks-dir", help="print the tasks folder (for lm_eval --include_path)")
    p.set_defaults(func=_cmd_tasks_dir)
    for module in AREA_CLIS:
        importlib.import_module(module).register(sub)
    return parser


def report_user_error(command: str, exc: BaseException, verbose: bool) -> int:
    """One line for an error the user can fix (exit 2); the traceback too with -v."""
    if verbose:
        traceback.print_exception(exc)
    kind = "error: " if isinstance(exc, UsageError) else ""
    print(f"safety-bench {command}: {kind}{exc}", file=sys.stderr)
    return 2


def _command_name(args: argparse.Namespace) -> str:
    """`leaderboard build`, `store add` ...: the command and its action, as the user typed them."""
    action = next((v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)), None)
    return f"{args.command} {action}" if action else str(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv[:1])
    if argv[:1] == ["eval"]:  # pass every flag, --help included, straight to lm-eval
        try:
            return run_lm_eval(argv[1:])
        except UserError as exc:  # a user's setting, not a bug: the message says what to do
            return report_user_error("eval", exc, verbose)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        return report_user_error(_command_name(args), exc, args.verbose)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
