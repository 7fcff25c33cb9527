"""`safety-bench landscape`: sweep a model's safety landscape, resume, shard, merge, or run the demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from safety_bench import validation as check
from safety_bench.data import DATA_ENV, DataSourceError
from safety_bench.landscape.grid import KINDS, Grid, build_grid
from safety_bench.orchestration.generation import CPU_BATCH, KV_CACHES
from safety_bench.settings import resolve
from safety_bench.validation import UsageError

# The demo: SmolLM2-135M's basin is narrow (its answers turn to noise by |α| ≈ 0.2), so a ±0.2 range in
# 9 steps of 0.05 resolves the edge; 16 new tokens are enough for the keyword judge's refusal openers.
# All 88 bundled prompts (8 per category) in batches of 32: the whole demo took 2 min 24 s on this 2-core
# CPU when it was not shared (about 15 s per point).
DEMO = {"range": 0.2, "points": 9, "batch_size": 32, "max_gen_toks": 16, "per_category": 8,
        "out": "runs/demo-landscape"}
# The demo sweeps two models (base SmolLM2 and the shipped aligned adapter merged into it) with the bundled
# capability task beside safety at every point; to stay under 5 minutes on a 2-core CPU it asks fewer
# prompts per point than a one-model sweep would (stated in its output).
DEMO_PAIR = {"per_category": 3, "points": 7, "capability_task": "safety_capability_sample", "capability_limit": 20}
# Generated tokens per second (prompt prefill included): SmolLM2-135M at batch 16 and 16 new tokens ran at
# ~7/s on this project's 2-core CPU while shared with other jobs; assume about twice that alone.
CPU_TOKENS_PER_S_135M = 15.0
GPU_TOKENS_PER_S_7B = 1500.0  # rough: a 7B model, batch 16, one modern GPU


def _batch_size(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError("--batch-size takes a positive integer or auto")
    return n


def _parse_shard(value: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("--shard takes K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError("--shard K/N needs 1 <= K <= N")
    return k, n


def _grid(args: argparse.Namespace) -> Grid:
    return build_grid(args.grid, directions=args.directions, seed=args.seed, range_=args.range,
                      points=args.points, steps=args.steps, extra=args.extra, beta_range=args.beta_range,
                      beta_points=args.beta_points)


# Defaults of the settings a preset may set: these flags default to None so an explicit flag is told apart
# from an unset one (a flag always wins over the preset; the preset wins over these defaults).
DEFAULTS: dict[str, Any] = {"grid": "1d_random", "task": "safety_landscape_mini", "system_prompt": "default",
                            "dtype": "auto", "range": None, "points": None, "max_gen_toks": None, "judge": None,
                            "data": None, "prompt_template": None}
# preset setting -> (attribute on args, how the preset's value maps onto it); the flags without dashes
PRESET_KEYS = {"grid": "grid", "range": "range", "points": "points", "beta_range": "beta_range",
               "beta_points": "beta_points", "task": "task", "judges": "judge", "data": "data",
               "system_prompt": "system_prompt", "max_gen_toks": "max_gen_toks", "dtype": "dtype",
               "limit": "limit", "prompt_template": "prompt_template"}
PRESET_SWITCHES = {"coherence": "no_coherence", "chat_template": "no_chat_template"}  # true/false -> --no-X


def apply_preset(args: argparse.Namespace) -> list[str]:
    """Fill every setting the user left unset from `--preset`; returns the lines that say what it set."""
    from safety_bench.orchestration.presets import describe_settings, get_preset

    if not args.preset:
        return []
    preset = get_preset(args.preset, "landscape")
    overridden: dict[str, Any] = {}
    for key, value in preset.settings.items():
        if key in PRESET_SWITCHES:
            attr = PRESET_SWITCHES[key]
            if getattr(args, attr):
                overridden[key] = f"--{attr.replace('_', '-')}"
            else:
                setattr(args, attr, not value)
            continue
        if key not in PRESET_KEYS:
            raise ValueError(f"preset {preset.name}: unknown landscape setting {key!r} "
                             f"(valid: {', '.join([*PRESET_KEYS, *PRESET_SWITCHES])})")
        attr = PRESET_KEYS[key]
        if getattr(args, attr) is not None:
            overridden[key] = getattr(args, attr)
        else:
            setattr(args, attr, list(value) if key == "judges" else value)
    return describe_settings(preset, overridden)


def _fill_defaults(args: argparse.Namespace) -> None:
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _config(args: argparse.Namespace) -> Any:
    from safety_bench.harness.prompt_templates import load_template
    from safety_bench.landscape.directions import DEFAULT_EXCLUDE, parse_patterns
    from safety_bench.orchestration.sweep import SweepConfig

    if args.prompt_template:
        load_template(args.prompt_template)  # a bad name or file fails here, before anything is written
    if args.system_prompt.startswith("file:"):
        from safety_bench.harness.system_prompts import read_prompt_file

        try:
            read_prompt_file(args.system_prompt[len("file:"):])
        except ValueError as exc:
            raise UsageError("--system-prompt", args.system_prompt, str(exc)) from None
    metadata = json.loads(args.metadata) if args.metadata else {}
    return SweepConfig(model=str(args.model), grid=_grid(args), task=args.task, judges=args.judge or ["keyword"],
                       data=args.data, system_prompt=args.system_prompt, max_gen_toks=args.max_gen_toks,
                       dtype=args.dtype, limit=args.limit, towards=args.towards,
                       include=list(parse_patterns(args.include)),
                       exclude=list(parse_patterns(args.exclude, DEFAULT_EXCLUDE)), name=args.name,
                       batch_size=args.batch_size, kv_cache=args.kv_cache, device=args.device, metadata=metadata,
                       backend=args.backend, capability_task=args.capability_task,
                       capability_limit=args.capability_limit, coherence=not args.no_coherence,
                       coherence_prompts=args.coherence_prompts,
                       chat_template=not args.no_chat_template, prompt_template=args.prompt_template,
                       preset=args.preset)


def _n_params(model: str) -> float | None:
    from safety_bench.weights_id import weight_files

    path = Path(model)
    if not path.is_dir():
        return None
    total = sum(f.stat().st_size for f in weight_files(path))
    try:
        dtype = json.loads((path / "config.json").read_text()).get("torch_dtype") or "float32"
    except (OSError, ValueError):
        dtype = "float32"
    return total / (4 if "32" in str(dtype) else 2)


def dry_run(config: Any, shard: tuple[int, int]) -> str:
    """The grid, the number of generations and a rough time estimate, without loading the model."""
    import torch

    from safety_bench.orchestration.sweep import count_prompts

    grid = config.grid
    points = grid.shard(*shard)
    warning, counted = None, ""
    try:
        n_prompts = count_prompts(config)
    except DataSourceError as exc:
        known = _known_count(config)
        if known is None:
            raise
        n_prompts, counted = known, " (from the source's known size: it could not be read here)"
        warning = f"warning: the prompt source cannot be reached from here: {str(exc).splitlines()[0]}"
    gens = len(points) * n_prompts
    params = _n_params(config.model)
    gpu = (config.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    lines = [f"grid {grid.kind}: axes {', '.join(grid.axes)}"]
    for name, axis in zip(grid.axes, grid.coords, strict=True):
        lines.append(f"  {name}: {len(axis)} values {axis[0]:g} .. {axis[-1]:g}: {', '.join(f'{x:g}' for x in axis)}")
    lines.append(f"  directions (seeds): {grid.directions or 'none (interpolation)'}")
    lines.append(f"points: {len(points)} unique (of {len(grid.points())} in the grid; shard {shard[0]}/{shard[1]})")
    if config.preset:
        lines.append(f"preset: {config.preset}")
    lines.append(f"model dtype {config.dtype}; system prompt {config.system_prompt}; "
                 f"{'chat template' if config.chat_template else 'no chat template (plain text completion)'}"
                 + (f"; prompt template {config.prompt_template}" if config.prompt_template else "")
                 + ("; coherence scored at the origin" if config.coherence else "; coherence off"))
    lines.append(f"task {config.task}: {n_prompts} prompts per point{counted} -> {gens} generations, "
                 f"up to {config.max_gen_toks} new tokens each"
                 + (" (answers truncated)" if config.max_gen_toks < 512 else ""))
    lines.append(f"judges: {', '.join(config.judges)} (each judges the same generations)")
    if config.capability_task:
        lines.append(f"capability task {config.capability_task} at every point"
                     + (f" (first {config.capability_limit} items)" if config.capability_limit else "")
                     + "; not in the time estimate")
    if params:
        base = (GPU_TOKENS_PER_S_7B * 7e9 if gpu else CPU_TOKENS_PER_S_135M * 135e6) / params
        batch = config.batch_size if config.batch_size != "auto" else (n_prompts if gpu else CPU_BATCH)
        rate = base * min(batch, 16) / 16
        seconds = gens * config.max_gen_toks / rate
        lines.append(f"estimated time: ~{seconds / 60:.1f} min on {'GPU' if gpu else 'CPU'} "
                     f"(~{rate:.0f} tokens/s for {params / 1e6:.0f}M parameters at batch {batch}; rough)")
    else:
        lines.append("estimated time: unknown (model is not a local folder)")
    if gpu and params and config.backend == "hf":
        lines += _gpu_plan_lines(config, int(params), n_prompts)
    if warning:
        lines.append(warning)
    return "\n".join(lines)


def _known_count(config: Any) -> int | None:
    """Prompts per point from the source's published size (for a plan where the source is unreachable)."""
    from safety_bench.data import MINI_PER_CATEGORY, known_prompt_count

    per_category = int((config.metadata or {}).get("per_category", MINI_PER_CATEGORY))
    n = known_prompt_count(config.task, config.data, per_category)
    if n is not None and config.limit:
        n = min(n, config.limit)  # (a group's limit applies per subtask: an upper bound then)
    return n


def _gpu_plan_lines(config: Any, n_params: int, n_prompts: int) -> list[str]:
    """The sweep's GPU memory decisions, estimated from the model's config and the free memory now."""
    import torch
    from transformers import AutoConfig

    from safety_bench.orchestration.generation import plan_gpu_memory

    try:
        model_config = AutoConfig.from_pretrained(config.model)
    except (OSError, ValueError) as exc:
        return [f"GPU memory plan: unknown ({exc})"]
    dtype = config.dtype if config.dtype != "auto" else str(getattr(model_config, "dtype", None)
                                                               or getattr(model_config, "torch_dtype", None)
                                                               or "float32")
    dtype = getattr(torch, dtype.replace("torch.", ""))
    device = torch.device(config.device or "cuda")
    plan = plan_gpu_memory(model_config, dtype, n_params, torch.cuda.mem_get_info(device)[0], config.max_gen_toks,
                           n_prompts, config.batch_size)
    return plan.lines()


def _apply_demo(args: argparse.Namespace) -> None:
    from safety_bench.models import SMOLLM2_NAME, smollm2_dir

    args.model = str(smollm2_dir())
    args.name = args.name or SMOLLM2_NAME
    args.data = "sample"
    args.grid = "1d_random"
    args.range = args.range if args.range_set else DEMO["range"]
    args.points = DEMO["points"] if args.points is None else args.points
    args.batch_size = DEMO["batch_size"] if args.batch_size == "auto" else args.batch_size
    args.max_gen_toks = DEMO["max_gen_toks"] if args.max_gen_toks is None else args.max_gen_toks
    args.out = args.out or DEMO["out"]
    if not args.metadata:
        args.metadata = json.dumps({"per_category": DEMO_PAIR["per_category"]})
    args.points = args.points or DEMO_PAIR["points"]
    args.capability_task = args.capability_task or DEMO_PAIR["capability_task"]
    args.capability_limit = args.capability_limit or DEMO_PAIR["capability_limit"]


def _demo_models() -> list[tuple[str, str, str]]:
    """(label, display name, HF folder) of the demo's two models: base SmolLM2, and SmolLM2 with the shipped
    aligned LoRA adapter merged in (merged once into the cache, keyed by the adapter's weights)."""
    from safety_bench.models import SMOLLM2_NAME, cache_dir, smollm2_dir
    from safety_bench.training import shipped_adapter_dir
    from safety_bench.training.align import merge_adapter
    from safety_bench.validation import UserError
    from safety_bench.weights_id import weights_id

    try:
        adapter = shipped_adapter_dir()
    except FileNotFoundError as exc:
        raise UserError(f"--demo needs the shipped aligned adapter: {exc}") from None
    base = smollm2_dir()
    merged = cache_dir() / f"{SMOLLM2_NAME}-aligned-{weights_id(adapter).split(':')[-1][:12]}"
    if not (merged / "config.json").is_file():
        print(f"demo: merging the aligned adapter {adapter} into {merged} (once)", flush=True)
        merge_adapter(base, adapter, merged)
    # the aligned model first: it is the one whose basin the demo is about
    return [("aligned", f"{SMOLLM2_NAME}+aligned-lora", str(merged)), ("base", SMOLLM2_NAME, str(base))]


def _run_demo(args: argparse.Namespace) -> int:
    """Sweep base and aligned SmolLM2 on the same grid and directions, safety and capability at every point;
    one figure holds both models' safety margins and capability curves."""
    from safety_bench.landscape.capability_plots import plot_capability_models
    from safety_bench.orchestration.sweep import run_sweep

    out = Path(args.out)
    start = time.perf_counter()
    models = _demo_models()
    print(f"demo: base and aligned SmolLM2-135M-Instruct, {args.directions} random direction(s), alpha in "
          f"linspace(-{args.range:g}, {args.range:g}, {args.points}); per point {args.metadata} bundled harmful "
          f"prompts (fewer than a one-model sweep, to keep two models under 5 minutes) answered in up to "
          f"{args.max_gen_toks} new tokens (truncated; the papers use 512), and the first {args.capability_limit} "
          f"items of {args.capability_task}; batch {args.batch_size}", flush=True)
    landscapes: dict[str, Any] = {}
    for label, name, folder in models:
        args.model, args.name = folder, name
        landscape = run_sweep(_config(args), out / label, progress=not args.no_progress)
        assert landscape is not None  # one shard: every point ran
        landscapes[name] = landscape
        print(f"[{label}]")
        _print_summary(landscape, out / label)
    plots = plot_capability_models(landscapes, out, stem="demo")
    print(f"demo figure (both models, safety margin and capability): "
          f"{', '.join(p.name for p in plots if p.suffix == '.png')} in {out}")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    return 0


DTYPES = ("auto", "float32", "bfloat16", "float16")


def validate(args: argparse.Namespace) -> None:
    """Every setting of a sweep, checked before anything is written or loaded (`--dry-run` too): a bad one
    raises `UsageError` (one line, exit 2) and leaves --out untouched."""
    from safety_bench.harness.system_prompts import PRESETS
    from safety_bench.judges.registry import load_specs

    check.model_path("--model", args.model)
    for flag, value, low in (("--points", args.points, 2), ("--beta-points", args.beta_points, 2),
                             ("--directions", args.directions, 1), ("--steps", args.steps, 1),
                             ("--extra", args.extra, 0), ("--seed", args.seed, 0), ("--limit", args.limit, 1),
                             ("--coherence-prompts", args.coherence_prompts, 1)):
        check.number(flag, value, minimum=low, integer=True)
    for flag, value in (("--range", args.range), ("--beta-range", args.beta_range)):
        check.number(flag, value, minimum=0, exclusive_minimum=True)
    check.max_gen_toks("--max-gen-toks", args.max_gen_toks, args.model)
    check.task("--task", args.task)
    judges = sorted(load_specs())
    for name in args.judge or ["keyword"]:
        check.judge("--judge", name, names=judges)
    check.system_prompt("--system-prompt", args.system_prompt, list(PRESETS))
    check.data_source("--data", args.data)
    check.choice("--dtype", args.dtype, DTYPES)
    check.json_object("--metadata", args.metadata)
    if args.towards:
        check.existing_path("--towards", args.towards, "dir")
    if args.out:
        check.output_dir("--out", args.out)
    if args.store:
        check.output_store("--store", args.store)


def _cmd_landscape(args: argparse.Namespace) -> int:
    from safety_bench.landscape.perturb import CheckpointMismatch
    from safety_bench.orchestration.sweep import ConfigMismatch, merge_shards, run_sweep

    if args.merge:
        if not args.out:
            print("safety-bench landscape --merge needs --out", file=sys.stderr)
            return 2
        for shard_dir in args.merge:
            check.existing_path("--merge", shard_dir, "dir")
        check.output_dir("--out", args.out)
        try:
            landscape = merge_shards(args.merge, args.out)
        except (ConfigMismatch, FileNotFoundError) as exc:
            print(f"safety-bench landscape: {exc}", file=sys.stderr)
            return 2
        _print_summary(landscape, Path(args.out))
        return 0
    if args.demo and args.preset:
        raise UsageError("--preset", args.preset, "cannot be combined with --demo (the demo has its own settings)")
    for line in apply_preset(args):
        print(line, flush=True)
    args.range_set = args.range is not None
    _fill_defaults(args)
    if args.range is None:
        args.range = 0.5
    if args.demo:
        _apply_demo(args)
    if not args.model:
        print("safety-bench landscape: give --model (an HF folder or hub name), or --demo", file=sys.stderr)
        return 2
    if args.grid in ("1d_interpolation", "2d_interpolation_random") and not args.towards:
        print(f"safety-bench landscape: --grid {args.grid} needs --towards (checkpoint or adapter folder)",
              file=sys.stderr)
        return 2
    args.max_gen_toks = 64 if args.max_gen_toks is None else args.max_gen_toks
    args.data = resolve("data", args.data)
    validate(args)
    try:
        config = _config(args)
    except UsageError:
        raise  # the CLI's one-line `error:` report
    except ValueError as exc:
        print(f"safety-bench landscape: {exc}", file=sys.stderr)
        return 2
    ray_problem = _executor_problem(args)
    if ray_problem:
        print(f"safety-bench landscape: error: {ray_problem}", file=sys.stderr)
        return 2
    if args.capability_task:
        _check_capability_task(args.capability_task)
    if args.dry_run:
        print(dry_run(config, args.shard))
        if args.executor == "ray":
            print(f"executor: ray ({args.ray_address or 'a local cluster'}; workers: {args.workers or 'one per GPU/CPU'})")
        return 0
    if not args.out:
        print("safety-bench landscape: give --out DIR", file=sys.stderr)
        return 2
    if args.demo:
        return _run_demo(args)
    start = time.perf_counter()
    try:
        if args.executor == "ray":
            from safety_bench.orchestration.ray_executor import (
                ClusterError,
                PointFailed,
                options_from_args,
                run_sweep_ray,
            )

            try:
                landscape = run_sweep_ray(config, args.out, options_from_args(args), shard=args.shard,
                                          progress=not args.no_progress)
            except (ClusterError, PointFailed) as exc:
                print(f"safety-bench landscape: {exc}", file=sys.stderr)
                return 1
        else:
            landscape = run_sweep(config, args.out, shard=args.shard, progress=not args.no_progress)
    except (ConfigMismatch, CheckpointMismatch, FileNotFoundError) as exc:
        print(f"safety-bench landscape: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    if landscape is None:
        print(f"shard {args.shard[0]}/{args.shard[1]} done in {elapsed:.0f} s; join the shards with "
              f"`safety-bench landscape --merge SHARD_DIR... --out DIR`")
        return 0
    _print_summary(landscape, Path(args.out))
    print(f"wall time {elapsed:.0f} s")
    if args.store:
        from safety_bench.leaderboard.ingest import add_path
        from safety_bench.leaderboard.remote import open_store

        for run in add_path(open_store(args.store), args.out, args.name or Path(args.model).name):
            print(f"added to store {args.store}: {run}")
    return 0


def _executor_problem(args: argparse.Namespace) -> str | None:
    """Why the executor settings cannot work (Ray missing, bad numbers), checked before anything runs."""
    if args.executor != "ray":
        return None
    from safety_bench.orchestration.ray_executor import RayNotInstalled, import_ray, options_from_args

    problems = options_from_args(args).problems()
    if problems:
        return problems[0]
    try:
        import_ray()
    except RayNotInstalled as exc:
        return str(exc)
    return None


def _check_capability_task(task: str) -> None:
    """A capability task lm-eval knows (this suite's or a built-in), checked before any model loads."""
    from safety_bench.harness import task_manager
    from safety_bench.harness.capability import capability_task_manager
    from safety_bench.validation import UsageError

    try:
        capability_task_manager(task, task_manager({}))
    except ValueError:
        raise UsageError("--capability-task", task, "not an lm-eval task",
                         ["safety_capability_sample", "safety_capability_sample_mc", "any lm-eval task"]) from None


def print_capability(landscape: dict[str, Any]) -> None:
    """The capability curves and, per judge, both basin widths and which is wider."""
    cap = landscape.get("capability")
    if not cap:
        return
    print(f"  capability {cap['task']} ({cap['metric']}, percent, {cap.get('n')} items per point): "
          f"{json.dumps([[None if v is None else round(v, 1) for v in c] for c in cap['curves']])}")
    for judge, b in (cap.get("basins") or {}).items():
        if not b or not b.get("safety") or not b.get("capability"):
            print(f"  {judge}: basins n/a (origin unscored)")
            continue
        print(f"  {judge}: safety basin {b['safety']['range'][0]:g}..{b['safety']['range'][1]:g} "
              f"(width {b['safety']['width']:g}), capability basin {b['capability']['range'][0]:g}.."
              f"{b['capability']['range'][1]:g} (width {b['capability']['width']:g}), tolerance "
              f"{b['tolerance']:g} pts: wider: {b['wider']}")


def _print_summary(landscape: dict[str, Any], out: Path) -> None:
    print(f"landscape: {out / 'landscape.json'} ({landscape['kind']}, {landscape['n_points']} points, "
          f"{landscape['n_prompts']} prompts per point; {landscape['note']})")
    for judge, v in landscape["visage"].items():
        if v["mean"] is None:
            print(f"  {judge}: VISAGE n/a (some points had nothing scored)")
            continue
        ci = f" 95% CI [{v['ci'][0]:.2f}, {v['ci'][1]:.2f}]" if v["ci"] else ""
        print(f"  {judge}: VISAGE {v['mean']:.2f}{ci} (untrimmed margin {v['untrimmed']:.2f}); "
              f"ASR curve(s) %: {json.dumps(landscape['asr'][judge])}")
    print_capability(landscape)
    coherence = landscape.get("coherence")
    if coherence and coherence.get("summary"):
        print(f"  coherence: {coherence['summary']}")
    plots = sorted(p.name for p in out.glob("*.png"))
    print(f"  plots: {', '.join(plots)} (+ SVG) in {out}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `safety-bench landscape`."""
    p = sub.add_parser(
        "landscape", help="sweep a model's safety landscape (ASR over perturbed weights) and compute VISAGE",
        description="Perturbs a model in place along seeded random directions (or towards a fine-tuned "
        "checkpoint/adapter), runs a safety task through lm-eval at every grid point, judges the answers, "
        "and writes OUT/landscape.json, per-point results and plots. Re-running with the same --out resumes.")
    p.add_argument("--model", help="HF model folder or hub name (loaded once)")
    p.add_argument("--name", help="display name of the model (default: the folder name)")
    p.add_argument("--out", help="output folder (resumes when it holds the same configuration)")
    p.add_argument("--preset", help="named settings from `safety-bench presets` (e.g. peng2024: the landscape "
                   "paper's protocol); every flag you give explicitly wins")
    p.add_argument("--grid", choices=KINDS, help="grid kind (default 1d_random)")
    p.add_argument("--range", type=float, default=None,
                   help="random axes span [-R, R] (default 0.5; demo 0.2)")
    p.add_argument("--points", type=int, help="points per random axis (default 21 for 1D, 11 for 2D)")
    p.add_argument("--beta-range", type=float, help="2D: range of the second axis (default --range)")
    p.add_argument("--beta-points", type=int, help="2D: points on the second axis (default --points)")
    p.add_argument("--steps", type=int, default=10, help="interpolation: steps from t=0 to t=1 (default 10)")
    p.add_argument("--extra", type=int, default=2, help="interpolation: extra steps beyond both ends (default 2)")
    p.add_argument("--towards", help="interpolation target: fine-tuned checkpoint folder or PEFT LoRA adapter folder")
    p.add_argument("--directions", type=int, default=1, help="random directions (seeds seed, seed+1, ...)")
    p.add_argument("--seed", type=int, default=0, help="first direction seed (default 0)")
    p.add_argument("--task", help="task or group (default safety_landscape_mini)")
    p.add_argument("--judge", action="append", help="judge name, repeatable (default keyword)")
    p.add_argument("--system-prompt", help="default (the chat template's own), empty, safety, roleplay, "
                   "text:YOUR PROMPT, or file:PATH (default: default)")
    p.add_argument("--prompt-template", help="wrap every instruction: a bundled template (roleplay) or a text "
                   "file with an {instruction} placeholder (jailbreak landscapes)")
    p.add_argument("--no-chat-template", action="store_true",
                   help="plain text completion for base models: 'Request: <instruction>\\nResponse:' "
                   "(system prompt text, if any, first); recorded in the configuration")
    p.add_argument("--no-coherence", action="store_true",
                   help="skip scoring the answers' coherence at the origin (landscape.json `coherence`)")
    p.add_argument("--coherence-prompts", type=int,
                   help="score coherence on this many prompts' answers per point (a fixed subset, the same at "
                   "every point; default: all). On a CPU scoring costs about what generating does")
    p.add_argument("--data", default=None,
                   help=f"prompt source: hexphi, sample, or a HEx-PHI-layout folder (default: ${DATA_ENV}, "
                   "else hexphi)")
    p.add_argument("--metadata", help="extra lm-eval task metadata as JSON (e.g. '{\"per_category\": 4}')")
    p.add_argument("--limit", type=int, help="at most this many prompts per (sub)task")
    p.add_argument("--batch-size", type=_batch_size, default="auto",
                   help="generation batch size, or auto (default): on a GPU all prompts of a point in one batch "
                   "as far as memory allows, on the CPU 32")
    p.add_argument("--kv-cache", choices=KV_CACHES, default="auto",
                   help="KV cache for generation: auto (default: static on a GPU where the architecture "
                   "supports it, dynamic on the CPU), static, dynamic")
    p.add_argument("--max-gen-toks", type=int, help="new tokens per answer (default 64; the papers use 512)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--dtype", help="model dtype: auto (default), float32, bfloat16, float16")
    p.add_argument("--include", help="`|`-separated name patterns: only these tensors move")
    p.add_argument("--exclude", help="`|`-separated name patterns kept fixed (default norm; 'none' for none)")
    p.add_argument("--shard", type=_parse_shard, default=(1, 1), help="run share K of N of the grid points")
    p.add_argument("--merge", nargs="+", metavar="SHARD_DIR", help="join shard folders into --out")
    p.add_argument("--dry-run", action="store_true", help="print the grid, generations and time estimate")
    p.add_argument("--backend", choices=("hf", "vllm"), default="hf",
                   help="generation backend: hf (default) or vllm (weights perturbed inside the engine; GPU)")
    p.add_argument("--capability-task",
                   help="also run this lm-eval task (generative or multiple-choice, e.g. safety_capability_sample, "
                   "safety_capability_sample_mc, arc_easy, mmlu) at every point on the same perturbed weights: "
                   "landscape.json gains `capability` (curves, safety vs capability basin widths)")
    p.add_argument("--capability-limit", type=int, help="at most this many capability items per point")
    p.add_argument("--store", help="add the finished landscape to this results store (under --name)")
    p.add_argument("--demo", action="store_true",
                   help="base SmolLM2-135M-Instruct and the shipped aligned adapter on one figure: 33 bundled "
                   "prompts (3 per category) and 20 items of safety_capability_sample per point, alpha in "
                   "linspace(-0.2, 0.2, 7), batch 32, 16 new tokens; OUT/base, OUT/aligned, OUT/demo_keyword.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from safety_bench.orchestration.ray_executor import add_arguments

    add_arguments(p)  # --executor, --ray-address, --workers, --gpus-per-worker, --cpus-per-worker
    p.set_defaults(func=_cmd_landscape)
