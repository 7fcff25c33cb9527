"""Coherence cost on SmolLM2: a 3-point 1D sweep (alpha in -0.2, 0, 0.2) on 22 bundled prompts (2 per category),
answers of up to N tokens, batch 32, CPU; optionally coherence on only K prompts per point (--coherence-prompts).
Usage: python benchmarks/coherence_cost.py N OUT_DIR [K]"""
import json
import sys
from pathlib import Path

from safety_bench.landscape.grid import build_grid
from safety_bench.models import smollm2_dir
from safety_bench.orchestration.sweep import SweepConfig, run_sweep

toks = int(sys.argv[1])
subset = int(sys.argv[3]) if len(sys.argv) > 3 else None
cfg = SweepConfig(model=str(smollm2_dir()), grid=build_grid("1d_random", points=3, range_=0.2), data="sample",
                  max_gen_toks=toks, batch_size=32, device="cpu", metadata={"per_category": 2},
                  coherence_prompts=subset)
out = Path(sys.argv[2])
ls = run_sweep(cfg, out, progress=False)
t = ls["timing"]

print(json.dumps({"max_gen_toks": toks, "n_prompts": ls["n_prompts"], "coherence_prompts": subset, "timing": t,
                  "coherence_share_of_point": t["coherence_s"] / (t["perturb_s"] + t["evaluate_s"] + t["judge_s"] + t["restore_s"] + t["coherence_s"]),
                  "coherence_loglik": ls["coherence"]["loglik"], "repetition": ls["coherence"]["repetition"],
                  "summary": ls["coherence"]["summary"]}, indent=1))
