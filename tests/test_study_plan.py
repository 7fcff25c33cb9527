"""`safety-bench study visage-vs-attack`: the plan is checked completely before anything runs (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from safety_bench.cli import main
from safety_bench.orchestration.study import StudyMismatch, check_work_folder, load_plan


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    model, adapter = tmp_path / "model", tmp_path / "adapter"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    return model, adapter


def _plan(tmp_path: Path, **changes) -> dict:
    model, adapter = _folders(tmp_path) if not (tmp_path / "model").exists() else (tmp_path / "model",
                                                                                     tmp_path / "adapter")
    plan = {"name": "p", "out": str(tmp_path / "work"),
            "family": {"base": str(model), "adapter": str(adapter), "scales": [0, 0.5, 1]},
            "sweep": {"grid": "1d_random", "directions": 2, "points": 3, "task": "safety_landscape_mini",
                      "data": "sample", "judges": ["keyword"], "max_gen_toks": 8},
            "attacks": [{"recipe": "benign", "settings": {"max_steps": 2}}]}
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            plan[section] = {**plan[section], sub: value}
        else:
            plan[section] = value
    return plan


def _run(tmp_path: Path, plan: dict, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    rc = main(["study", "visage-vs-attack", str(path), "--dry-run"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_valid_plan_dry_run_lists_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(tmp_path, _plan(tmp_path), capsys)
    assert rc == 0, err
    info = json.loads(out)
    assert info["variants"] == ["x0", "x0_5", "x1"]
    assert info["grid_points_per_variant"] == 5  # 2 directions x 3 points, the origin shared
    assert info["evaluations"] == 3 * (5 + 1)
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"sweep__grid": "2d_random"}, "sweep.grid '2d_random'"),
    ({"sweep__directions": 1}, "sweep.directions 1: must be ≥ 2"),
    ({"sweep__judges": ["keywrod"]}, "sweep.judges 'keywrod': unknown judge"),
    ({"sweep__task": "nope"}, "sweep.task 'nope'"),
    ({"sweep__colour": "red"}, "unknown sweep setting(s) colour"),
    ({"attacks": [{"recipe": "sleeper"}]}, "'sleeper': not available in this install (valid: benign, harmful, "
                                           "identity-shift)"),
    ({"attacks": [{"recipe": "harmful"}]}, "the harmful recipe needs your own training file"),
    ({"attacks": [{"recipe": "benign", "settings": {"lr": -1}}]}, "plan.attacks[0].settings (--lr) -1"),
    ({"attacks": [{"recipe": "identity-shift", "eval": {"judges": ["keyword"]}}]},
     "plan.attacks[0].eval 'judges': unknown key"),
    ({"attacks": [{"recipe": "identity-shift", "eval": {"max_gen_toks": 0}}]}, "plan.attacks[0].eval.max_gen_toks 0"),
    ({"attacks": [{"recipe": "benign", "eval": {"batch_size": "big"}}]}, "plan.attacks[0].eval.batch_size 'big'"),
    ({"attacks": [{"recipe": "benign", "settings": {"stepz": 3}}]}, "plan.attacks[0].settings 'stepz': unknown key"),
    ({"attacks": []}, "plan.attacks"),
    ({"family__scales": [0, 1]}, "a rank correlation needs at least 3 models"),
    ({"family__adapter": "/no/such/adapter"}, "family.adapter '/no/such/adapter'"),
    ({"family__base": "/no/such/model"}, "family.base '/no/such/model'"),
    ({"judge": "refusal_heuristic"}, "plan.judge 'refusal_heuristic': must be one of the sweep's judges"),
    ({"colour": 1}, "plan 'colour': unknown key"),
])
def test_bad_plans_fail_with_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        changes: dict, fragment: str) -> None:
    rc, out, err = _run(tmp_path, _plan(tmp_path, **changes), capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("safety-bench study: ")
    assert fragment in err
    assert not (tmp_path / "work").exists()


def test_a_work_folder_of_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(_plan(tmp_path)))
    check_work_folder(load_plan(path))
    path.write_text(yaml.safe_dump(_plan(tmp_path, sweep__points=5)))
    with pytest.raises(StudyMismatch, match="differs in: sweep"):
        check_work_folder(load_plan(path))
    path.write_text(yaml.safe_dump(_plan(tmp_path, family__scales=[0, 0.5, 1, 1.5])))
    check_work_folder(load_plan(path))  # adding models to a study is fine
