"""Shared plumbing of the local-model judges: device and dtype choice, batching, model fingerprints."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from safety_bench.provenance import pick_device, pick_dtype

T = TypeVar("T")


def load_tokenizer_and_model(auto_class: Any, name: str, revision: str | None, trust_remote_code: bool,
                             device: str | None, dtype: str | None) -> tuple[Any, Any, str]:
    """(tokenizer, model in eval mode on its device, device) for a local judge model of any `Auto*` class."""
    from transformers import AutoTokenizer

    device_name = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
    model = auto_class.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code,
                                       dtype=pick_dtype(dtype, device_name)).to(device_name).eval()
    return tokenizer, model, device_name


def batches(seq: list[T], size: int) -> Iterator[list[T]]:
    size = max(1, int(size))
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def model_fingerprint(model: str) -> str:
    """A local folder's identity: file names, sizes and mtimes (cheap; a re-trained model is a new key).
    A hub name is its own identity (pin a revision in the name's spec when it matters)."""
    path = Path(model)
    if not path.is_dir():
        return model
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        st = file.stat()
        h.update(f"{file.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return f"{os.path.abspath(path)}@{h.hexdigest()[:16]}"
