"""lm-eval glue: this suite's model types and task hooks.

Importing this package registers the model types `perturbed` and `perturbed-vllm` with lm-eval, lazily
(the classes, and vLLM, are imported only when a type is asked for), after lm-eval's own types.
"""

from __future__ import annotations

from safety_bench.harness.lm_eval_compat import register_model_type

MODEL_TYPES = {"perturbed": "safety_bench.harness.perturbed_hf:PerturbedHFLM",
               "perturbed-vllm": "safety_bench.harness.perturbed_vllm:PerturbedVLLM"}
for _name, _target in MODEL_TYPES.items():
    register_model_type(_name, _target)


def register() -> None:
    """Register the suite's lm-eval model types (`perturbed`, `perturbed-vllm`) where available."""
    import importlib

    for module in ("safety_bench.harness.perturbed_hf", "safety_bench.harness.perturbed_vllm"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not exc.name.startswith("safety_bench"):
                raise


def task_manager(metadata: dict | None = None, include_defaults: bool = False):
    """An lm-eval TaskManager over this suite's tasks.

    Without lm-eval's ~1,000 built-in tasks it builds in well under a second instead of ~10-15 s.
    """
    from lm_eval.tasks import TaskManager

    from safety_bench.resources import tasks_dir

    return TaskManager(include_path=str(tasks_dir()), include_defaults=include_defaults, metadata=metadata)
