"""Where a number came from: software versions, model identity, device and dtype, task versions,
timestamps, and redaction of secrets. One function each, used by every command that records them.

Every stored run carries this metadata so that a leaderboard cell can say which task version, judge
version, prompt set and software produced it, and when. Anything that looks like a credential is
removed before metadata is stored or rendered, because model arguments can carry API keys or tokens.
"""

from __future__ import annotations

import datetime as _dt
import platform
import re
from collections.abc import Mapping
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any

from safety_bench.resources import read_task_yaml, tasks_dir
from safety_bench.weights_id import weights_id

_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api[_-]?key|auth|credential|cookie)", re.I)
_SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S+)")
_SECRET_IN_ARGS = re.compile(r"((?:token|api_key|apikey|secret|password)\s*=\s*)[^,\s]+", re.I)
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
REDACTED = "[redacted]"


def now_iso() -> str:
    """UTC timestamp in ISO 8601 with seconds, the store's one date format."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


RESULT_PACKAGES = ("safety-bench", "lm_eval", "torch", "transformers", "datasets", "peft", "vllm")


def software_versions(packages: tuple[str, ...] = RESULT_PACKAGES) -> dict[str, str]:
    """Versions of the packages that shape a result; a package that is not installed is left out."""
    out = {"python": platform.python_version()}
    for dist in packages:
        try:
            out[dist] = _metadata.version(dist)
        except _metadata.PackageNotFoundError:
            continue
    return out


def pick_device(device: str | None = None) -> str:
    """`auto`/None → cuda when available, else cpu; anything else is passed to torch as given."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def pick_dtype(dtype: str | None, device: str) -> Any:
    """`auto`/None → bfloat16 on a GPU that supports it, float32 on CPU (CPU half precision is slow)."""
    import torch

    if dtype in (None, "", "auto"):
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r} (valid: auto, float32, bfloat16, float16)")
    return value


def model_identity(model: str, name: str | None = None, dtype: str | None = None) -> dict[str, Any]:
    """A model as results name it: the user's name (default: the folder's), weights id, and dtype."""
    out: dict[str, Any] = {"name": name or Path(str(model).rstrip("/")).name, "weights_id": weights_id(model)}
    if dtype is not None:
        out["dtype"] = dtype
    return out


def redact_url(url: str) -> str:
    """A URL with any `user:password@` part and credential-looking query values removed."""
    return redact(_URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", url))


def redact(obj: Any) -> Any:
    """A copy of `obj` with credential-looking keys and values replaced, so secrets never reach a page."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "")
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return _SECRET_VALUE.sub(REDACTED, _SECRET_IN_ARGS.sub(lambda m: m.group(1) + REDACTED, obj))
    return obj


def task_versions(names: list[str]) -> dict[str, Any]:
    """`metadata.version` of this suite's task YAMLs by task name, read without starting lm-eval."""
    found: dict[str, Any] = {}
    base_version: Any = None
    template = tasks_dir() / "_safety_template_yaml"
    if template.exists():
        base_version = (read_task_yaml(template).get("metadata") or {}).get("version")
    for path in sorted(tasks_dir().glob("*.yaml")):
        cfg = read_task_yaml(path)
        name = cfg.get("task") if isinstance(cfg.get("task"), str) else cfg.get("group")
        if name in names:
            found[str(name)] = (cfg.get("metadata") or {}).get("version", base_version)
    return {n: found.get(n) for n in names}
