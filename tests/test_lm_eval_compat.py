"""The one module that touches lm-eval's internals says clearly when an lm-eval upgrade removed one."""

from __future__ import annotations

import pytest

from safety_bench.harness import lm_eval_compat


def test_installed_lm_eval_has_everything_the_suite_patches():
    assert lm_eval_compat.check() == []
    lm_eval_compat.assert_compatible()


@pytest.mark.parametrize(("module", "name"), [("lm_eval.evaluator", "add_env_info"),
                                              ("lm_eval._cli", "HarnessCLI"),
                                              ("lm_eval.models", "MODEL_MAPPING")])
def test_a_renamed_lm_eval_name_fails_with_a_clear_message(monkeypatch, module, name):
    import importlib

    monkeypatch.delattr(importlib.import_module(module), name)
    assert f"{module}.{name}" in lm_eval_compat.check()
    with pytest.raises(RuntimeError, match=rf"lacks: .*{module}\.{name}.*checked against lm-eval 0\.4\.13"):
        lm_eval_compat.assert_compatible()


def test_a_renamed_private_keyword_is_reported(monkeypatch):
    from lm_eval.api.task import ConfigurableTask

    def fewshot_context(self, doc, num_fewshot, system_instruction=None, apply_chat_template=False):
        raise AssertionError("not called")

    monkeypatch.setattr(ConfigurableTask, "fewshot_context", fewshot_context)
    assert any("chat_template" in p for p in lm_eval_compat.check())


def test_group_pooling_weights_subtasks_by_their_scored_records():
    metrics = {"a": {"asr,judge": 0.5, "scored,judge": 2.0}, "b": {"asr,judge": 0.0, "scored,judge": 6.0},
               "c": {"asr,judge": float("nan"), "scored,judge": 0.0}}
    assert lm_eval_compat.pooled_over_scored(metrics, ["a", "b", "c"], "asr,judge") == pytest.approx(1 / 8)
