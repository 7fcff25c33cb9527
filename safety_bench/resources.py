"""One resolver for the configuration folders (`tasks/`, `judges/`) in a checkout and in a wheel.

The wheel maps them to the packages `safety_bench.bundled_tasks` / `safety_bench.bundled_judges`; an
editable install maps the same names onto the checkout's folders. A plain checkout on `sys.path` without
any install falls back to the folders beside the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(package: str, checkout_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    fallback = _CHECKOUT / checkout_name
    if fallback.is_dir():
        return fallback
    raise FileNotFoundError(f"cannot find safety-bench's {checkout_name}/ folder (package {package}); "
                            "reinstall safety-bench")


def tasks_dir() -> Path:
    """The folder to pass to lm-eval's `--include_path`."""
    return _folder("safety_bench.bundled_tasks", "tasks")


def judges_dir() -> Path:
    """The folder of bundled judge specs and templates."""
    return _folder("safety_bench.bundled_judges", "judges")


def presets_dir() -> Path:
    """The folder of bundled presets (named settings, `safety-bench presets`)."""
    return _folder("safety_bench.bundled_presets", "presets")


def read_task_yaml(path: Path) -> dict:
    """A task YAML as plain data, without lm-eval: its `!function` hooks (code references that only lm-eval
    resolves) read as None, which is all the suite needs to list tasks and their versions."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """SafeLoader plus a no-op `!function` tag, local so the global SafeLoader stays untouched."""

    _Loader.add_constructor("!function", lambda loader, node: None)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
