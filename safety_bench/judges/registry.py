"""Judge registry: a judge is a Python class plus a YAML spec (name, class, version, parameters).

Specs come from the bundled `judges/` folder, then any folders in `SAFETY_BENCH_JUDGES_DIR`
(os.pathsep-separated) or given by flag, then the `safety_bench.judges` entry-point group (each entry
point names a spec-less judge class, or a callable returning a spec dict). A later spec of the same
name replaces an earlier one, so users can override a bundled judge.

Relative file parameters of a spec (`template`, and `model` when such a folder exists beside the spec)
are resolved against the spec's folder, so a spec and its prompt file travel together. Judges that can
describe their identity (`cache_identity()`: API and model-based judges) come back wrapped in the shared
SQLite judge cache unless the cache is turned off; instant judges (keyword) are never cached.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from safety_bench.judges.base import Judge
from safety_bench.judges.cache import CachedJudge, JudgeCache, open_cache
from safety_bench.resources import judges_dir
from safety_bench.settings import SETTINGS, env_value

JUDGES_DIR_ENV = SETTINGS["judges_dir"].env
ENTRY_POINT_GROUP = "safety_bench.judges"


@dataclass
class JudgeSpec:
    name: str
    cls: str
    version: str = "1"
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> JudgeSpec:
        missing = [k for k in ("name", "class") if k not in data]
        if missing:
            raise ValueError(f"judge spec {source or data!r} lacks {', '.join(missing)}")
        known = {"name", "class", "version", "description", "params"}
        extra = {k: v for k, v in data.items() if k not in known}
        params = dict(data.get("params") or {})
        params.update(extra)  # top-level fields such as `model` or `template` are parameters too
        return cls(name=str(data["name"]), cls=str(data["class"]), version=str(data.get("version", "1")),
                   description=str(data.get("description", "")).strip(), params=params, source=source)


def _spec_files(extra_dirs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    dirs = [judges_dir()]
    dirs += [Path(d) for d in (env_value("judges_dir") or "").split(os.pathsep) if d]
    dirs += [Path(d) for d in extra_dirs]
    files: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"judge spec folder {str(d)!r} does not exist")
        files += sorted(d.glob("*.yaml"))
    return files


def load_specs(extra_dirs: Iterable[str | os.PathLike[str]] = ()) -> dict[str, JudgeSpec]:
    """All known judge specs by name."""
    specs: dict[str, JudgeSpec] = {}
    for path in _spec_files(extra_dirs):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        spec = JudgeSpec.from_dict(data, source=str(path))
        spec.params.setdefault("spec_dir", str(path.parent))
        specs[spec.name] = spec
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, type):
            specs[ep.name] = JudgeSpec(name=ep.name, cls=f"{obj.__module__}:{obj.__qualname__}",
                                       source=f"entry point {ep.value}")
        else:
            specs[ep.name] = JudgeSpec.from_dict(obj(), source=f"entry point {ep.value}")
    return specs


def spec_versions(names: Iterable[str], extra_dirs: Iterable[str | os.PathLike[str]] = ()) -> dict[str, str | None]:
    """Each named judge's spec version (None for an unknown name): part of a landscape's configuration
    hash, so a resumed sweep never mixes points judged by two versions of one judge."""
    specs = load_specs(extra_dirs)
    return {n: (specs[n].version if n in specs else None) for n in names}


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    if not attr:
        module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


FILE_PARAMS = ("template", "model")


def _resolve_files(params: dict[str, Any], spec_dir: str | None) -> dict[str, Any]:
    """Spec-relative paths become absolute when the file/folder exists beside the spec."""
    if not spec_dir:
        return params
    for key in FILE_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            candidate = Path(spec_dir) / value
            if candidate.exists():
                params[key] = str(candidate)
    return params


def get_judge(name: str, extra_dirs: Iterable[str | os.PathLike[str]] = (), *,
              cache: JudgeCache | str | os.PathLike[str] | bool | None = None, **overrides: Any) -> Judge:
    """Instantiate a judge by spec name; keyword overrides replace spec parameters.

    `cache`: None = the shared default cache (`SAFETY_BENCH_JUDGE_CACHE`, `off` disables it), False = no
    cache, a path = that SQLite file, or an open `JudgeCache`. Only judges with `cache_identity()` use it.
    """
    specs = load_specs(extra_dirs)
    if name not in specs:
        raise KeyError(f"unknown judge {name!r}; known judges: {', '.join(sorted(specs))} "
                       f"(add a YAML spec to a folder in {JUDGES_DIR_ENV} to define one)")
    spec = specs[name]
    params = _resolve_files({k: v for k, v in spec.params.items() if k != "spec_dir"},
                            spec.params.get("spec_dir"))
    params.update({k: v for k, v in overrides.items()})
    cls = _import(spec.cls)
    if "cache" in inspect.signature(cls).parameters and "cache" not in params:
        params["cache"] = cache  # a judge built from other judges (the cascade) passes the choice on
    try:
        judge = cls(name=spec.name, version=spec.version, **params)
    except TypeError as exc:
        raise ValueError(f"judge spec {spec.source}: bad parameters for {spec.cls}: {exc}") from None
    if callable(getattr(judge, "cache_identity", None)):
        store = open_cache(cache)
        if store is not None:
            return CachedJudge(judge, store)  # type: ignore[return-value]
    return judge


_SHARED: dict[tuple[str, str], Judge] = {}


def shared_judge(name: str) -> Judge:
    """One judge instance per name and process (lm-eval calls the filter once per subtask: a classifier
    is loaded once, and the API client's usage adds up over the whole group)."""
    key = (name, f"{env_value('judges_dir')}|{env_value('judge_cache')}")
    if key not in _SHARED:
        _SHARED[key] = get_judge(name)
    return _SHARED[key]
