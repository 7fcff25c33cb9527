"""lm-eval in a loop: the environment report is computed once and replayed, request building is silent,
and lm-eval's own functions are back in place afterwards."""

from __future__ import annotations

import lm_eval.api.task as task_module
import lm_eval.evaluator as evaluator
import pytest

from safety_bench.harness.lm_eval_compat import repeated_runs


def test_environment_report_computed_once_then_replayed(monkeypatch):
    calls = []
    original = evaluator.add_env_info

    def counting(storage):
        calls.append(1)
        original(storage)

    monkeypatch.setattr(evaluator, "add_env_info", counting)
    with repeated_runs():
        first, second = {"results": 1}, {"results": 2}
        evaluator.add_env_info(first)
        evaluator.add_env_info(second)
        second["pretty_env_info"] += " (changed by a caller)"
        third = {}
        evaluator.add_env_info(third)
    assert len(calls) == 1
    assert {"pretty_env_info", "lm_eval_version", "transformers_version"} <= set(first)
    assert second["results"] == 2 and {k: v for k, v in third.items()} == {k: v for k, v in first.items()
                                                                          if k != "results"}
    assert evaluator.add_env_info is counting  # restored on exit


def test_request_building_bar_is_silent_inside_and_restored_after(capsys):
    original = task_module.tqdm
    with repeated_runs():
        items = list(task_module.tqdm(range(5), total=5))
    assert items == list(range(5))
    assert "5/5" not in capsys.readouterr().err
    assert task_module.tqdm is original
    list(task_module.tqdm(range(5), total=5))
    assert "5/5" in capsys.readouterr().err


def test_originals_restored_when_the_loop_fails():
    saved = (evaluator.add_env_info, evaluator.get_git_commit_hash, task_module.tqdm)
    with pytest.raises(RuntimeError, match="a point failed"), repeated_runs():
        raise RuntimeError("a point failed")
    assert (evaluator.add_env_info, evaluator.get_git_commit_hash, task_module.tqdm) == saved
