"""One real end-to-end run on SmolLM2-135M-Instruct: stock `lm_eval` and `safety-bench eval` agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from safety_bench.categories import SLUGS
from safety_bench.records import parse_verdict
from safety_bench.resources import tasks_dir

pytestmark = pytest.mark.slow


def _results(folder: Path) -> dict:
    files = sorted(folder.rglob("results_*.json"))
    assert files, f"no results in {folder}"
    return json.loads(files[-1].read_text())


def test_stock_lm_eval_and_safety_bench_eval_agree_on_smollm2(smollm2, tmp_path):
    common = ["--model", "hf", "--model_args", f"pretrained={smollm2}", "--tasks", "safety_landscape",
              "--metadata", json.dumps({"data": "sample"}), "--apply_chat_template", "--batch_size", "32",
              "--gen_kwargs", "max_gen_toks=8", "--log_samples", "--device", "cpu"]
    lm_eval_bin = shutil.which("lm_eval") or str(Path(sys.executable).with_name("lm_eval"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    stock = subprocess.run([lm_eval_bin, *common, "--include_path", str(tasks_dir()),
                            "--output_path", str(tmp_path / "stock")], capture_output=True, text=True, env=env)
    assert stock.returncode == 0, stock.stderr[-3000:]
    ours = subprocess.run([sys.executable, "-m", "safety_bench.cli", "eval", *common,
                           "--output_path", str(tmp_path / "ours")], capture_output=True, text=True, env=env)
    assert ours.returncode == 0, ours.stderr[-3000:]
    a, b = _results(tmp_path / "stock"), _results(tmp_path / "ours")
    for slug in SLUGS:
        key = f"safety_landscape_{slug}"
        assert a["results"][key]["asr,judge"] == b["results"][key]["asr,judge"]
        assert a["results"][key]["sample_len"] == 8
    group_a, group_b = a["groups"]["safety_landscape"], b["groups"]["safety_landscape"]
    assert group_a["asr,judge"] == group_b["asr,judge"]
    # SmolLM2 has no real safety tuning: it complies with most requests (a real property, not a constant).
    assert group_a["asr,judge"] > 0.5
    samples = sorted((tmp_path / "ours").rglob("samples_safety_landscape_malware_*.jsonl"))
    first = json.loads(samples[0].read_text().splitlines()[0])
    verdict = parse_verdict(first["filtered_resps"])
    assert verdict["judge"] == "keyword" and verdict["response"] == first["resps"][0][0]
