"""Time the in-place landscape sweep against the naive way, side by side in one run.

Naive: one fresh `safety-bench eval --model perturbed ...` process per grid point (model load, task
index, direction generation and lm-eval start-up every time), then judging its samples.
Sweep: `safety_bench.orchestration.sweep.run_sweep`: model and task index loaded once, weights moved in
place, directions generated once and cached.

Reports seconds per grid point, the per-point overhead (everything but generation and judging) and the
share of time spent perturbing/restoring. Usage (SmolLM2, small settings by default):

    python benchmarks/landscape_sweep_vs_naive.py [--points 3] [--limit 16] [--max-gen-toks 8]
    python benchmarks/landscape_sweep_vs_naive.py --demo   # the demo's settings: the issue's CPU target
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_naive(model: str, alphas: list[float], args: argparse.Namespace, work: Path) -> list[dict]:
    from safety_bench.judges.registry import get_judge
    from safety_bench.judges.run import judge_records
    from safety_bench.records import iter_input_records

    judge = get_judge("keyword")
    rows = []
    for i, alpha in enumerate(alphas):
        out = work / f"naive-{i}"
        cmd = [sys.executable, "-m", "safety_bench.cli", "eval", "--model", "perturbed",
               "--model_args", f"pretrained={model},alpha={alpha},seed=0,dtype=float32",
               "--tasks", args.task, "--metadata", json.dumps({"data": "sample", "judge": "keyword", **args.metadata}),
               *(["--limit", str(args.limit)] if args.limit else []), "--batch_size", str(args.batch_size),
               "--gen_kwargs", f"max_gen_toks={args.max_gen_toks}", "--apply_chat_template", "--log_samples",
               "--output_path", str(out)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        mid = time.perf_counter()
        judged = judge_records(iter_input_records(out), judge)
        end = time.perf_counter()
        result_file = next(out.rglob("results_*.json"))
        eval_s = float(json.loads(result_file.read_text()).get("total_evaluation_time_seconds", "nan"))
        rows.append({"alpha": alpha, "wall_s": end - start, "process_s": mid - start, "judge_s": end - mid,
                     "lm_eval_reported_s": eval_s, "n": len(judged)})
    return rows


def run_inplace(model: str, alphas: list[float], args: argparse.Namespace, work: Path) -> tuple[float, list[dict]]:
    from safety_bench.landscape.grid import Grid
    from safety_bench.orchestration.sweep import SweepConfig, point_dir, run_sweep

    grid = Grid("1d_random", [alphas], [0])
    config = SweepConfig(model=model, grid=grid, task=args.task, judges=["keyword"], data="sample",
                         max_gen_toks=args.max_gen_toks, dtype="float32", limit=args.limit,
                         batch_size=args.batch_size, device="cpu", metadata=args.metadata)
    start = time.perf_counter()
    run_sweep(config, work / "sweep", progress=False)
    total = time.perf_counter() - start
    points = [json.loads((point_dir(work / "sweep", p.id) / "point.json").read_text()) for p in grid.points()]
    return total, points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=3)
    parser.add_argument("--range", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=16, help="prompts per point")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-gen-toks", type=int, default=8)
    parser.add_argument("--demo", action="store_true",
                        help="the demo's settings: all 88 sample prompts (safety_landscape, 8 per category), "
                        "batch 32, 16 new tokens, alpha in [-0.2, 0.2]")
    args = parser.parse_args()
    args.task, args.metadata = "safety_landscape_mini", {}
    if args.demo:
        from safety_bench.commands.landscape import DEMO

        args.task, args.metadata, args.limit = "safety_landscape", {"per_category": DEMO["per_category"]}, None
        args.batch_size, args.max_gen_toks, args.range = DEMO["batch_size"], DEMO["max_gen_toks"], DEMO["range"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safety_bench.landscape.grid import linspace
    from safety_bench.models import smollm2_dir

    model = str(smollm2_dir())
    alphas = linspace(-args.range, args.range, args.points)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sweep_total, points = run_inplace(model, alphas, args, work)
        naive = run_naive(model, alphas, args, work)

    n = len(points)
    gen = sum(p["timing"]["generate_s"] for p in points)
    judge = sum(p["timing"]["judge_s"] for p in points)
    move = sum(p["timing"]["perturb_s"] + p["timing"]["restore_s"] for p in points)
    # evaluate_s contains generate_s: a point's overhead is everything of it but generation and judging
    in_loop = [p["timing"]["perturb_s"] + p["timing"]["evaluate_s"] - p["timing"]["generate_s"]
               + p["timing"]["restore_s"] for p in points]
    sweep_point_s = [p["timing"]["perturb_s"] + p["timing"]["evaluate_s"] + p["timing"]["judge_s"]
                     + p["timing"]["restore_s"] for p in points]
    naive_wall = sum(r["wall_s"] for r in naive)
    naive_judge = sum(r["judge_s"] for r in naive)
    # the naive processes generate the same tokens with the same model: use the sweep's measured generation
    naive_overhead = (naive_wall - gen - naive_judge) / n
    sweep_overhead = (sweep_total - gen - judge) / n
    report = {
        "device": f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})",
        "load_average_1m": os.getloadavg()[0],
        "settings": {"model": "SmolLM2-135M-Instruct (fp32)", "task": args.task, "metadata": args.metadata,
                     "points": alphas, "prompts_per_point": points[0]["n"],
                     "batch_size": args.batch_size, "max_gen_toks": args.max_gen_toks},
        "sweep": {"total_s": sweep_total, "seconds_per_point": sweep_total / n,
                  "start_up_s (model load, task index, directions; once)": sweep_total - sum(sweep_point_s),
                  "steady_seconds_per_point": sweep_point_s,
                  "overhead_per_point_s (all but generation+judging, start-up amortised)": sweep_overhead,
                  "in_loop_overhead_per_point_s": in_loop,
                  "in_loop_overhead_mean_s": sum(in_loop) / n,
                  "perturb_restore_share": move / sweep_total, "perturb_restore_s": move,
                  "generation_s": gen, "judge_s": judge},
        "naive": {"total_s": naive_wall, "seconds_per_point": naive_wall / n,
                  "per_point_wall_s": [r["wall_s"] for r in naive],
                  "overhead_per_point_s (all but generation+judging)": naive_overhead, "judge_s": naive_judge},
        "speedup": naive_wall / sweep_total,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
