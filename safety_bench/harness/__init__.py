"""lm-eval glue: this suite's model types and task hooks. Importing it registers the model types."""

from __future__ import annotations


def register() -> None:
    """Register the suite's lm-eval model types (`perturbed`, `perturbed-vllm`) where available."""
    import importlib

    for module in ("safety_bench.harness.perturbed_hf", "safety_bench.harness.perturbed_vllm"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not exc.name.startswith("safety_bench"):
                raise
