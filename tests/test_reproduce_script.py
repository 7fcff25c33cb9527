"""examples/reproduce.py: --help works, and its step plan stays within the grid-point budget."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "reproduce.py"


def _module():
    spec = importlib.util.spec_from_file_location("reproduce_example", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_help_runs() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--out" in proc.stdout


def test_plan_within_budget() -> None:
    mod = _module()
    full = mod.Settings.make(None, False, None)
    assert mod.total_points(full) <= mod.POINT_BUDGET == 50
    assert full.batch_size >= 16 and full.max_gen_toks <= 16 and full.per_category in (4, 8)
    steps = [p["step"] for p in mod.plan(full)]
    for needed in ("merge", "finetune", "landscape_base", "landscape_aligned", "landscape_aligned_safety",
                   "landscape_aligned_empty", "interpolation", "eval_and_compare"):
        assert needed in steps
    # base and aligned share one grid and direction seeds; >= 2 directions each
    assert full.directions >= 2
    coords = [-full.range + i * 2 * full.range / (full.points - 1) for i in range(full.points)]
    assert any(abs(c) < 1e-12 for c in coords)  # the origin is on the grid
    # interpolation spans about -0.25 .. 1.25
    lo = -full.interp_extra / full.interp_steps
    assert -0.3 <= lo <= -0.2
    quick = mod.Settings.make(None, True, None)
    assert mod.total_points(quick) < mod.total_points(full)
    assert quick.examples != mod.HERE  # a smoke run never overwrites the recorded results


def test_plan_flag_prints_budget() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--plan"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "total 47 grid points (budget 50)" in proc.stdout


def test_results_table_and_compare_summary_keep_no_responses() -> None:
    mod = _module()
    d = {"judges": {"keyword": {"flips": [{"response": "x"}], "p": 0.01}}, "records": [1]}
    assert mod._compare_summary(d) == {"judges": {"keyword": {"p": 0.01}}}
    summary = {
        "landscapes": {"landscape_base": {"coords": [-0.1, 0.0, 0.1], "asr": {"keyword": [[100.0, 90.0, 100.0]]},
                                          "visage": {"keyword": {"mean": 10.0, "ci": None, "per_direction": [10.0],
                                                                 "untrimmed": 3.3}}}},
        "origin": {"base": {"keyword": {"asr": 0.9, "refusal_rate": 0.1, "n_harmful": 88, "over_refusal": 0.0,
                                        "n_benign": 40}}},
    }
    table = mod.results_table(summary)
    assert "| landscape_base | keyword | 10.0 |" in table and "| base | keyword | 0.900 (n=88)" in table
