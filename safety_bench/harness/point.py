"""The perturbed model types' shared point interface: parse the perturbation arguments, move to
(alpha, beta) or any coefficients, restore, and record the point in lm-eval's model info.

`perturbed` (HF) and `perturbed-vllm` differ only in their `perturber` (in-process `Perturber` or the
engine-side `VLLMPerturbation`); everything about points lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_bench.landscape.directions import DEFAULT_EXCLUDE, Selection, parse_patterns
from safety_bench.landscape.perturb import TOWARDS


class PointMixin:
    """The `perturbed` model types' point interface (`set_point`, `move_to`, `restore`, model info) over
    any `perturber` with `apply(coefficients)`, `restore()` and `point`."""

    BACKEND = "hf"
    perturber: Any
    alpha: float | None
    beta: float | None
    seed: int
    seed2: int
    towards: str | None
    selection: Selection

    def coefficients(self, alpha: float, beta: float) -> dict[str | int, float]:
        if self.towards:
            return {TOWARDS: alpha, self.seed: beta}
        return {self.seed: alpha, self.seed2: beta}

    def set_point(self, alpha: float, beta: float = 0.0) -> None:
        self.alpha, self.beta = float(alpha), float(beta)
        if self.alpha == 0.0 and self.beta == 0.0:
            self.perturber.restore()
        else:
            self.perturber.apply(self.coefficients(self.alpha, self.beta))

    def move_to(self, coefficients: Mapping[str | int, float]) -> None:
        """Move to any point of the declared axes: {seed: c, ..., "towards": t} (the sweep's entry)."""
        if any(float(c) != 0.0 for c in coefficients.values()):
            self.perturber.apply(coefficients)
        else:
            self.perturber.restore()
        self.alpha = self.beta = None

    def restore(self) -> None:
        self.set_point(0.0, 0.0)

    def perturbation_info(self) -> dict[str, Any]:
        return {
            "backend": self.BACKEND,
            "alpha": self.alpha, "beta": self.beta, "coefficients": dict(self.perturber.point),
            "axes": (["towards", f"seed:{self.seed}"] if self.towards
                     else [f"seed:{self.seed}", f"seed:{self.seed2}"]),
            "seed": self.seed, "seed2": None if self.towards else self.seed2,
            "towards": self.towards, **self.selection.as_dict(),
            "normalisation": "per-tensor (||d||_F = ||theta||_F of the HF tensor)",
        }

    def get_model_info(self) -> dict:
        parent = getattr(super(), "get_model_info", None)
        info = dict(parent()) if callable(parent) else {}
        info["perturbation"] = self.perturbation_info()
        return info


def init_point_state(obj: PointMixin, alpha: Any, beta: Any, seed: Any, seed2: Any, towards: Any,
                     include: Any, exclude: Any, extra_seeds: Any) -> list[int]:
    """Parse the perturbation arguments onto `obj`; returns every seed the engine must know."""
    obj.alpha = 0.0 if alpha in (None, "") else float(alpha)
    obj.beta = 0.0 if beta in (None, "") else float(beta)
    obj.seed = int(seed)
    obj.seed2 = int(seed2) if seed2 not in (None, "") else obj.seed + 1
    obj.towards = str(towards) if towards else None
    obj.selection = Selection(include=parse_patterns(include), exclude=parse_patterns(exclude, DEFAULT_EXCLUDE))
    seeds = [obj.seed] + ([] if obj.towards else [obj.seed2])
    if isinstance(extra_seeds, str):
        extra_seeds = [int(x) for x in parse_patterns(extra_seeds)]
    elif isinstance(extra_seeds, int):
        extra_seeds = [extra_seeds]
    seeds += [int(s) for s in (extra_seeds or ()) if int(s) not in seeds]
    return seeds


def cache_flag(value: Any) -> bool | None:
    if isinstance(value, str):
        return {"true": True, "false": False, "auto": None}[value.strip().lower()]
    return value
