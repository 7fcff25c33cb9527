"""`safety-bench align`, `safety-bench finetune` and `safety-bench refusal-check` (registered by safety_bench.cli)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from safety_bench import validation as check

SYSTEM_VARIANTS = ("default", "empty")


def _command_line(args: argparse.Namespace) -> str:
    """The command with every setting that differs from its default spelled out (how it was parsed,
    whether it came from a shell or from `main([...])`)."""
    parts = ["safety-bench", args.command]
    for action in args._parser._actions:
        if not action.option_strings or action.dest in ("help", "quiet"):
            continue
        value = getattr(args, action.dest, None)
        if value == action.default and action.dest != "seed":  # the seed is always spelled out
            continue
        flag = action.option_strings[-1]
        parts += [flag] if action.nargs == 0 else [flag, str(value)]
    return shlex.join(parts)


def _lora(args: argparse.Namespace):
    from safety_bench.training.align import LoraSettings

    targets = args.target_modules
    return LoraSettings(rank=args.rank, alpha=args.alpha if args.alpha is not None else 2 * args.rank,
                        dropout=args.lora_dropout,
                        target_modules=targets if targets == "all-linear" else targets.split(","))


def _variants(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _model(setting: str, value: str) -> None:
    if value != "smollm2":  # the embedded SmolLM2
        check.model_path(setting, value)


def _check_training(args: argparse.Namespace) -> None:
    """The settings align and finetune share, checked before a model is loaded or --out written."""
    check.output_dir("--out", args.out)
    for flag, low in (("epochs", 0), ("lr", 0)):
        check.number(f"--{flag}", getattr(args, flag), minimum=low, exclusive_minimum=True)
    for flag in ("batch_size", "max_steps", "rank", "alpha", "max_length"):
        check.number("--" + flag.replace("_", "-"), getattr(args, flag), minimum=1, integer=True)
    check.number("--seed", args.seed, minimum=0, integer=True)
    check.number("--lora-dropout", args.lora_dropout, minimum=0, maximum=0.99)
    for variant in _variants(args.system_variants) or (args.system_variants,):
        check.choice("--system-variants", variant, SYSTEM_VARIANTS)
    if args.adapter:
        check.existing_path("--adapter", args.adapter, "dir")


def _cmd_align(args: argparse.Namespace) -> int:
    from safety_bench.training.align import AlignConfig, align, merge_adapter

    _model("--base", args.base)
    _check_training(args)
    for flag in ("harmful_per_category", "benign_limit", "distill_max_new_tokens", "gen_batch_size"):
        check.number("--" + flag.replace("_", "-"), getattr(args, flag), minimum=1, integer=True)
    for flag in ("harmful", "benign"):
        if getattr(args, flag):
            check.existing_path(f"--{flag}", getattr(args, flag), "file")

    try:
        if args.merge:
            if not args.adapter:
                print("safety-bench align: --merge needs --adapter", file=sys.stderr)
                return 2
            out = merge_adapter(args.base, args.adapter, args.out)
            print(json.dumps({"merged": str(out)}))
            return 0
        if args.benign_repeat < 1:
            print(f"safety-bench align: error: --benign-repeat {args.benign_repeat!r}: must be at least 1 "
                  "(valid: 1, 2, 3, ...)", file=sys.stderr)
            return 2
        config = AlignConfig(seed=args.seed, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                             max_steps=args.max_steps, lora=_lora(args),
                             distill_max_new_tokens=args.distill_max_new_tokens, gen_batch_size=args.gen_batch_size,
                             max_length=args.max_length, system_variants=_variants(args.system_variants),
                             harmful_per_category=args.harmful_per_category, benign_limit=args.benign_limit,
                             harmful_file=args.harmful, benign_file=args.benign,
                             borderline=not args.no_borderline, borderline_file=args.borderline,
                             borderline_limit=args.borderline_limit, benign_repeat=args.benign_repeat,
                             init_adapter=args.init_adapter,
                             device=args.device,
                             dtype=args.dtype, save_dtype=args.save_dtype)
        out = align(args.base, args.out, config, command=_command_line(args), progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"safety-bench align: {exc}", file=sys.stderr)
        return 2
    recipe = json.loads((Path(out) / "recipe.json").read_text(encoding="utf-8"))
    print(json.dumps({"adapter": str(out), **recipe["result"], "total_s": recipe["timing"]["total_s"]}))
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from safety_bench.training.finetune import FinetuneConfig, finetune

    _model("--model", args.model)
    _check_training(args)
    check.number("--limit", args.limit, minimum=1, integer=True)
    if args.data:
        check.existing_path("--data", args.data, "file")

    config = FinetuneConfig(mode="full" if args.full else "lora", lr=args.lr, batch_size=args.batch_size,
                            epochs=args.epochs, max_steps=args.max_steps, seed=args.seed, lora=_lora(args),
                            data=args.data, limit=args.limit, merge=args.merge,
                            system_variants=_variants(args.system_variants), max_length=args.max_length,
                            device=args.device, dtype=args.dtype)
    try:
        out = finetune(args.model, args.out, adapter=args.adapter, config=config, command=_command_line(args),
                       progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"safety-bench finetune: {exc}", file=sys.stderr)
        return 2
    recipe = json.loads((Path(out) / "recipe.json").read_text(encoding="utf-8"))
    print(json.dumps({"output": str(out), "layout": recipe["layout"], **recipe["result"],
                      "total_s": recipe["timing"]["total_s"]}))
    return 0


def _cmd_refusal_check(args: argparse.Namespace) -> int:
    from safety_bench.training.evaluate import refusal_check

    _model("--model", args.model)
    if args.adapter:
        check.existing_path("--adapter", args.adapter, "dir")
    check.choice("--system", args.system, ("default", "empty", "safety"))
    check.max_gen_toks("--max-new-tokens", args.max_new_tokens, None if args.model == "smollm2" else args.model)
    for flag in ("batch_size", "harmful_limit", "benign_limit"):
        check.number("--" + flag.replace("_", "-"), getattr(args, flag), minimum=1, integer=True)
    if args.output:
        check.output_file("--output", args.output)

    try:
        result = refusal_check(args.model, adapter=args.adapter, system=args.system,
                               max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                               harmful_limit=args.harmful_limit, benign_limit=args.benign_limit,
                               device=args.device, progress=not args.quiet,
                               borderline=not args.no_borderline, borderline_limit=args.borderline_limit)
    except (FileNotFoundError, ValueError) as exc:
        print(f"safety-bench refusal-check: {exc}", file=sys.stderr)
        return 2
    if args.output:
        from safety_bench.jsonio import atomic_write_text

        atomic_write_text(args.output, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "records"}))
    return 0


def _training_flags(p: argparse.ArgumentParser, lr_help: str, epochs: float) -> None:  # shared by both
    p.add_argument("--seed", type=int, default=0, help="seed for LoRA init, dropout and data order (default 0)")
    p.add_argument("--epochs", type=float, default=epochs, help=f"passes over the data (default {epochs:g})")
    p.add_argument("--lr", type=float, default=None if "mode" in lr_help else 2e-4, help=lr_help)
    p.add_argument("--batch-size", type=int, default=8, help="examples per optimiser step (default 8)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=int, default=None, help="LoRA alpha (default 2 x rank)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--target-modules", default="all-linear",
                   help="LoRA targets: 'all-linear' (every linear layer but the output head) or a comma list")
    p.add_argument("--system-variants", default="default,empty",
                   help="system turns to render training examples with, in rotation: 'default' (the template's "
                   "own) and/or 'empty' (an explicit empty system turn); default: default,empty")
    p.add_argument("--max-length", type=int, default=384, help="truncate training sequences to this many tokens")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's subcommands."""
    p = sub.add_parser(
        "align", help="LoRA safety tuning of a chat model (refusals + self-distilled benign answers)",
        description="Train a LoRA adapter that makes a chat model refuse harmful requests while keeping its "
        "benign answers (its own greedy answers, generated once and cached in --out). With --merge, fold an "
        "adapter into the base and write a full HF folder instead. See docs/training.md.")
    p.add_argument("--base", required=True, help="base model folder (HF format), or 'smollm2' for the embedded one")
    p.add_argument("--out", required=True, help="output folder (adapter, recipe.json, train_log.jsonl, cache)")
    p.add_argument("--merge", action="store_true", help="merge --adapter into --base and write a full model to --out")
    p.add_argument("--adapter", help="with --merge: the adapter folder to merge")
    _training_flags(p, "learning rate (default 2e-4)", 2.0)
    p.add_argument("--harmful", help="JSONL of harmful requests with refusals (instruction, response); "
                   "default: the bundled 220")
    p.add_argument("--benign", help="JSONL of benign prompts to self-distil (instruction); default: the bundled set")
    p.add_argument("--borderline", help="JSONL of borderline-safe prompts to self-distil (instruction); "
                   "default: the bundled 160 (align_borderline.jsonl)")
    p.add_argument("--no-borderline", action="store_true", help="train without borderline-safe prompts "
                   "(the v1 recipe's data)")
    p.add_argument("--harmful-per-category", type=int, help="use at most N harmful pairs per category")
    p.add_argument("--benign-limit", type=int, help="use at most N benign prompts")
    p.add_argument("--borderline-limit", type=int, help="use at most N borderline-safe prompts")
    p.add_argument("--init-adapter", help="continue training this LoRA adapter folder (same --rank) instead of "
                   "a fresh one, e.g. to correct an existing adapter's over-refusal")
    p.add_argument("--benign-repeat", type=int, default=1,
                   help="show each benign/borderline example N times per epoch (the mix; default 1)")
    p.add_argument("--distill-max-new-tokens", type=int, default=48,
                   help="length limit of the base model's self-distilled answers (default 48)")
    p.add_argument("--gen-batch-size", type=int, default=16, help="batch size for self-distillation (default 16)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights dtype (auto: bfloat16 on a GPU that supports it, else float32)")
    p.add_argument("--save-dtype", default="float16", choices=["float32", "bfloat16", "float16"],
                   help="dtype of the saved adapter weights (default float16: half the size of float32)")
    p.set_defaults(func=_cmd_align, _parser=p)

    p = sub.add_parser(
        "finetune", help="benign fine-tuning (LoRA or full) of a model, the fine-tuning attack in miniature",
        description="Fine-tune a model (optionally with an aligned adapter merged first) on benign instruction "
        "data only: the bundled helpful Q&A set or --data JSONL (instruction/response). --full (or --lora "
        "--merge) writes a full HF folder with the same names and shapes, for interpolation; --lora writes an "
        "adapter. See docs/training.md.")
    p.add_argument("--model", required=True, help="model folder (HF format), or 'smollm2'")
    p.add_argument("--adapter", help="LoRA adapter to merge into --model before fine-tuning (e.g. the aligned one)")
    p.add_argument("--out", required=True, help="output folder")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora", action="store_true", help="LoRA fine-tuning (default)")
    mode.add_argument("--full", action="store_true", help="full fine-tuning; writes a full HF folder")
    p.add_argument("--merge", action="store_true", help="with --lora: write the merged full model, not the adapter")
    _training_flags(p, "learning rate (default by mode: 2e-4 for --lora, 2e-5 for --full)", 3.0)
    p.add_argument("--data", help="JSONL with instruction and response (also prompt/completion, Alpaca "
                   "instruction/input/output); default: the bundled benign set")
    p.add_argument("--limit", type=int, help="use the first N records")
    p.add_argument("--dtype", default="float32", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights dtype while training and in the saved model (default float32)")
    p.set_defaults(func=_cmd_finetune, _parser=p)

    p = sub.add_parser(
        "refusal-check", help="quick direct check: keyword ASR on the sample harmful prompts, over-refusal on "
        "the benign and borderline-safe ones (per kind)",
        description="Greedy answers (chat template, batched) to the 88 bundled harmful sample prompts, the 40 "
        "benign prompts and the 96 borderline-safe validation prompts (over-refusal per kind), judged by the paper keyword judge and the refusal heuristic. A fast sanity check "
        "for align/finetune outputs; the full evaluation goes through `safety-bench eval`.")
    p.add_argument("--model", required=True, help="model folder (HF format), or 'smollm2'")
    p.add_argument("--adapter", help="LoRA adapter to merge in")
    p.add_argument("--system", default="default", help="system turn: default, empty, or safety (default: default)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="answer length limit (default 48)")
    p.add_argument("--batch-size", type=int, default=16, help="generation batch size (default 16)")
    p.add_argument("--harmful-limit", type=int, help="only the first N harmful prompts")
    p.add_argument("--benign-limit", type=int, help="only the first N benign prompts")
    p.add_argument("--borderline-limit", type=int, help="only the first N borderline-safe validation prompts")
    p.add_argument("--no-borderline", action="store_true",
                   help="skip the 96 borderline-safe validation prompts (over-refusal per kind)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.add_argument("--output", help="write the full result (every answer) as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_refusal_check)
