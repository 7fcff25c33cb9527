"""The same landscape in process and on a local Ray cluster, side by side in one run.

Four ways, one grid: in process with 1 torch thread; `--executor ray` with 1 worker and with 2 workers
(1 CPU and 1 thread each); and, for the record, in process with every core. Reports for each the wall
time, the steady per-point period (time between the first and the last finished point over the points in
between: start-up, model loading and the final assembly excluded), the Ray path's per-point overhead
against the 1-thread in-process sweep (also as the time outside each point's own measured work, which
a shared machine's load disturbs less), and the 2-worker speed-up over 1 worker. The three 1-thread runs
must give the same landscape.json (timing aside): the benchmark checks it.

The model is a random-weight Llama built here with SmolLM2's tokenizer and chat template (real
tokenization, no download); its size is set so a point takes about a second on one core.

    python benchmarks/distributed_sweep.py [--points 11] [--limit 16] [--max-gen-toks 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def build_model(folder: Path, hidden: int, layers: int) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from safety_bench.models import smollm2_dir

    tok = AutoTokenizer.from_pretrained(smollm2_dir())
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 3,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def sweep_config(model: Path, args: argparse.Namespace) -> Any:
    from safety_bench.landscape.grid import build_grid
    from safety_bench.orchestration.sweep import SweepConfig

    return SweepConfig(model=str(model), grid=build_grid("1d_random", points=args.points, range_=0.5),
                       judges=["keyword"], data="sample", max_gen_toks=args.max_gen_toks, limit=args.limit,
                       batch_size=args.batch_size, device="cpu", metadata={"per_category": args.per_category})


def timed(run: Any, n_points: int, out: Path) -> dict[str, Any]:
    """Wall time, the steady per-point period of one sweep run (run(on_point) -> landscape), and the time
    per point outside the point's own work (as each point measured it) over the same points."""
    from safety_bench.orchestration.sweep import point_dir

    stamps: list[float] = []
    order: list[str] = []

    def on_point(point: Any) -> None:
        stamps.append(time.perf_counter())
        order.append(point.id)

    start = time.perf_counter()
    landscape = run(on_point)
    wall = time.perf_counter() - start
    assert landscape is not None and len(stamps) == n_points
    period = (stamps[-1] - stamps[0]) / (n_points - 1)
    inside = 0.0
    for pid in order[1:]:  # the points the period spans (generate_s lies inside evaluate_s)
        t = json.loads((point_dir(out, pid) / "point.json").read_text())["timing"]
        inside += t["perturb_s"] + t["evaluate_s"] + t["judge_s"] + t["restore_s"]
    inside /= n_points - 1
    return {"wall_s": round(wall, 2), "first_point_at_s": round(stamps[0] - start, 2),
            "steady_s_per_point": round(period, 3), "in_point_s": round(inside, 3),
            "outside_point_s": round(period - inside, 3), "landscape": landscape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--limit", type=int, default=None, help="prompts per (sub)task (default: all)")
    parser.add_argument("--per-category", type=int, default=2, help="bundled prompts per category (11 categories)")
    parser.add_argument("--max-gen-toks", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray
    import torch

    from safety_bench.orchestration.ray_executor import RayOptions, run_sweep_ray
    from safety_bench.orchestration.sweep import run_sweep

    work = Path(tempfile.mkdtemp(prefix="distributed-sweep-"))
    model = build_model(work / "model", args.hidden, args.layers)
    config = sweep_config(model, args)
    n = len(config.grid.points())
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
    results: dict[str, dict[str, Any]] = {}

    def in_process(threads: int) -> tuple[Any, Path]:
        out = work / f"inproc-{threads}"

        def run(on_point: Any) -> Any:
            saved = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return run_sweep(config, out, progress=False, on_point=on_point)
            finally:
                torch.set_num_threads(saved)
        return run, out

    def on_ray(workers: int) -> tuple[Any, Path]:
        out = work / f"ray-{workers}"
        return (lambda on_point: run_sweep_ray(config, out, RayOptions(workers=workers), progress=False,
                                               on_point=on_point)), out

    for name, (run, out) in (("in-process, 1 thread", in_process(1)), ("ray, 1 worker", on_ray(1)),
                             ("ray, 2 workers", on_ray(2)), (f"in-process, {cores} threads", in_process(cores))):
        results[name] = timed(run, n, out)
        print(f"{name}: wall {results[name]['wall_s']} s, steady {results[name]['steady_s_per_point']} s/point, "
              f"{results[name]['in_point_s']} s inside the point", flush=True)
    ray.shutdown()

    def strip(landscape: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in landscape.items() if k != "timing"}

    same = (strip(results["in-process, 1 thread"]["landscape"]) == strip(results["ray, 1 worker"]["landscape"])
            == strip(results["ray, 2 workers"]["landscape"]))
    base = results["in-process, 1 thread"]["steady_s_per_point"]
    one, two = results["ray, 1 worker"]["steady_s_per_point"], results["ray, 2 workers"]["steady_s_per_point"]
    summary = {
        "settings": {"points": n, "per_category": args.per_category, "limit": args.limit,
                     "max_gen_toks": args.max_gen_toks, "batch_size": args.batch_size,
                     "model": f"random Llama, hidden {args.hidden}, {args.layers} layers, SmolLM2 tokenizer"},
        "machine": {"cores": cores, "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
                    "torch": torch.__version__, "ray": ray.__version__},
        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "landscape"} for k, v in results.items()},
        "ray_overhead_s_per_point": round(one - base, 3),
        # the same, but load-robust: time per point outside the point's own work (perturb, evaluate, judge,
        # restore, as the point measured it), Ray 1 worker minus in process; both from within one run each
        "ray_overhead_outside_point_s": round(results["ray, 1 worker"]["outside_point_s"]
                                              - results["in-process, 1 thread"]["outside_point_s"], 3),
        "speedup_2_workers_over_1": round(one / two, 2),
        "speedup_2_workers_over_in_process_all_cores": round(
            results[f"in-process, {cores} threads"]["steady_s_per_point"] / two, 2),
        "same_landscape_1_thread_runs": same,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
