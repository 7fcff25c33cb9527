"""lm-eval model type `perturbed-vllm`: a vLLM engine moved to one point of its weight landscape.

The weights move inside the engine's own workers (`safety_bench.harness.vllm_extension`), in place,
through `collective_rpc` with plain arguments, so tensor parallelism works and no weights cross the
host↔device boundary per point. Every `vllm` model argument works, plus those of `perturbed`:
  alpha, beta, seed, seed2, towards (a full checkpoint folder), extra_seeds, include, exclude,
  cache_directions (true | false | auto)
and:
  vllm_seed        the engine's sampling seed (lm-eval's `vllm` calls it `seed`, which here names the
                   direction, as in `perturbed`; default 1234)
  enforce_eager    true disables CUDA graphs (default false: in-place writes keep the graphs valid)
  gpu_memory_utilization  default 0.6, not vLLM's 0.9: the copy of the original weights the restore
                   needs lives beside the engine's memory pool, on the device
Data parallelism is refused: lm-eval runs it as independent replicas that reload the checkpoint
and would silently ignore the perturbation; use tensor_parallel_size, or shard the sweep.

vLLM cannot be installed on the development machines, so this module imports it (and lm-eval's
`vllm` model module, which imports vLLM at the top) only when the model class is first used; the
engine-side logic (`VLLMPerturbation`, `PointMixin`) is plain Python tested with fake workers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from safety_bench.harness.lm_eval_compat import register_model_type
from safety_bench.harness.point import PointMixin, cache_flag, init_point_state
from safety_bench.harness.vllm_extension import EXTENSION, Layout, merge_norm_parts
from safety_bench.landscape.directions import Selection

log = logging.getLogger("safety_bench.landscape")

MODEL_TYPE = "perturbed-vllm"
DEFAULT_GPU_MEMORY_UTILIZATION = 0.6


def check_data_parallel(data_parallel_size: int | str | None) -> None:
    """Refuse data parallelism: its replicas would load the unperturbed checkpoint."""
    if int(data_parallel_size or 1) > 1:
        raise ValueError(
            f"perturbed-vllm does not support data_parallel_size={data_parallel_size}: lm-eval runs data "
            "parallelism as independent engine replicas that reload the checkpoint, so they would ignore the "
            "perturbation. Use tensor_parallel_size=N for one engine over N GPUs, or run shards of the sweep "
            "(`safety-bench landscape --shard i/N`) in separate processes, one per GPU")


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def hf_parameter_shapes(config: Any) -> list[tuple[str, tuple[int, ...]]]:
    """(canonical HF name, shape) of every unique floating parameter, from the config alone (meta
    device: no memory, no weights read). Tied weights appear once, as in `unique_parameters`."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return [(n, tuple(int(s) for s in p.shape)) for n, p in model.named_parameters(remove_duplicate=True)
            if p.is_floating_point()]


class VLLMPerturbation:
    """Engine-side handle on the workers' perturbation state: the sweep backend hook.

    `apply(coefficients)` moves every worker to {seed: c, ..., "towards": t}; `restore()` brings the
    original weights back bit-exactly; both reset the engine's prefix cache, whose KV entries were
    computed with the previous weights. `llm` is a `vllm.LLM` (anything with `collective_rpc` and
    `reset_prefix_cache`).
    """

    def __init__(self, llm: Any, hf_config: Any, seeds: Sequence[int], selection: Selection | None = None,
                 towards: str | None = None, cache_directions: bool | None = None,
                 hf_shapes: Sequence[tuple[str, Sequence[int]]] | None = None) -> None:
        self.llm = llm
        self.selection = selection or Selection()
        self.seeds = [int(s) for s in seeds]
        shapes = hf_shapes if hf_shapes is not None else hf_parameter_shapes(hf_config)
        self.spec = {
            "seeds": self.seeds, "include": list(self.selection.include), "exclude": list(self.selection.exclude),
            "layout": Layout.from_hf_config(hf_config).as_dict(),
            "hf_shapes": [[n, list(s)] for n, s in shapes],
            "towards": towards, "cache_directions": cache_directions,
        }
        parts = llm.collective_rpc("sb_setup", args=(self.spec,))
        self.norms = merge_norm_parts(parts)
        llm.collective_rpc("sb_set_norms", args=(self.norms,))
        self.point: dict[str, float] = {}

    def _reset_prefix_cache(self) -> None:
        if self.llm.reset_prefix_cache() is False:
            raise RuntimeError("vLLM refused to reset its prefix cache after a weight change (requests still "
                               "running?); cached KV entries of the previous weights would leak into this point")

    def apply(self, coefficients: Mapping[str | int, float]) -> None:
        coeffs = {str(k): float(v) for k, v in coefficients.items()}
        points = self.llm.collective_rpc("sb_apply", args=(coeffs,))
        self._reset_prefix_cache()
        self.point = dict(points[0]) if points else {}

    def restore(self) -> None:
        self.llm.collective_rpc("sb_restore")
        self._reset_prefix_cache()
        self.point = {}

    def max_abs_diff(self) -> float:
        """max |θ − θ_A| over every worker (0.0 after `restore`)."""
        return max(float(x) for x in self.llm.collective_rpc("sb_max_abs_diff"))


_CLASS: type | None = None


def _build_class() -> type:
    """Subclass lm-eval's `VLLM` (importing vLLM now, not when the suite registers its model types)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:
        from lm_eval.models.vllm_causallms import VLLM
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "vllm":
            raise ModuleNotFoundError(
                "the perturbed-vllm model type needs vLLM, which is not installed: `pip install "
                "'safety-bench[vllm]'` on a machine with a CUDA GPU, or use `--model perturbed` (the HF "
                "backend) on this one", name="vllm") from exc
        raise

    class PerturbedVLLM(PointMixin, VLLM):  # type: ignore[misc, valid-type]
        """lm-eval's VLLM whose engine weights sit at (alpha, beta) along seeded directions."""

        BACKEND = "vllm"

        def __init__(self, pretrained: str, alpha: float | str = 0.0, beta: float | str = 0.0,
                     seed: int | str = 0, seed2: int | str | None = None, towards: str | None = None,
                     exclude: str | None = None, include: str | None = None,
                     cache_directions: bool | str | None = None, extra_seeds: Sequence[int] | str | None = None,
                     vllm_seed: int | str = 1234, enforce_eager: bool | str = False,
                     data_parallel_size: int | str = 1, gpu_memory_utilization: float | str | None = None,
                     **kwargs: Any) -> None:
            check_data_parallel(data_parallel_size)
            given = kwargs.pop("worker_extension_cls", None)
            if given not in (None, EXTENSION):
                raise ValueError(f"perturbed-vllm installs its own worker extension ({EXTENSION}); "
                                 f"worker_extension_cls={given!r} cannot be combined with it")
            seeds = init_point_state(self, alpha, beta, seed, seed2, towards, include, exclude, extra_seeds)
            util = (DEFAULT_GPU_MEMORY_UTILIZATION if gpu_memory_utilization in (None, "")
                    else float(gpu_memory_utilization))
            super().__init__(pretrained=pretrained, seed=int(vllm_seed), data_parallel_size=1,
                             enforce_eager=_bool(enforce_eager), gpu_memory_utilization=util,
                             worker_extension_cls=EXTENSION, **kwargs)
            self.perturber = VLLMPerturbation(self.model, self._config, seeds, self.selection, self.towards,
                                              cache_flag(cache_directions))
            self.set_point(self.alpha, self.beta)

    PerturbedVLLM.__module__ = __name__
    _CLASS = PerturbedVLLM
    return _CLASS


def __getattr__(name: str) -> Any:
    """`PerturbedVLLM` is built on first access (PEP 562), so importing this module never needs vLLM."""
    if name == "PerturbedVLLM":
        return _build_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# a lazy entry: lm-eval imports `PerturbedVLLM` (and so vLLM) only when this model type is asked for
register_model_type(MODEL_TYPE, f"{__name__}:PerturbedVLLM")
