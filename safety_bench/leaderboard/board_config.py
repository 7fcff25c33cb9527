"""The board's own settings, as data: the `board:` section of a leaderboard YAML (leaderboards/*.yaml),
read by `safety-bench leaderboard build --config` and by `nightly`.

    board:
      over_refusal_threshold: 0.2   # flag models refusing more than this share of safe prompts
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from safety_bench.leaderboard.ranking import OVER_REFUSAL_THRESHOLD
from safety_bench.validation import UsageError

KEYS = ("over_refusal_threshold",)


@dataclass(frozen=True)
class BoardSettings:
    over_refusal_threshold: float = OVER_REFUSAL_THRESHOLD


def board_settings(section: Mapping[str, Any] | None, where: str = "board") -> BoardSettings:
    """Validated settings from a `board:` mapping (missing keys keep their defaults)."""
    section = dict(section or {})
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}.{unknown[0]}", section[unknown[0]], "unknown board setting", KEYS)
    value = section.get("over_refusal_threshold", OVER_REFUSAL_THRESHOLD)
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"{where}.over_refusal_threshold", value, "must be a fraction between 0 and 1 (0.2 = 20%)")
    return BoardSettings(over_refusal_threshold=threshold)


def load_board_settings(path: str | os.PathLike[str]) -> BoardSettings:
    """The `board:` section of a YAML file (defaults when the file has none)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError("--config", str(path), f"cannot read ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("board") or {}, dict):
        raise UsageError("--config", str(path), "needs a mapping with an optional `board:` mapping")
    return board_settings(raw.get("board"), f"{path.name}: board")
