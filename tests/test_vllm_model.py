"""The `perturbed-vllm` lm-eval model type: importable and registered without vLLM, a clear error when
used without it, and (over a stand-in for lm-eval's VLLM class) the engine arguments and point logic."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from test_vllm_extension import FakeLLM, FakeWorker, _hf, _load, module_from, vllm_layout

import safety_bench.harness.perturbed_vllm as pv
from safety_bench.harness.vllm_extension import EXTENSION

NO_VLLM = importlib.util.find_spec("vllm") is None


def test_module_imports_and_registers_without_vllm():
    from lm_eval.api.registry import model_registry

    from safety_bench.harness import register

    register()
    assert "perturbed-vllm" in model_registry
    assert "vllm" not in sys.modules or not NO_VLLM


@pytest.mark.skipif(not NO_VLLM, reason="vLLM is installed here")
def test_using_it_without_vllm_says_what_to_install(monkeypatch):
    from lm_eval.api.registry import get_model

    monkeypatch.setattr(pv, "_CLASS", None)
    with pytest.raises(ModuleNotFoundError, match="needs vLLM"):
        get_model("perturbed-vllm")


@pytest.fixture
def fake_vllm_class(monkeypatch, tiny_model):
    """lm-eval's `vllm_causallms` replaced by a stand-in whose engine is two fake TP workers."""
    seen: dict = {}

    class StandInVLLM:
        def __init__(self, pretrained, seed=1234, data_parallel_size=1, **kwargs):
            from transformers import AutoConfig

            seen.update(kwargs, pretrained=pretrained, seed=seed, data_parallel_size=data_parallel_size)
            model = _load(pretrained)
            size = int(kwargs.get("tensor_parallel_size", 1))
            self.model = FakeLLM([FakeWorker(module_from(vllm_layout(_hf(model), model.config, r, size)), r, size)
                                  for r in range(size)])
            self._config = AutoConfig.from_pretrained(pretrained)

        def get_model_info(self):
            return {"model_num_parameters": 0}

    fake = types.ModuleType("lm_eval.models.vllm_causallms")
    fake.VLLM = StandInVLLM
    monkeypatch.setitem(sys.modules, "lm_eval.models.vllm_causallms", fake)
    monkeypatch.setattr(pv, "_CLASS", None)
    yield pv.PerturbedVLLM, seen
    pv._CLASS = None


def test_model_type_moves_the_engine_and_records_the_point(fake_vllm_class, tiny_model):
    cls, seen = fake_vllm_class
    lm = cls(pretrained=str(tiny_model), alpha="0.2", seed="3", extra_seeds="8|9", enforce_eager="true",
             tensor_parallel_size=2, vllm_seed=7)
    assert seen["worker_extension_cls"] == EXTENSION and seen["enforce_eager"] is True
    assert seen["seed"] == 7 and seen["data_parallel_size"] == 1
    assert seen["gpu_memory_utilization"] == pv.DEFAULT_GPU_MEMORY_UTILIZATION
    assert lm.perturber.max_abs_diff() > 0
    info = lm.get_model_info()["perturbation"]
    assert info["backend"] == "vllm" and info["coefficients"] == {"3": 0.2}
    assert info["axes"] == ["seed:3", "seed:4"] and info["exclude"] == ["norm"]
    assert lm.get_model_info()["model_num_parameters"] == 0  # the parent's model info is kept
    lm.move_to({8: 0.1, 9: -0.1})  # the sweep's entry point: any declared seed
    assert lm.perturber.point == {"8": 0.1, "9": -0.1}
    lm.restore()
    assert lm.perturber.max_abs_diff() == 0.0 and lm.perturber.point == {}


def test_model_type_refuses_data_parallel_and_foreign_extensions(fake_vllm_class, tiny_model):
    cls, _ = fake_vllm_class
    with pytest.raises(ValueError, match="data_parallel_size"):
        cls(pretrained=str(tiny_model), data_parallel_size=2)
    with pytest.raises(ValueError, match="worker extension"):
        cls(pretrained=str(tiny_model), worker_extension_cls="my.Ext")


def test_same_point_as_the_hf_model_type(fake_vllm_class, tiny_model):
    """alpha/beta mean the same axes in both backends: equal weights at (alpha, beta)."""
    from safety_bench.landscape.perturb import Perturber

    cls, _ = fake_vllm_class
    lm = cls(pretrained=str(tiny_model), alpha=0.3, beta=-0.1, seed=5)
    model = _load(tiny_model)
    Perturber(model, seeds=[5, 6]).apply({5: 0.3, 6: -0.1})
    want = vllm_layout(_hf(model), model.config, 0, 1)
    got = dict(lm.model.workers[0].model.named_parameters())
    assert all(torch.equal(got[n], want[n]) for n in want)
