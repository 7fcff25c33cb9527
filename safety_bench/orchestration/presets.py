"""Named settings as data: one registry for evaluation, landscape and attack-recipe presets.

Each preset is a YAML file in the top-level `presets/` folder (mapped into the wheel as the package
`safety_bench.bundled_presets`, found by `resources.presets_dir`): `name`, `kind` (`attack`, `landscape`
or `eval`: the command it configures), a one-line `description`, and a flat `settings` mapping whose
keys are that command's settings (a landscape preset's keys are the `landscape` flags without dashes,
as in a nightly `sweep:` block). Commands apply a preset under the user's explicit flags: a flag always
wins, and every setting the preset sets is printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety_bench.resources import presets_dir
from safety_bench.validation import UsageError

KINDS = ("attack", "landscape", "eval")


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


def _read(path: Path) -> Preset:
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    name = str(raw.get("name") or path.stem)
    kind = str(raw.get("kind", ""))
    if kind not in KINDS:
        raise ValueError(f"{path}: preset kind {kind!r} is not one of {', '.join(KINDS)}")
    settings = raw.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ValueError(f"{path}: `settings` must be a mapping of setting -> value")
    return Preset(name=name, kind=kind, description=str(raw.get("description", "")), settings=dict(settings))


def load_presets() -> dict[str, Preset]:
    """Every bundled preset by name."""
    presets: dict[str, Preset] = {}
    for path in sorted(presets_dir().glob("*.yaml")):
        preset = _read(path)
        presets[preset.name] = preset
    return presets


def get_preset(name: str, kind: str, setting: str = "--preset") -> Preset:
    """The preset `name`, which must configure `kind` (a UsageError naming the valid ones otherwise)."""
    presets = load_presets()
    valid = sorted(n for n, p in presets.items() if p.kind == kind)
    if name not in presets:
        raise UsageError(setting, name, "unknown preset", valid)
    if presets[name].kind != kind:
        raise UsageError(setting, name, f"is a {presets[name].kind} preset, not a {kind} preset", valid)
    return presets[name]


def describe_settings(preset: Preset, overridden: Mapping[str, Any]) -> list[str]:
    """The lines a command prints when it applies a preset: each setting, and which flags overrode it."""
    lines = [f"preset {preset.name}: {preset.description}"]
    for key, value in preset.settings.items():
        if key in overridden:
            lines.append(f"  {key} = {value!r}  (overridden by your flag: {overridden[key]!r})")
        else:
            lines.append(f"  {key} = {value!r}")
    return lines
