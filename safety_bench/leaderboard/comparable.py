"""Whether two landscapes' VISAGE values may be put side by side, and how much a comparison can say.

VISAGE averages a safety margin over a grid: two values measured on different grids, prompt sets, judges
or answer lengths measure different things. The board and `compare` use `differences` to say so instead
of silently ranking or subtracting them, and `evidence_caveats` to say when a comparison rests on too
little (one direction, a handful of prompts) to support a verdict either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MIN_DIRECTIONS = 2  # below this there is no spread over directions, hence no CI for VISAGE
MIN_PAIRED_PROMPTS = 30  # fewer paired prompts cannot detect even a large change with useful power


def _grid(land: Mapping[str, Any]) -> Any:
    return (land.get("kind"), [[round(float(x), 9) for x in axis] for axis in land.get("coords") or []])


def _judges(land: Mapping[str, Any]) -> Any:
    versions = land.get("judge_versions") or {}
    return sorted(f"{j}@{versions.get(j)}" if versions.get(j) else str(j) for j in land.get("judges") or [])


ASPECTS = (("grid", _grid), ("prompt set", lambda land: land.get("prompt_set_hash")),
           ("judge", _judges), ("token cap", lambda land: land.get("max_gen_toks")),
           ("task", lambda land: land.get("task")), ("system prompt", lambda land: land.get("system_prompt")))


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The aspects (grid, prompt set, judge, token cap, task, system prompt) in which two landscapes differ;
    an aspect missing from either file (older landscapes) is not counted as a difference."""
    out = []
    for name, get in ASPECTS:
        va, vb = get(a), get(b)
        if va in (None, [], (None, [])) or vb in (None, [], (None, [])):
            continue
        if va != vb:
            out.append(name)
    return out


def differences_among(landscapes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Aspects in which any landscape differs from the first."""
    found: list[str] = []
    for other in landscapes[1:]:
        found += [d for d in differences(landscapes[0], other) if d not in found]
    return found


def evidence_caveats(n_directions: Sequence[int] | None = None, paired_prompts: int | None = None) -> list[str]:
    """Why the evidence cannot support a verdict (empty when it can)."""
    out = []
    if n_directions is not None and min(n_directions, default=0) < MIN_DIRECTIONS:
        out.append(f"VISAGE rests on {min(n_directions, default=0)} direction(s) on one side: there is no spread "
                   f"over directions, so no CI and no verdict on VISAGE (use --directions {MIN_DIRECTIONS} or more)")
    if paired_prompts is not None and paired_prompts < MIN_PAIRED_PROMPTS:
        out.append(f"only {paired_prompts} paired prompt(s): too few (< {MIN_PAIRED_PROMPTS}) for 'no significant "
                   "change' to mean 'no change'")
    return out
