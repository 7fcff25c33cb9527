"""One small helper that every command uses to check its settings before it acts.

A command checks every setting (names, presets, numeric ranges, paths, the model's context length) before it
writes anything or loads a model, and `--dry-run` runs the same checks. A bad setting raises `UsageError`,
which the CLI prints as one line naming the setting, the bad value and the valid choices, with exit code 2
and nothing on disk changed. The checks read configuration files only (task YAMLs, judge specs, a model's
`config.json`), never lm-eval or torch, so they cost milliseconds.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


class UserError(Exception):
    """Mixed into every error that a user's input or environment causes (a bad file, an unreachable source,
    a store in use): the CLI prints its message as one line and exits 2; `-v` shows the traceback."""


class UsageError(UserError, ValueError):
    """A setting the user gave is wrong; the message is the one line the CLI prints."""

    def __init__(self, setting: str, value: Any, problem: str, valid: Iterable[Any] | None = None) -> None:
        self.setting, self.value, self.problem = setting, value, problem
        self.valid = [str(v) for v in valid] if valid is not None else None
        msg = f"{setting} {value!r}: {problem}"
        if self.valid:
            close = difflib.get_close_matches(str(value), self.valid, n=1)
            shown = self.valid if len(self.valid) <= 12 else [*self.valid[:12], "…"]
            msg += f" (valid: {', '.join(shown)})"
            if close:
                msg += f"; did you mean {close[0]!r}?"
        super().__init__(msg)


def choice(setting: str, value: Any, valid: Sequence[Any]) -> Any:
    if value not in valid:
        raise UsageError(setting, value, "unknown value", valid)
    return value


def number(setting: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
           integer: bool = False, exclusive_minimum: bool = False) -> Any:
    """An int or float within bounds (0 and negatives are not silently turned into defaults)."""
    if value is None:
        return None
    try:
        parsed = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise UsageError(setting, value, f"not {'an integer' if integer else 'a number'}") from None
    if integer and float(value) != parsed:
        raise UsageError(setting, value, "not an integer")
    if minimum is not None and (parsed < minimum or (exclusive_minimum and parsed == minimum)):
        raise UsageError(setting, value, f"must be {'>' if exclusive_minimum else '≥'} {minimum:g}")
    if maximum is not None and parsed > maximum:
        raise UsageError(setting, value, f"must be ≤ {maximum:g}")
    return parsed


def json_object(setting: str, text: str | None) -> dict[str, Any]:
    if text in (None, ""):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(setting, text, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise UsageError(setting, text, "must be a JSON object, e.g. '{\"data\": \"sample\"}'")
    return value


def existing_path(setting: str, value: str | os.PathLike[str] | None, kind: str = "any") -> Path | None:
    """A path that must exist (kind: file, dir or any); read paths are never created."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise UsageError(setting, str(value), "no such file or folder")
    if kind == "file" and not path.is_file():
        raise UsageError(setting, str(value), "is a folder, expected a file")
    if kind == "dir" and not path.is_dir():
        raise UsageError(setting, str(value), "is a file, expected a folder")
    return path


def output_file(setting: str, value: str | os.PathLike[str]) -> Path:
    """A file the command will write: not a folder, and its parent creatable."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise UsageError(setting, str(value), "is a folder, expected a file path to write")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(setting, str(value), f"{parent} is a file, not a folder")
    return path


def output_dir(setting: str, value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(setting, str(value), "is a file, expected a folder")
    return path


def is_remote(value: str | os.PathLike[str]) -> bool:
    return "://" in str(value)


def existing_store(setting: str, value: str | os.PathLike[str]) -> str:
    """A results store a command reads: it must exist (a typo must not create an empty store)."""
    if is_remote(value):
        return str(value)
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UsageError(setting, str(value), "no results store there (commands that write results create one: "
                         "eval, landscape, judge, store add, nightly, attack)")
    if not (path / "models").is_dir() and not (path / "index.sqlite").exists():
        raise UsageError(setting, str(value), "this folder is not a results store (no models/ inside)")
    return str(value)


# ---------------------------------------------------------------------- the suite's names

def task_names() -> list[str]:
    """Every task and group name this suite defines (read from the YAMLs, without lm-eval)."""
    from safety_bench.resources import read_task_yaml, tasks_dir

    names = []
    for path in sorted(tasks_dir().glob("*.yaml")):
        cfg = read_task_yaml(path)
        name = cfg.get("group") if "group" in cfg else cfg.get("task")
        if isinstance(name, str):
            names.append(name)
    return names


def task(setting: str, value: str) -> str:
    """A task of this suite (comma-separated lists are checked name by name)."""
    known = task_names()
    for name in [n.strip() for n in str(value).split(",") if n.strip()] or [value]:
        if name not in known:
            raise UsageError(setting, name, "not a safety-bench task", known)
    return value


def judge(setting: str, value: str, names: Sequence[str]) -> str:
    """A judge name among `names` (the registry's, which the command passes in: this module sits below
    the judges package), or a versioned name `NAME@VERSION` of one."""
    base = str(value).split("@", 1)[0]
    if base not in names:
        raise UsageError(setting, value, "unknown judge", names)
    return value


def context_length(model: str | os.PathLike[str]) -> int | None:
    """The model's context window from its config.json (None when it cannot be read here, e.g. a hub id)."""
    config = Path(model) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(data.get(key), int):
            return int(data[key])
    return None


def max_gen_toks(setting: str, value: Any, model: str | os.PathLike[str] | None = None) -> int:
    n = number(setting, value, minimum=1, integer=True)
    limit = context_length(model) if model is not None else None
    if limit is not None and n >= limit:
        raise UsageError(setting, value, f"the model's context is {limit} tokens; the prompt needs room too")
    return n


def model_path(setting: str, value: str) -> str:
    """A local model folder must exist and hold a config.json; anything else is taken as a hub id."""
    path = Path(value).expanduser()
    looks_local = path.is_absolute() or str(value).startswith((".", "~")) or path.exists() or \
        str(value).count("/") != 1
    if looks_local:
        if not path.exists():
            raise UsageError(setting, value, "no such model folder (nor a hub id of the form org/name)")
        if path.is_dir() and not (path / "config.json").exists() and not any(path.glob("*.gguf")):
            raise UsageError(setting, value, "this folder holds no model (no config.json)")
    return value


def system_prompt(setting: str, value: str, presets: Sequence[str]) -> str:
    """A system-prompt preset name among `presets` (passed in by the command), or literal `text:...`."""
    if str(value).startswith("text:") or value in presets:
        return value
    raise UsageError(setting, value, "unknown system prompt preset", [*presets, "text:<your prompt>"])


def data_source(setting: str, value: str) -> str:
    """A prompt source: `hexphi[@revision]`, `sample`, or an existing folder in HEx-PHI's layout."""
    if value in ("hexphi", "sample") or str(value).startswith("hexphi@"):
        return value
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UsageError(setting, value, "not a prompt source nor an existing folder",
                         ["hexphi", "hexphi@REVISION", "sample", "a folder with category_N.csv"])
    return value


def output_store(setting: str, value: str | os.PathLike[str]) -> str:
    """A results store a command writes to: created when missing, but never over a file."""
    if not is_remote(value):
        output_dir(setting, value)
    return str(value)
