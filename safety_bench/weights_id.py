"""A model's identity by its weights, so results from the same weights share one key in the store.

A hub model is named by its commit sha (from the local cache, or the hub when reachable). A local
folder (or file) is named by a sha256 over its weight files. Hashing gigabytes takes a while, so each
file's digest is cached by (absolute path, size, mtime): it is computed once per file version.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from safety_bench.models import cache_dir

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")
_CACHE_NAME = "weights-id-cache.json"


def _cache_path() -> Path:
    return cache_dir() / _CACHE_NAME


def _load_cache() -> dict[str, dict[str, object]]:
    try:
        return json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, dict[str, object]]) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".weights-id.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cache, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def file_digest(path: str | os.PathLike[str], cache: dict[str, dict[str, object]] | None = None) -> str:
    """sha256 of one file, reused while its (path, size, mtime) is unchanged."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    own_cache = cache is None
    cache = _load_cache() if cache is None else cache
    hit = cache.get(key)
    if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return str(hit["sha256"])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    digest = h.hexdigest()
    cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    if own_cache:
        _save_cache(cache)
    return digest


def weight_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The weight files of a model folder (recursively, e.g. sharded safetensors), sorted by name."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _local_id(path: Path) -> str:
    files = [path] if path.is_file() else weight_files(path)
    if not files:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under {path}")
    cache = _load_cache()
    h = hashlib.sha256()
    for file in files:
        rel = file.name if path.is_file() else file.relative_to(path).as_posix()
        h.update(f"{rel}\0{file_digest(file, cache)}\n".encode())
    _save_cache(cache)
    return "sha256:" + h.hexdigest()


def _hub_id(name: str) -> str:
    revision = "main"
    if "@" in name:
        name, revision = name.split("@", 1)
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(name, revision=revision, local_files_only=True,
                                   allow_patterns=["config.json"])
        return "hf:" + Path(folder).name  # the snapshot folder is named by the commit sha
    except Exception:  # not cached: ask the hub (network) below
        pass
    try:
        from huggingface_hub import HfApi

        sha = HfApi().model_info(name, revision=revision).sha
    except Exception as exc:
        raise FileNotFoundError(f"{name!r} is neither a local path nor a hub model whose commit can be "
                                f"resolved ({type(exc).__name__})") from None
    return f"hf:{sha}"


def weights_id(path_or_model_name: str | os.PathLike[str]) -> str:
    """`sha256:<hex>` for a local folder/file of weights, `hf:<commit sha>` for a hub model name."""
    path = Path(path_or_model_name).expanduser()
    if path.exists():
        return _local_id(path.resolve())
    return _hub_id(str(path_or_model_name))
