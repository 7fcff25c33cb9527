"""`safety-bench eval`: lm-eval's CLI with the suite's tasks and the `perturbed` model type."""

from __future__ import annotations

import json
from pathlib import Path

from safety_bench.cli import _lm_eval_argv, main
from safety_bench.records import parse_verdict
from safety_bench.resources import tasks_dir

from helpers.models import build_talkative_model


def _samples(folder: Path) -> list[dict]:
    files = sorted(folder.rglob("samples_safety_landscape_malware_*.jsonl"))
    return [json.loads(line) for line in files[-1].read_text().splitlines()]


def _results(folder: Path) -> dict:
    return json.loads(sorted(folder.rglob("results_*.json"))[-1].read_text())


def test_argv_gets_tasks_dir_and_cpu_device():
    argv = _lm_eval_argv(["--model", "hf", "--tasks", "x"])
    assert argv[argv.index("--include_path") + 1] == str(tasks_dir())
    assert "--device" in argv
    kept = _lm_eval_argv(["--include_path", "/elsewhere", "--device", "cuda:1"])
    assert kept.count("--include_path") == 1 and kept[kept.index("--device") + 1] == "cuda:1"


def test_perturbed_model_type_through_eval_and_store(tmp_path):
    tiny_model = build_talkative_model(tmp_path / "talkative")
    common = ["--tasks", "safety_landscape_malware", "--metadata", '{"data": "sample"}', "--apply_chat_template",
              "--batch_size", "8", "--gen_kwargs", "max_gen_toks=6", "--log_samples", "--limit", "3"]
    assert main(["eval", "--model", "perturbed", "--model_args", f"pretrained={tiny_model},alpha=0,seed=3", *common,
                 "--output_path", str(tmp_path / "origin")]) == 0
    assert main(["eval", "--model", "perturbed", "--model_args", f"pretrained={tiny_model},alpha=0.8,seed=3",
                 *common, "--output_path", str(tmp_path / "moved"), "--store", str(tmp_path / "store"),
                 "--name", "tiny-moved"]) == 0
    origin, moved = (_samples(tmp_path / d) for d in ("origin", "moved"))
    assert [s["resps"] for s in moved] != [s["resps"] for s in origin]
    assert parse_verdict(moved[0]["filtered_resps"])["judge"] == "keyword"
    info = json.dumps(_results(tmp_path / "moved"), default=str)
    assert '"alpha": 0.8' in info and '"seed": 3' in info  # the perturbation is recorded in lm-eval's results
    from safety_bench.leaderboard.store import Store

    assert Store(tmp_path / "store").runs("tiny-moved")


def test_store_needs_name_and_samples(tiny_model, tmp_path, capsys):
    assert main(["eval", "--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", "safety_benign",
                 "--store", str(tmp_path / "s")]) == 2
    assert "--store needs --name" in capsys.readouterr().err
