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

from collections.abc import Sequence
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from safety_bench.harness.point import PointMixin, cache_flag, init_point_state
from safety_bench.landscape.perturb import Perturber


@register_model("perturbed")
class PerturbedHFLM(PointMixin, HFLM):
    """HFLM whose weights sit at (alpha, beta) along seeded directions or towards another checkpoint."""

    BACKEND = "hf"

    def __init__(self, alpha: float | str = 0.0, beta: float | str = 0.0, seed: int | str = 0,
                 seed2: int | str | None = None, towards: str | None = None, exclude: str | None = None,
                 include: str | None = None, cache_directions: bool | str | None = None,
                 extra_seeds: Sequence[int] | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._merge_peft_adapter()
        seeds = init_point_state(self, alpha, beta, seed, seed2, towards, include, exclude, extra_seeds)
        self.perturber = Perturber(self.model, seeds=seeds, towards=self.towards, selection=self.selection,
                                   cache_directions=cache_flag(cache_directions))
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
