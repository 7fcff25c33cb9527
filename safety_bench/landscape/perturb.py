"""Moving a live model to a landscape point in place, and back bit-exactly.

A point is θ = lerp(θ_A, θ_B, t) + Σ_k c_k·d_k, computed in fp32 from the saved original θ_A and cast
back to each parameter's dtype; t is the interpolation coordinate (only with a target θ_B) and d_k are
random directions (seeds). Restoring copies the saved original back, so max|θ − θ_A| = 0 after any
number of points, whatever the dtype. One copy of the original weights is kept (on the model's device,
or in host memory when the device is short). Random directions are cached on the device when memory
allows, and otherwise regenerated tensor by tensor (cheap on a GPU: see `directions`).

`torch.lerp` returns `start` exactly at t = 0 and `end` exactly at t = 1, so the interpolation's end
points are θ_A and θ_B exactly up to the cast to the model's dtype.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from safety_bench.landscape.directions import CHUNK, Direction, Selection, unique_parameters
from safety_bench.validation import UserError

log = logging.getLogger("safety_bench.landscape")

TOWARDS = "towards"  # the interpolation axis' key in a point's coefficients
MEMORY_MARGIN = 0.15  # keep this share of the device's free memory untouched


class CheckpointMismatch(UserError, ValueError):
    """A second checkpoint or adapter does not fit the model; the message names the first mismatch."""


# ---------------------------------------------------------------------- memory

def free_bytes(device: torch.device) -> int:
    """Free memory on a device (host RAM for the CPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def fits(nbytes: int, free: int, reserve: int = 0) -> bool:
    """THE memory-fit rule (both engines, and the sweep's memory plan): `nbytes` plus `reserve` bytes that
    something else will need (the sweep's generation batch) fit in `free` bytes while leaving
    MEMORY_MARGIN of them untouched."""
    return nbytes + reserve <= free * (1 - MEMORY_MARGIN)


def keep_on(device: torch.device, nbytes: int, where: str | None = None) -> torch.device:
    """Where a copy of `nbytes` (the original weights, interpolation targets) lives: `where` ("device" or
    "host") when given; otherwise the device when it fits there (always, for a CPU), else host memory."""
    if where is None:
        where = "device" if device.type == "cpu" or fits(nbytes, free_bytes(device)) else "host"
    return device if where == "device" else torch.device("cpu")


class DirectionCache:
    """THE direction cache policy (HF `Perturber` and the vLLM workers' `ShardPerturber`): one entry per seed
    (that seed's tensors on the device), least recently used out first.

    `mode` True caches every seed; False none (regenerate tensor by tensor at every point); None (auto)
    caches a seed while `fits` says its `nbytes` plus the caller's `reserve` fit the device's free memory,
    evicting the least recently used seeds first, and regenerates when even an empty cache has no room.
    Regenerating gives the same values (directions are a pure function of seed, name and shape).
    """

    def __init__(self, mode: bool | None, device: torch.device, nbytes: int) -> None:
        self.mode = mode
        self.device = device
        self.nbytes = nbytes
        self._entries: OrderedDict[int, dict[Any, torch.Tensor]] = OrderedDict()

    def get(self, seed: int, build: Callable[[], dict[Any, torch.Tensor]],
            reserve: int = 0) -> dict[Any, torch.Tensor] | None:
        """The seed's cached tensors, building (and caching) them when the policy allows; None = regenerate."""
        if seed in self._entries:
            self._entries.move_to_end(seed)
            return self._entries[seed]
        if self.mode is False:
            return None
        if self.mode is None:
            while self._entries and not self._room(reserve):
                self._entries.popitem(last=False)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            if not self._room(reserve):
                return None
        with torch.no_grad():
            self._entries[seed] = build()
        return self._entries[seed]

    def _room(self, reserve: int) -> bool:
        return fits(self.nbytes, free_bytes(self.device), reserve)

    def __contains__(self, seed: object) -> bool:
        return seed in self._entries

    def seeds(self) -> list[int]:
        return sorted(self._entries)

    def clear(self) -> None:
        self._entries.clear()


# ---------------------------------------------------------------------- targets (θ_B)

def _read_state_dict(folder: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of a checkpoint folder's weights, one at a time (safetensors or torch .bin)."""
    files = sorted(folder.glob("*.safetensors"))
    if files:
        from safetensors import safe_open

        for file in files:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    yield key, f.get_tensor(key)
        return
    files = sorted(folder.glob("pytorch_model*.bin")) or sorted(folder.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors or *.bin weight files in {folder}")
    for file in files:
        for key, value in torch.load(file, map_location="cpu", weights_only=True).items():
            yield key, value


def checkpoint_targets(model: torch.nn.Module, folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """θ_B per canonical parameter name (fp32, on CPU) from a second checkpoint of the same architecture.

    Names and shapes must match the model's parameters (a checkpoint may leave out a tied alias such as
    `lm_head.weight`); otherwise a `CheckpointMismatch` names the first difference.
    """
    folder = Path(folder)
    params = dict(unique_parameters(model))
    aliases: dict[str, str] = {}
    by_ptr = {p.data_ptr(): n for n, p in params.items()}
    for name, p in model.named_parameters(remove_duplicate=False):
        aliases[name] = by_ptr.get(p.data_ptr(), name)
    buffers = {n for n, _ in model.named_buffers()}
    targets: dict[str, torch.Tensor] = {}
    for key, value in _read_state_dict(folder):
        canonical = aliases.get(key)
        if canonical is None:
            if key in buffers:
                continue
            raise CheckpointMismatch(f"{folder}: tensor {key!r} is not a parameter of the model "
                                     "(a different architecture?)")
        if tuple(value.shape) != tuple(params[canonical].shape):
            raise CheckpointMismatch(f"{folder}: {key!r} has shape {tuple(value.shape)}, the model's "
                                     f"{canonical!r} has {tuple(params[canonical].shape)}")
        targets.setdefault(canonical, value.to(torch.float32))
    missing = [n for n, p in params.items() if p.is_floating_point() and n not in targets]
    if missing:
        raise CheckpointMismatch(f"{folder}: no tensor for the model's parameter {missing[0]!r}"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return targets


def _lora_scaling(cfg: Mapping[str, object], module: str, rank: int) -> float:
    alpha = float(cfg.get("lora_alpha") or rank)  # type: ignore[arg-type]
    for pattern, value in dict(cfg.get("alpha_pattern") or {}).items():  # type: ignore[arg-type]
        if module == pattern or module.endswith("." + pattern):
            alpha = float(value)
    if cfg.get("use_rslora"):
        return alpha / rank ** 0.5
    return alpha / rank


def adapter_targets(model: torch.nn.Module, folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """θ_B = θ_A + B·A·scaling for each LoRA-adapted weight of a PEFT adapter folder (fp32, on CPU).

    Computing the merged delta directly needs no second copy of the model. Tensors the adapter saves
    whole (`modules_to_save`) become their own targets. DoRA and non-LoRA adapters are refused.
    """
    folder = Path(folder)
    cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        raise CheckpointMismatch(f"{folder}: adapter type {cfg.get('peft_type')!r} is not supported (LoRA only)")
    if cfg.get("use_dora"):
        raise CheckpointMismatch(f"{folder}: DoRA adapters are not supported (merge it first and pass the "
                                 "merged checkpoint folder)")
    weights = {k: v for k, v in _read_state_dict(folder)}
    params = dict(unique_parameters(model))
    by_ptr = {p.data_ptr(): n for n, p in params.items()}
    aliases = {n: by_ptr.get(p.data_ptr(), n) for n, p in model.named_parameters(remove_duplicate=False)}

    def model_name(key: str) -> str:
        for prefix in ("base_model.model.", "base_model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        if key not in aliases:
            raise CheckpointMismatch(f"{folder}: adapter tensor for {key!r} matches no model parameter")
        return aliases[key]

    targets: dict[str, torch.Tensor] = {}
    for key, a in sorted(weights.items()):
        if ".lora_A." not in key:
            continue
        module = key.split(".lora_A.")[0]
        b = weights.get(key.replace(".lora_A.", ".lora_B."))
        if b is None:
            raise CheckpointMismatch(f"{folder}: {key!r} has no matching lora_B tensor")
        name = model_name(module + ".weight")
        base = params[name]
        rank = a.shape[0]
        delta = (b.to(torch.float32) @ a.to(torch.float32)) * _lora_scaling(cfg, module.split("base_model.model.")[-1], rank)
        if cfg.get("fan_in_fan_out"):
            delta = delta.T
        if tuple(delta.shape) != tuple(base.shape):
            raise CheckpointMismatch(f"{folder}: LoRA delta for {name!r} has shape {tuple(delta.shape)}, the "
                                     f"parameter has {tuple(base.shape)}")
        targets[name] = base.detach().to("cpu", torch.float32) + delta
    for key, value in weights.items():
        if ".modules_to_save." in key:
            name = model_name(key.replace(".modules_to_save.default", "").replace(".modules_to_save", ""))
            targets[name] = value.to(torch.float32)
    if not targets:
        raise CheckpointMismatch(f"{folder}: the adapter holds no LoRA weights")
    return targets


def load_targets(model: torch.nn.Module, towards: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """θ_B for interpolation: a PEFT adapter folder (adapter_config.json) or a full checkpoint folder."""
    folder = Path(towards)
    if not folder.is_dir():
        raise FileNotFoundError(f"--towards {towards}: not a folder (give a checkpoint or PEFT adapter folder)")
    if (folder / "adapter_config.json").is_file():
        return adapter_targets(model, folder)
    return checkpoint_targets(model, folder)


# ---------------------------------------------------------------------- the perturber

class Perturber:
    """Moves a model's weights to landscape points in place and restores them bit-exactly.

    `seeds` are the random directions this perturber may use (coefficient keys); `towards` is an
    optional second checkpoint or adapter folder (coefficient key `TOWARDS`, the interpolation t).
    """

    def __init__(self, model: torch.nn.Module, seeds: Sequence[int] = (), towards: str | None = None,
                 selection: Selection | None = None, cache_directions: bool | None = None,
                 original_on: str | None = None, chunk: int = CHUNK) -> None:
        self.model = model
        self.selection = selection or Selection()
        self.directions = {int(s): Direction(int(s), self.selection, chunk) for s in seeds}
        self.chunk = chunk
        params = unique_parameters(model)
        self.targets = load_targets(model, towards) if towards else {}
        self.params = [(n, p) for n, p in params
                       if p.is_floating_point() and (self.selection.selects(n, p) or n in self.targets)]
        self.device = self.params[0][1].device if self.params else torch.device("cpu")
        nbytes = sum(p.numel() * p.element_size() for _, p in self.params)
        store = keep_on(self.device, nbytes, original_on)
        pin = store.type == "cpu" and self.device.type == "cuda"
        self.original: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for n, p in self.params:
                copy = torch.empty(p.shape, dtype=p.dtype, device=store, pin_memory=pin)
                copy.copy_(p.detach())
                self.original[n] = copy
        self.original_device = store
        if self.targets:  # loaded on the CPU; onto the device when they fit there
            target_store = keep_on(self.device, sum(t.numel() * 4 for t in self.targets.values()))
            self.targets = {n: t.to(target_store) for n, t in self.targets.items()}
        # memory that cached directions must leave free (the sweep reserves its generation batch's KV cache:
        # on a GPU one batch of all prompts beats a cached direction, which is cheap to regenerate)
        self.reserve_bytes = 0
        self._cache = DirectionCache(cache_directions, self.device,
                                     sum(p.numel() * 4 for n, p in self.params if self.selection.selects(n, p)))
        self.point: dict[str, float] = {}
        log.debug("perturber: %d tensors, original on %s", len(self.params), store)

    # ------------------------------------------------------------------ directions

    def _direction_set(self, seed: int) -> dict[str, torch.Tensor] | None:
        """The cached direction of a seed, generating it when caching is allowed; None = regenerate."""
        direction = self.directions[seed]
        return self._cache.get(seed, lambda: dict(direction.tensors(self.params)), self.reserve_bytes)

    def direction_tensor(self, seed: int, name: str) -> torch.Tensor | None:
        """fp32 direction of one parameter for one seed (cached or regenerated)."""
        cached = self._direction_set(seed)
        if cached is not None:
            return cached.get(name)
        p = dict(self.params)[name]
        return self.directions[seed].tensor(name, p)

    def warm(self, seeds: Sequence[int]) -> None:
        """Generate (and cache, where allowed) the directions of these seeds now."""
        for s in seeds:
            self._direction_set(int(s))

    # ------------------------------------------------------------------ moving

    def apply(self, coefficients: Mapping[str | int, float]) -> None:
        """Set the weights to the point: lerp(θ_A, θ_B, t) + Σ c_seed·d_seed (fp32, cast back)."""
        coeffs = {k: float(v) for k, v in coefficients.items()}
        t = coeffs.pop(TOWARDS, 0.0)
        if t and not self.targets:
            raise ValueError("an interpolation coordinate needs a `towards` checkpoint or adapter")
        seeds = {int(k): c for k, c in coeffs.items() if c != 0.0}
        unknown = [s for s in seeds if s not in self.directions]
        if unknown:
            raise KeyError(f"direction seed(s) {unknown} were not declared to this perturber")
        sets = {s: self._direction_set(s) for s in seeds}
        with torch.no_grad():
            for name, p in self.params:
                target = self.targets.get(name)
                moves = [(c, sets[s], s) for s, c in seeds.items() if self.selection.selects(name, p)]
                if (t == 0.0 or target is None) and not moves:
                    p.copy_(self.original[name])  # nothing moves this tensor
                    continue
                dirs = [(c, (cached[name] if cached is not None else self.directions[s].tensor(name, p)))
                        for c, cached, s in moves]
                self._write(p, name, t if target is not None else 0.0, target, dirs)
        self.point = {**{str(s): c for s, c in seeds.items()}, **({TOWARDS: t} if t else {})}

    def _write(self, p: torch.Tensor, name: str, t: float, target: torch.Tensor | None,
               dirs: list[tuple[float, torch.Tensor]]) -> None:
        flat = p.view(-1)
        orig = self.original[name].view(-1)
        tgt = target.view(-1) if target is not None else None
        flat_dirs = [(c, d.reshape(-1)) for c, d in dirs]
        for a in range(0, flat.numel(), self.chunk):
            b = min(flat.numel(), a + self.chunk)
            # copy=True: for fp32 weights `.to` would otherwise return the saved original itself
            acc = orig[a:b].to(self.device, torch.float32, non_blocking=True, copy=True)
            if tgt is not None and t != 0.0:
                acc = torch.lerp(acc, tgt[a:b].to(self.device, torch.float32), t)
            for c, d in flat_dirs:
                acc.add_(d[a:b].to(self.device), alpha=c)
            flat[a:b].copy_(acc.to(p.dtype))

    def restore(self) -> None:
        """Copy the saved original back: bit-exact, whatever the dtype."""
        with torch.no_grad():
            for name, p in self.params:
                p.copy_(self.original[name])
        self.point = {}

    def max_abs_diff(self) -> float:
        """max |θ − θ_A| over all managed tensors (0.0 after `restore`)."""
        worst = 0.0
        with torch.no_grad():
            for name, p in self.params:
                o = self.original[name].to(p.device)
                worst = max(worst, float((p.detach().to(torch.float64) - o.to(torch.float64)).abs().max()))
        return worst
