"""Every setting a user can give by environment variable, with its one default, read in one place.

Commands and task loaders (the edges) resolve settings here once: an explicit value (a flag, lm-eval's
`--metadata`) wins, then the environment variable, then the default, which is the same for every entry
point (`data` is `hexphi`, the real benchmark, for the CLI, the sweep and nightly alike; demos and tests
pass `sample` explicitly). Library functions take the resolved values as arguments; nothing else in the
package reads a `SAFETY_BENCH_*` variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    env: str
    default: str | None
    help: str


SETTINGS: dict[str, Setting] = {
    "data": Setting("SAFETY_BENCH_DATA", "hexphi", "harmful prompt source: hexphi[@rev], sample, or a folder"),
    "judge": Setting("SAFETY_BENCH_JUDGE", "keyword", "judge the lm-eval tasks run"),
    "system_prompt": Setting("SAFETY_BENCH_SYSTEM_PROMPT", "default", "system prompt preset or text:..."),
    "benign": Setting("SAFETY_BENCH_BENIGN", "sample", "benign prompts: sample, or a JSONL/CSV"),
    "prompt_template": Setting("SAFETY_BENCH_PROMPT_TEMPLATE", None,
                               "wrap every instruction: a bundled template name (roleplay) or a file"),
    "advbench": Setting("SAFETY_BENCH_ADVBENCH", "hub", "AdvBench: hub, or a local harmful_behaviors.csv"),
    "judge_cache": Setting("SAFETY_BENCH_JUDGE_CACHE", None, "judge cache file, or off"),
    "judges_dir": Setting("SAFETY_BENCH_JUDGES_DIR", "", "extra judge spec folders (os.pathsep-separated)"),
    "cache": Setting("SAFETY_BENCH_CACHE", None, "cache folder (default ~/.cache/safety-bench)"),
    "aligned_adapter": Setting("SAFETY_BENCH_ALIGNED_ADAPTER", None, "the aligned SmolLM2 adapter folder"),
}

TASK_KEYS = ("data", "judge", "system_prompt", "benign", "advbench", "prompt_template")


def env_value(key: str) -> str | None:
    """The environment's value of a setting (None when unset or empty)."""
    return os.environ.get(SETTINGS[key].env) or None


def resolve(key: str, explicit: Any = None) -> str | None:
    """An explicit value, else the environment's, else the setting's default."""
    if explicit not in (None, ""):
        return str(explicit)
    return env_value(key) or SETTINGS[key].default


def task_settings(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """lm-eval `--metadata` with every task setting resolved (metadata, then environment, then default)."""
    metadata = dict(metadata or {})
    return {**metadata, **{key: resolve(key, metadata.get(key)) for key in TASK_KEYS}}


def describe() -> str:
    """The settings table for `--help` texts and docs."""
    return "\n".join(f"  {s.env:30s} {s.help} (default: {s.default or '-'})" for s in SETTINGS.values())
