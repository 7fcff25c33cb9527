#!/usr/bin/env python
"""Reproduce both papers' phenomena on SmolLM2-135M-Instruct, end to end, on a CPU, with one command.

    python examples/reproduce.py [--out runs/repro] [--quick]

Steps (each prints one progress line; every step is resumable: a finished step is reused):

  a. merge the shipped aligned LoRA adapter into a full `aligned` folder; benign full fine-tuning of it
     (the fine-tuning attack of Qi et al., 2023) -> `finetuned` folder;
  b. 1D random landscape (Peng et al., 2024) of the base model and of the aligned model, same grid and
     direction seeds, VISAGE for each;
  c. the aligned model's landscape with the `safety` system-prompt preset vs the `empty` preset;
  d. 1D interpolation aligned -> finetuned;
  e. `safety-bench eval` of base, aligned, finetuned at the origin (harmful `safety_landscape_mini` +
     `safety_benign`, bundled sample prompts) into a results store, judged by `keyword` and
     `refusal_heuristic`, and `safety-bench compare` base->aligned and aligned->finetuned;
  f. a combined figure and a results table.

Only aggregate numbers, plots and landscape.json files are copied into the examples folder; model answers
stay under --out. The rubric judge needs an API endpoint and is not used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POINT_BUDGET = 50
JUDGES = ["keyword", "refusal_heuristic"]


@dataclass
class Settings:
    out: Path
    examples: Path
    quick: bool = False
    # landscapes
    per_category: int = 4          # 4 x 11 = 44 harmful sample prompts per grid point
    range: float = 0.15            # alpha in linspace(-0.15, 0.15, 7): steps of 0.05
    points: int = 7
    directions: int = 2
    system_directions: int = 1
    interp_steps: int = 4          # t in {-0.25, 0, 0.25, ..., 1.25}
    interp_extra: int = 1
    batch_size: int = 44           # one batch per grid point
    max_gen_toks: int = 16
    # origin evaluations (all 88 harmful + 40 benign sample prompts)
    eval_per_category: int = 8
    eval_batch_size: int = 32
    # fine-tuning attack
    ft_lr: str = "5e-5"
    ft_extra: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, out: str | None, quick: bool, examples: str | None) -> "Settings":
        if quick:
            o = Path(out or "runs/repro-quick")
            return cls(out=o, examples=Path(examples) if examples else o / "examples", quick=True,
                       per_category=1, points=3, directions=1, interp_steps=1, interp_extra=0,
                       batch_size=16, max_gen_toks=8, eval_per_category=1, eval_batch_size=16,
                       ft_extra=["--limit", "8", "--epochs", "1"])
        return cls(out=Path(out or "runs/repro"), examples=Path(examples) if examples else HERE)


def landscape_points(kind: str, s: Settings, directions: int = 1) -> int:
    """Grid points a landscape evaluates (the unperturbed origin is shared by all curves)."""
    if kind == "1d_random":
        return directions * (s.points - 1) + 1
    return s.interp_steps + 1 + 2 * s.interp_extra


def plan(s: Settings) -> list[dict[str, Any]]:
    """The steps, in order, with the number of grid points each landscape evaluates."""
    return [
        {"step": "merge", "points": 0},
        {"step": "finetune", "points": 0},
        {"step": "landscape_base", "points": landscape_points("1d_random", s, s.directions)},
        {"step": "landscape_aligned", "points": landscape_points("1d_random", s, s.directions)},
        {"step": "landscape_aligned_safety", "points": landscape_points("1d_random", s, s.system_directions)},
        {"step": "landscape_aligned_empty", "points": landscape_points("1d_random", s, s.system_directions)},
        {"step": "interpolation", "points": landscape_points("1d_interpolation", s)},
        {"step": "eval_and_compare", "points": 0},
        {"step": "figure_and_table", "points": 0},
    ]


def total_points(s: Settings) -> int:
    return sum(p["points"] for p in plan(s))


# ---------------------------------------------------------------------------------------------- running

def _cli() -> list[str]:
    return [sys.executable, "-m", "safety_bench.cli"]


def run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    printable = " ".join(cmd[2:] if cmd[:2] == [sys.executable, "-m"] else cmd)
    with open(log, "a") as fh:
        fh.write(f"\n$ {printable}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode:
        raise SystemExit(f"command failed ({proc.returncode}), see {log}:\n  {printable}")


def _complete_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


class Runner:
    def __init__(self, s: Settings, adapter: Path | None = None) -> None:
        self.s = s
        self.t0 = time.perf_counter()
        self.log = s.out / "reproduce.log"
        self.timings: dict[str, float] = {}
        from safety_bench.models import smollm2_dir
        self.base = Path(smollm2_dir())
        self.adapter = Path(adapter) if adapter else REPO / "artifacts" / "smollm2-aligned-lora"
        self.aligned = s.out / "aligned"
        self.finetuned = s.out / "finetuned"
        self.store = s.out / "store"
        try:  # step times of an earlier invocation, kept for the steps this one reuses
            self.previous: dict[str, float] = json.loads((s.out / "timings.json").read_text())
        except (OSError, ValueError):
            self.previous = {}

    def step(self, name: str, fn: Any) -> None:
        t = time.perf_counter()
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {name} ...", flush=True)
        status = fn() or "done"
        self.timings[name] = time.perf_counter() - t
        if str(status).startswith("reused") and name in self.previous:
            self.timings[name] = self.previous[name]  # the time it took when it ran
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {name}: {status} ({self.timings[name]:.1f}s)", flush=True)

    # a
    def merge(self) -> str:
        if _complete_model_folder(self.aligned):
            return "reused"
        run(_cli() + ["align", "--merge", "--base", "smollm2", "--adapter", str(self.adapter),
                      "--out", str(self.aligned)], self.log)

    def finetune(self) -> str:
        if _complete_model_folder(self.finetuned) and (self.finetuned / "recipe.json").is_file():
            return "reused"
        run(_cli() + ["finetune", "--model", str(self.aligned), "--full", "--out", str(self.finetuned),
                      "--lr", self.s.ft_lr, "--seed", "0", *self.s.ft_extra], self.log)

    # b, c, d
    def landscape(self, model: Path, name: str, out: str, *, system: str = "default", directions: int = 1,
                  interpolation: bool = False) -> str:
        s = self.s
        cmd = _cli() + ["landscape", "--model", str(model), "--name", name, "--out", str(s.out / out),
                        "--data", "sample", "--metadata", json.dumps({"per_category": s.per_category}),
                        "--system-prompt", system, "--batch-size", str(s.batch_size),
                        "--max-gen-toks", str(s.max_gen_toks), "--no-progress"]
        for j in JUDGES:
            cmd += ["--judge", j]
        if interpolation:
            cmd += ["--grid", "1d_interpolation", "--towards", str(self.finetuned),
                    "--steps", str(s.interp_steps), "--extra", str(s.interp_extra)]
        else:
            cmd += ["--grid", "1d_random", "--range", str(s.range), "--points", str(s.points),
                    "--directions", str(directions), "--seed", "0"]
        path = s.out / out / "landscape.json"
        if _landscape_complete(path, s.points if not interpolation else s.interp_steps + 1 + 2 * s.interp_extra,
                               directions, system, s.per_category, s.max_gen_toks):
            return "reused, " + _landscape_summary(path)
        run(cmd, self.log)  # a partial sweep resumes by itself
        return _landscape_summary(path)

    # e
    def evaluate(self, model: Path, name: str) -> None:
        s = self.s
        out = s.out / "eval" / name
        done = out / ".done"
        if done.is_file():
            return
        if out.exists():
            shutil.rmtree(out)
        run(_cli() + ["eval", "--model", "hf", "--model_args", f"pretrained={model}",
                      "--tasks", "safety_landscape_mini,safety_benign", "--apply_chat_template",
                      "--log_samples", "--output_path", str(out), "--batch_size", str(s.eval_batch_size),
                      "--gen_kwargs", f"max_gen_toks={s.max_gen_toks}",
                      "--metadata", json.dumps({"data": "sample", "per_category": s.eval_per_category}),
                      "--seed", "0", "--store", str(self.store), "--name", name], self.log)
        run(_cli() + ["judge", "--judge", "refusal_heuristic", "--input", str(out),
                      "--output", str(s.out / "eval" / f"{name}.refusal_heuristic.jsonl"), "--no-cache",
                      "--store", str(self.store), "--name", name], self.log)
        done.write_text("ok\n")

    def eval_and_compare(self) -> str:
        s = self.s
        reused = all((s.out / "eval" / n / ".done").is_file() for n in ("base", "aligned", "finetuned"))
        for model, name in [(self.base, "base"), (self.aligned, "aligned"), (self.finetuned, "finetuned")]:
            self.evaluate(model, name)
        # the base and aligned landscapes join the same store entries, so `compare` also reports the VISAGE delta
        for folder, name in [("landscape_base", "base"), ("landscape_aligned", "aligned")]:
            marker = s.out / "eval" / f".{folder}.stored"
            if not marker.is_file():
                run(_cli() + ["store", "add", str(s.out / folder), "--store", str(self.store), "--name", name],
                    self.log)
                marker.write_text("ok\n")
        for a, b in [("base", "aligned"), ("aligned", "finetuned")]:
            run(_cli() + ["compare", "--store", str(self.store), "--baseline", a, "--candidate", b,
                          "--max-flips", "0", "--seed", "0",
                          "--out", str(self.s.examples / f"compare_{a}_vs_{b}.md"),
                          "--json", str(self.s.out / f"compare_{a}_vs_{b}.json")], self.log)
        return ("reused evaluations, " if reused else "") + "compare reports written"

    # f
    def figure_and_table(self) -> str:
        s = self.s
        s.examples.mkdir(parents=True, exist_ok=True)
        names = ["landscape_base", "landscape_aligned", "landscape_aligned_safety", "landscape_aligned_empty",
                 "interpolation"]
        lands = {}
        for n in names:
            src = s.out / n
            lands[n] = json.loads((src / "landscape.json").read_text())
            dst = s.examples / "landscapes" / n
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / "landscape.json", dst / "landscape.json")
            for png in src.glob("*.png"):
                shutil.copy2(png, dst / png.name)
        evals = {m: _eval_summary(s.out / "eval" / m, s.out / "eval" / f"{m}.refusal_heuristic.jsonl")
                 for m in ["base", "aligned", "finetuned"]}
        compares = {}
        for a, b in [("base", "aligned"), ("aligned", "finetuned")]:
            p = s.out / f"compare_{a}_vs_{b}.json"
            compares[f"{a}_vs_{b}"] = _compare_summary(json.loads(p.read_text())) if p.is_file() else None
        summary = {"landscapes": {n: _landscape_numbers(d) for n, d in lands.items()}, "origin": evals,
                   "compare": compares, "settings": _settings_dict(s), "timings_s": self.timings}
        (s.examples / "results.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        combined_figure(lands, s.examples / "reproduce_combined.png")
        (s.examples / "results_table.md").write_text(results_table(summary))
        return f"{s.examples / 'reproduce_combined.png'}, results_table.md, results.json"

    def all(self) -> None:
        s = self.s
        n = total_points(s)
        print(f"reproduce: out={s.out} examples={s.examples} quick={s.quick}; {n} grid points "
              f"(budget {POINT_BUDGET}), {s.per_category} prompts/category, batch {s.batch_size}, "
              f"{s.max_gen_toks} new tokens", flush=True)
        s.out.mkdir(parents=True, exist_ok=True)
        self.step("a. merge aligned adapter", self.merge)
        self.step("a. benign full fine-tuning of aligned", self.finetune)
        self.step("b. landscape base", lambda: self.landscape(self.base, "SmolLM2-135M-Instruct", "landscape_base",
                                                              directions=s.directions))
        self.step("b. landscape aligned", lambda: self.landscape(self.aligned, "SmolLM2-aligned",
                                                                 "landscape_aligned", directions=s.directions))
        self.step("c. landscape aligned, safety preset",
                  lambda: self.landscape(self.aligned, "SmolLM2-aligned", "landscape_aligned_safety",
                                         system="safety", directions=s.system_directions))
        self.step("c. landscape aligned, empty preset",
                  lambda: self.landscape(self.aligned, "SmolLM2-aligned", "landscape_aligned_empty",
                                         system="empty", directions=s.system_directions))
        self.step("d. interpolation aligned -> finetuned",
                  lambda: self.landscape(self.aligned, "SmolLM2-aligned", "interpolation", interpolation=True))
        self.step("e. eval at origin + compare", self.eval_and_compare)
        self.step("f. figure and table", self.figure_and_table)
        total = time.perf_counter() - self.t0
        steps_total = sum(self.timings.values())
        print(f"reproduce: total {total:.1f}s ({total / 60:.1f} min) this invocation; "
              f"{steps_total:.1f}s ({steps_total / 60:.1f} min) summed over the steps, reused ones at the time "
              "they took when they ran", flush=True)
        (s.out / "timings.json").write_text(json.dumps({**self.timings, "total_s": total,
                                                        "steps_total_s": steps_total}, indent=1) + "\n")


# ---------------------------------------------------------------------------------------------- summaries

def _landscape_numbers(d: dict[str, Any]) -> dict[str, Any]:
    return {"kind": d["kind"], "coords": d["coords"][0], "directions": d.get("directions"),
            "asr": d["asr"], "visage": {j: {k: v.get(k) for k in ("mean", "ci", "per_direction", "untrimmed")}
                                        for j, v in d["visage"].items()},
            "seconds_per_point": (d.get("timing") or {}).get("seconds_per_point")}


def _landscape_complete(path: Path, points: int, directions: int, system: str, per_category: int,
                        max_gen_toks: int) -> bool:
    """A finished landscape of this configuration (then no model load is needed to reuse it)."""
    if not path.is_file():
        return False
    try:
        d = json.loads(path.read_text())
        cfg = json.loads((path.parent / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError):
        return False
    curves = [c for j in JUDGES for c in d.get("asr", {}).get(j, [])]
    return (len(d.get("coords", [[]])[0]) == points and len(d.get("asr", {}).get(JUDGES[0], [])) == directions
            and all(y is not None for c in curves for y in c) and cfg.get("system_prompt") == system
            and cfg.get("metadata", {}).get("per_category") == per_category
            and cfg.get("max_gen_toks") == max_gen_toks)


def _landscape_summary(path: Path) -> str:
    if not path.is_file():
        return "no landscape.json"
    d = json.loads(path.read_text())
    v = d["visage"].get("keyword", {})
    return f"VISAGE(keyword) {v.get('mean', float('nan')):.1f}, per direction {_fmt_list(v.get('per_direction'))}"


def _fmt_list(xs: Any, nd: int = 1) -> str:
    if xs is None:
        return "-"
    return "[" + ", ".join("-" if x is None else f"{x:.{nd}f}" for x in xs) + "]"


def _eval_summary(folder: Path, heuristic: Path) -> dict[str, Any]:
    """Rates from the logged samples: keyword verdicts are recomputed with the keyword judge; refusal
    heuristic verdicts come from the judged JSONL."""
    from safety_bench.jsonio import read_jsonl
    from safety_bench.judges.registry import get_judge
    from safety_bench.judges.run import judge_records
    from safety_bench.metrics import summarize_group
    from safety_bench.records import iter_input_records

    out: dict[str, Any] = {}
    records = list(iter_input_records(folder))
    judged = {"keyword": judge_records(records, get_judge("keyword"))}
    if heuristic.is_file():
        judged["refusal_heuristic"] = read_jsonl(heuristic)
    for j, recs in judged.items():
        g = summarize_group(recs)
        out[j] = {"n_harmful": g["asr_n"], "asr": g["asr"], "refusal_rate": g["refusal_rate"],
                  "n_benign": (g["benign"] or {}).get("refusal_n", 0), "over_refusal": g["over_refusal"]}
    return out


def _compare_summary(d: dict[str, Any]) -> dict[str, Any]:
    """Keep only aggregate numbers (no responses) from `compare --json`."""
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("flips", "records", "responses", "samples")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return strip(d)


def _settings_dict(s: Settings) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in s.__dict__.items()}


def combined_figure(lands: dict[str, dict[str, Any]], out: Path, judge: str = "keyword") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))

    def curves(name: str) -> tuple[list[float], list[list[float]]]:
        d = lands[name]
        return d["coords"][0], d["asr"][judge]

    def vis(name: str) -> str:
        v = lands[name]["visage"][judge]
        return f"VISAGE {v['mean']:.1f}"

    ax = axes[0]
    for name, label, color in [("landscape_base", "base SmolLM2", "tab:red"),
                               ("landscape_aligned", "aligned SmolLM2", "tab:blue")]:
        x, cs = curves(name)
        for i, c in enumerate(cs):
            ax.plot(x, [float("nan") if y is None else y for y in c], "o-", color=color, alpha=0.45 + 0.4 * (i == 0),
                    lw=1.5, label=f"{label}, dir {lands[name]['directions'][i]}"
                    + (f" ({vis(name)})" if i == 0 else ""))
    ax.set(title="1D random landscape: base vs aligned", xlabel="α (per-tensor normalised direction)",
           ylabel=f"ASR % ({judge} judge)", ylim=(-3, 103))
    ax.legend(fontsize=7)

    ax = axes[1]
    for name, label, color in [("landscape_aligned", "default system turn (dir 0)", "tab:blue"),
                               ("landscape_aligned_safety", "safety preset", "tab:green"),
                               ("landscape_aligned_empty", "empty preset", "tab:orange")]:
        x, cs = curves(name)
        c = cs[0]
        v = lands[name]["visage"][judge]["per_direction"][0]
        ax.plot(x, [float("nan") if y is None else y for y in c], "o-", color=color,
                label=f"{label} (VISAGE {v:.1f})")
    ax.set(title="aligned: system-prompt presets", xlabel="α", ylabel="ASR %", ylim=(-3, 103))
    ax.legend(fontsize=7)

    ax = axes[2]
    x, cs = curves("interpolation")
    ax.plot(x, [float("nan") if y is None else y for y in cs[0]], "o-", color="tab:purple", label=judge)
    if "refusal_heuristic" in lands["interpolation"]["asr"]:
        ax.plot(x, [float("nan") if y is None else y for y in lands["interpolation"]["asr"]["refusal_heuristic"][0]],
                "s--", color="tab:gray", alpha=0.7, label="refusal_heuristic")
    for t, lab in [(0, "aligned"), (1, "fine-tuned")]:
        ax.axvline(t, color="k", ls=":", lw=1)
        ax.text(t, 101, lab, ha="center", va="bottom", fontsize=8)
    ax.set(title="interpolation aligned → benign-fine-tuned", xlabel="t", ylabel="ASR %", ylim=(-3, 108))
    ax.legend(fontsize=7)
    fig.suptitle("SmolLM2-135M-Instruct: safety basin, system prompt, fine-tuning attack "
                 "(bundled sample prompts, 16 new tokens)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def results_table(summary: dict[str, Any]) -> str:
    L = summary["landscapes"]
    lines = ["| landscape | judge | VISAGE mean | per direction | untrimmed | ASR curve(s), % |", "|---|---|---|---|---|---|"]
    for name, d in L.items():
        for j, v in d["visage"].items():
            curves = "; ".join(_fmt_list(c, 0) for c in d["asr"][j])
            lines.append(f"| {name} | {j} | {v['mean']:.1f} | {_fmt_list(v['per_direction'])} | "
                         f"{_fmt_list([v['untrimmed']] if not isinstance(v['untrimmed'], list) else v['untrimmed'])} "
                         f"| {curves} |")
    lines += ["", "grid: " + ", ".join(f"{n}: {_fmt_list(d['coords'], 3)}" for n, d in L.items()
                                       if n in ("landscape_base", "interpolation")), ""]
    lines += ["| model (origin, default system turn) | judge | ASR (harmful) | refusal rate | over-refusal (benign) |",
              "|---|---|---|---|---|"]
    for m, per in summary["origin"].items():
        for j, r in per.items():
            f = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
            lines.append(f"| {m} | {j} | {f(r['asr'])} (n={r['n_harmful']}) | {f(r['refusal_rate'])} | "
                         f"{f(r['over_refusal'])} (n={r['n_benign']}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", help="working folder (default runs/repro; --quick: runs/repro-quick)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1 prompt per category, 3-point grids, 1 direction, short fine-tuning")
    p.add_argument("--examples", help="where figures, tables and landscape.json copies go "
                                      "(default examples/; --quick: OUT/examples)")
    p.add_argument("--plan", action="store_true", help="print the step plan and grid-point count, run nothing")
    p.add_argument("--adapter", help="the aligned LoRA adapter (default: the shipped artifacts/smollm2-aligned-lora; "
                   "artifacts/smollm2-aligned-lora-v1 reproduces the numbers in examples/RESULTS.md; "
                   "finished steps are reused, so give each adapter its own --out)")
    args = p.parse_args(argv)
    if args.adapter and not (Path(args.adapter) / "adapter_config.json").is_file():
        print(f"reproduce.py: error: --adapter {args.adapter!r}: not a LoRA adapter folder (no adapter_config.json)",
              file=sys.stderr)
        return 2
    s = Settings.make(args.out, args.quick, args.examples)
    if args.plan:
        for st in plan(s):
            print(f"{st['step']:28s} {st['points']:3d} points")
        print(f"total {total_points(s)} grid points (budget {POINT_BUDGET})")
        return 0
    Runner(s, adapter=Path(args.adapter) if args.adapter else None).all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
