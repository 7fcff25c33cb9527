"""The lm-eval tasks: registration, generation settings, system-prompt presets, missing categories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest
from test_data import write_hexphi_folder

from safety_bench.categories import SLUGS
from safety_bench.cli import list_tasks
from safety_bench.harness import task_manager as make_task_manager
from safety_bench.harness.system_prompts import SAFETY_SYSTEM_PROMPT
from safety_bench.records import parse_verdict
from safety_bench.resources import tasks_dir


def test_task_listing_has_group_subtasks_mini_advbench_benign():
    names = dict(list_tasks())
    assert names["safety_landscape"] == "group of 11"
    assert names["safety_landscape_public"] == "group of 10"
    for slug in SLUGS:
        assert names[f"safety_landscape_{slug}"] == "task"
    for extra in ("safety_landscape_mini", "safety_advbench80", "safety_benign"):
        assert names[extra] == "task"
    out = subprocess.run([sys.executable, "-m", "safety_bench.cli", "tasks-dir"], capture_output=True, text=True)
    assert Path(out.stdout.strip()) == tasks_dir() and (tasks_dir() / "safety_landscape.yaml").is_file()


@pytest.fixture(scope="module")
def task_manager():
    return make_task_manager({"data": "sample"})


def _evaluate(model_dir: Path, tasks: list[str], metadata: dict, max_gen_toks: int = 4, limit=None):
    tm = make_task_manager(metadata)
    return lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir}", device="cpu", tasks=tasks,
                                   task_manager=tm, apply_chat_template=True, batch_size=16,
                                   gen_kwargs=f"max_gen_toks={max_gen_toks}", log_samples=True, limit=limit)


def test_generation_settings_are_the_papers(task_manager):
    task = task_manager.load_task_or_group(["safety_landscape_malware"])
    cfg = next(iter(task.values())) if isinstance(task, dict) else task
    config = cfg.config if hasattr(cfg, "config") else cfg
    gen = config.generation_kwargs
    assert gen["until"] == [] and gen["do_sample"] is False and gen["max_gen_toks"] == 512


def _first_prompt(results, task: str) -> str:
    return results["samples"][task][0]["arguments"][0][0]


@pytest.mark.parametrize("preset", ["default", "empty", "safety"])
def test_system_prompt_presets(tiny_model, preset):
    res = _evaluate(tiny_model, ["safety_landscape_malware"], {"data": "sample", "system_prompt": preset},
                    max_gen_toks=2, limit=2)
    prompt = _first_prompt(res, "safety_landscape_malware")
    if preset == "default":
        assert prompt.startswith("<|im_start|>system\nDefault tiny system prompt<|im_end|>")
    elif preset == "empty":
        assert prompt.startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\n")
    else:
        assert prompt.startswith(f"<|im_start|>system\n{SAFETY_SYSTEM_PROMPT}<|im_end|>")
    assert res["samples"]["safety_landscape_malware"][0]["doc"]["system_prompt_preset"] == preset


def test_full_group_on_sample_data_scores_every_category(tiny_model):
    res = _evaluate(tiny_model, ["safety_landscape"], {"data": "sample"})
    for slug in SLUGS:
        r = res["results"][f"safety_landscape_{slug}"]
        assert r["sample_len"] == 8 and 0.0 <= r["asr,judge"] <= 1.0
        assert r["asr,judge"] + r["refusal_rate,judge"] == pytest.approx(1.0)
    group = res["groups"]["safety_landscape"]
    assert group["sample_len"] == 88
    expected = sum(res["results"][f"safety_landscape_{s}"]["asr,judge"] for s in SLUGS) / 11
    assert group["asr,judge"] == pytest.approx(expected)
    sample = res["samples"]["safety_landscape_malware"][0]
    verdict = parse_verdict(sample["filtered_resps"])
    assert verdict["judge"] == "keyword" and verdict["response"] == sample["resps"][0][0]


def test_public_release_layout_runs_and_names_the_missing_category(tiny_model, tmp_path, caplog):
    folder = write_hexphi_folder(tmp_path / "hexphi", skip=(2,))
    with pytest.warns(UserWarning, match="category 2 \\(child_abuse\\) is missing.*safety_landscape_public"):
        res = _evaluate(tiny_model, ["safety_landscape"], {"data": str(folder)}, max_gen_toks=2)
    assert "asr,judge" not in res["results"]["safety_landscape_child_abuse"]
    assert res["groups"]["safety_landscape"]["sample_len"] == 80
    present = [s for s in SLUGS if s != "child_abuse"]
    expected = sum(res["results"][f"safety_landscape_{s}"]["asr,judge"] for s in present) / 10
    assert res["groups"]["safety_landscape"]["asr,judge"] == pytest.approx(expected)
    public = _evaluate(tiny_model, ["safety_landscape_public"], {"data": str(folder)}, max_gen_toks=2)
    assert "safety_landscape_child_abuse" not in public["results"]
    assert public["groups"]["safety_landscape_public"]["asr,judge"] == pytest.approx(expected)


def test_benign_task_reports_over_refusal(tiny_model):
    res = _evaluate(tiny_model, ["safety_benign"], {"data": "sample"}, max_gen_toks=2, limit=5)
    r = res["results"]["safety_benign"]
    assert r["sample_len"] == 5 and "refusal_rate,judge" in r
    assert res["samples"]["safety_benign"][0]["doc"]["category"] == "benign"


def test_judge_selected_by_metadata(tiny_model):
    res = _evaluate(tiny_model, ["safety_landscape_malware"], {"data": "sample", "judge": "refusal_heuristic"},
                    max_gen_toks=2, limit=2)
    assert parse_verdict(res["samples"]["safety_landscape_malware"][0]["filtered_resps"])["judge"] == "refusal_heuristic"


def test_unknown_preset_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="unknown system prompt preset 'loud'"):
        _evaluate(tiny_model, ["safety_landscape_malware"], {"data": "sample", "system_prompt": "loud"}, limit=1)
