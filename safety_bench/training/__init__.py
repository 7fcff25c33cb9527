"""Training recipes: `align` (LoRA safety tuning) and `finetune` (the benign fine-tuning attack).

`shipped_adapter_dir()` finds the aligned SmolLM2 adapter this repository ships
(`artifacts/smollm2-aligned-lora/`), made by `safety-bench align` with the command in its recipe.json.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from safety_bench.settings import SETTINGS, env_value

SHIPPED_ADAPTER = "smollm2-aligned-lora"
ADAPTER_ENV = SETTINGS["aligned_adapter"].env


def shipped_adapter_dir() -> Path:
    """The shipped aligned SmolLM2 LoRA adapter: `$SAFETY_BENCH_ALIGNED_ADAPTER`, the package's bundled copy
    (`safety_bench.bundled_artifacts`, if the wheel maps one), or the checkout's `artifacts/` folder."""
    candidates = []
    if env_value("aligned_adapter"):
        candidates.append(Path(str(env_value("aligned_adapter"))))
    spec = importlib.util.find_spec("safety_bench.bundled_artifacts")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / SHIPPED_ADAPTER for loc in spec.submodule_search_locations]
    candidates.append(Path(__file__).resolve().parents[2] / "artifacts" / SHIPPED_ADAPTER)
    for path in candidates:
        if (path / "adapter_config.json").is_file():
            return path
    raise FileNotFoundError(f"the aligned SmolLM2 adapter was not found (looked in {', '.join(map(str, candidates))}); "
                            "use a source checkout, set SAFETY_BENCH_ALIGNED_ADAPTER, or make one with "
                            "`safety-bench align --base smollm2 --out DIR` (see docs/training.md)")
