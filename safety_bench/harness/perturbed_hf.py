"""lm-eval model type `perturbed`: a Hugging Face model moved to one point of its weight landscape.

Every `hf` argument works, plus:
  alpha     coefficient of the first axis: the random direction `seed`, or with `towards` the
            interpolation t (θ_A + t·(θ_B − θ_A): t = 0 is the model, t = 1 the `towards` weights)
  beta      coefficient of the second random direction: `seed2`, or `seed` when `towards` is given
  seed      first direction's seed (default 0); seed2 second direction's seed (default seed + 1)
  towards   a second checkpoint folder (same architecture) or a PEFT LoRA adapter folder
  peft      (HFLM's own argument) a LoRA adapter applied to `pretrained`; it is merged into the
            weights before any perturbation, so directions and interpolation act on the merged model
  extra_seeds  more direction seeds this instance may move along (`|`-separated; used by the sweep)
  exclude   `|`-separated name patterns left unperturbed by random directions (default `norm`; `none`
            perturbs everything); include: the same, selecting the only tensors to move
The point is recorded in lm-eval's results under `config.perturbation` (via `get_model_info`). The
sweep (`safety-bench landscape`) reuses one instance and moves it with `set_point`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from safety_bench.landscape.directions import DEFAULT_EXCLUDE, Selection, parse_patterns
from safety_bench.landscape.perturb import TOWARDS, Perturber


def _float(value: Any, default: float = 0.0) -> float:
    return default if value in (None, "") else float(value)


@register_model("perturbed")
class PerturbedHFLM(HFLM):
    """HFLM whose weights sit at (alpha, beta) along seeded directions or towards another checkpoint."""

    def __init__(self, alpha: float | str = 0.0, beta: float | str = 0.0, seed: int | str = 0,
                 seed2: int | str | None = None, towards: str | None = None, exclude: str | None = None,
                 include: str | None = None, cache_directions: bool | str | None = None,
                 extra_seeds: Sequence[int] | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._merge_peft_adapter()
        self.alpha = _float(alpha)
        self.beta = _float(beta)
        self.seed = int(seed)
        self.seed2 = int(seed2) if seed2 not in (None, "") else self.seed + 1
        self.towards = str(towards) if towards else None
        self.selection = Selection(include=parse_patterns(include),
                                   exclude=parse_patterns(exclude, DEFAULT_EXCLUDE))
        if isinstance(cache_directions, str):
            cache_directions = {"true": True, "false": False, "auto": None}[cache_directions.lower()]
        seeds = [self.seed] + ([] if self.towards else [self.seed2])
        if isinstance(extra_seeds, str):
            extra_seeds = [int(x) for x in parse_patterns(extra_seeds)]
        seeds += [int(s) for s in (extra_seeds or ()) if int(s) not in seeds]
        self.perturber = Perturber(self.model, seeds=seeds, towards=self.towards, selection=self.selection,
                                   cache_directions=cache_directions)
        self.set_point(self.alpha, self.beta)

    def _merge_peft_adapter(self) -> None:
        """With `peft=ADAPTER`, HFLM holds an unmerged PeftModel: merge it so that every perturbation
        acts on the merged weights θ_base + B·A·scaling (with the base's parameter names), never on the
        LoRA factors themselves."""
        try:
            from peft import PeftModel
        except ImportError:  # pragma: no cover - peft is a dependency
            return
        if isinstance(self._model, PeftModel):
            self._model = self._model.merge_and_unload()
            self._model.eval()

    def coefficients(self, alpha: float, beta: float) -> dict[str | int, float]:
        """The perturber's coefficients for (alpha, beta) under this instance's axes."""
        if self.towards:
            return {TOWARDS: alpha, self.seed: beta}
        return {self.seed: alpha, self.seed2: beta}

    def set_point(self, alpha: float, beta: float = 0.0) -> None:
        """Move the live weights to (alpha, beta), always computed from the saved original."""
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
        self.alpha = self.beta = None  # type: ignore[assignment]

    def restore(self) -> None:
        self.set_point(0.0, 0.0)

    def perturbation_info(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha, "beta": self.beta, "coefficients": dict(self.perturber.point),
            "axes": (["towards", f"seed:{self.seed}"] if self.towards
                     else [f"seed:{self.seed}", f"seed:{self.seed2}"]),
            "seed": self.seed, "seed2": None if self.towards else self.seed2,
            "towards": self.towards, **self.selection.as_dict(),
            "normalisation": "per-tensor (||d||_F = ||theta||_F)",
        }

    def get_model_info(self) -> dict:
        info = dict(super().get_model_info())
        info["perturbation"] = self.perturbation_info()
        return info
