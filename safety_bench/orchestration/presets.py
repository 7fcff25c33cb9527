"""The one preset registry: named settings as data (`presets/*.yaml`), listed by `safety-bench presets`.

A preset is a `name`, a `kind` (`attack`, `landscape` or `eval`), a description, a source (the paper
and table its numbers follow) and a *flat* mapping of settings. Commands apply a preset and then every
flag the user gave explicitly (`apply`), so explicit flags always win. Attack recipes
(`safety-bench attack`) and evaluation presets (peng2024, qi2023) live side by side here.

Extra preset folders: `$SAFETY_BENCH_PRESETS_DIR` (os.pathsep-separated); a later folder's preset
replaces a bundled one of the same name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from safety_bench.resources import presets_dir
from safety_bench.settings import env_value
from safety_bench.validation import UsageError, UserError

KINDS = ("attack", "landscape", "eval")


class PresetError(UserError, ValueError):
    """A preset file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    description: str = ""
    source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def lines(self) -> list[str]:
        """Every setting the preset sets, one per line (what `safety-bench presets` prints)."""
        head = [f"{self.name}  [{self.kind}]  {self.description}".rstrip()]
        if self.source:
            head.append(f"  source: {self.source}")
        return head + [f"  {k} = {v!r}" for k, v in self.settings.items()]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _read(path: Path) -> Preset:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PresetError(f"{path}: cannot read preset ({exc})") from None
    if not isinstance(raw, dict) or not raw.get("name"):
        raise PresetError(f"{path}: a preset needs `name`, `kind` and `settings`")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise PresetError(f"{path}: kind {kind!r} is not one of {', '.join(KINDS)}")
    settings = raw.get("settings") or {}
    if not isinstance(settings, dict):
        raise PresetError(f"{path}: `settings` must be a mapping")
    for key, value in settings.items():
        if not (_scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))):
            raise PresetError(f"{path}: setting {key!r} must be a scalar or a list of scalars (settings are flat)")
    return Preset(name=str(raw["name"]), kind=str(kind), description=str(raw.get("description") or "").strip(),
                  source=str(raw.get("source") or "").strip(), settings=dict(settings), path=str(path))


def preset_dirs() -> list[Path]:
    extra = env_value("presets_dir")
    return [presets_dir()] + [Path(p) for p in (extra.split(os.pathsep) if extra else []) if p]


def load_presets(kind: str | None = None) -> dict[str, Preset]:
    """Every preset (of one kind, if given), by name, in file-name order."""
    found: dict[str, Preset] = {}
    for folder in preset_dirs():
        for path in sorted(folder.glob("*.yaml")):
            preset = _read(path)
            found[preset.name] = preset
    return {n: p for n, p in found.items() if kind is None or p.kind == kind}


def get_preset(name: str, kind: str | None = None, setting: str = "--preset") -> Preset:
    """The preset `name`, which must configure `kind` when given (a UsageError naming the valid ones)."""
    everything = load_presets()
    valid = sorted(n for n, p in everything.items() if kind is None or p.kind == kind)
    if name not in everything:
        raise UsageError(setting, name, "unknown preset", valid)
    if kind is not None and everything[name].kind != kind:
        raise UsageError(setting, name, f"is a {everything[name].kind} preset, not a {kind} preset", valid)
    return everything[name]


def apply(preset: Preset | None, explicit: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
          ) -> dict[str, Any]:
    """defaults, then the preset's settings, then the explicit values (those not None) — explicit wins."""
    merged = dict(defaults or {})
    if preset is not None:
        merged.update(preset.settings)
    merged.update({k: v for k, v in explicit.items() if v is not None})
    return merged
def describe_settings(preset: Preset, overridden: Mapping[str, Any]) -> list[str]:
    """The lines a command prints when it applies a preset: each setting, and which flags overrode it."""
    lines = [f"preset {preset.name}: {preset.description}"]
    for key, value in preset.settings.items():
        if key in overridden:
            lines.append(f"  {key} = {value!r}  (overridden by your flag: {overridden[key]!r})")
        else:
            lines.append(f"  {key} = {value!r}")
    return lines
