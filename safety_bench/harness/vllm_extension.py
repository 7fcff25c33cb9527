"""Perturbing a vLLM engine's own weights in place, inside its workers, with the HF directions.

vLLM fuses and shards the checkpoint it loads: a Llama's q/k/v projections become one `qkv_proj`,
gate/up become `gate_up_proj`, and under tensor parallelism (TP) every worker holds a slice. A landscape
must not depend on the backend, so the direction of a vLLM parameter is *built from the HF parameters it
came from*: each block is `directions.direction_values` (the one generator, which the HF backend uses for
whole tensors) asked for the rows and columns of the HF tensor that vLLM lays out on this worker, rescaled
by the FULL HF tensor's norm (not the shard's). Nothing is stored but one copy of the worker's original
weights (and the directions of the seeds in use, under the same `perturb.DirectionCache` policy and
`perturb.fits` memory rule as the HF backend).

The layout is a small table (`FUSED`, `ROW_PARALLEL`, `VOCAB_PARALLEL`) for the Llama family (Llama,
Mistral, Qwen2 and others with the same module names); every planned shape is checked against the
worker's real parameter, and a parameter the table does not explain is an error, never a guess.

Protocol (plain arguments, so `LLM.collective_rpc` can carry it to every TP worker):
  1. `sb_setup(spec)`: plan the layout, keep the originals, return this worker's partial sums of
     squares per HF tensor slice;
  2. the engine side merges them (`merge_norm_parts`) into full-tensor norms: `sb_set_norms(norms)`;
  3. `sb_apply(coefficients)` / `sb_restore()`; the engine side resets the prefix cache after each.
The engine side lives in `safety_bench.harness.perturbed_vllm` (`VLLMPerturbation`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from safety_bench.landscape.directions import (
    CHUNK,
    Selection,
    direction_values,
    gaussian_sumsq,
    is_whole,
    sumsq64,
    tensor_keys,
)
from safety_bench.landscape.perturb import TOWARDS, CheckpointMismatch, DirectionCache, _read_state_dict, keep_on

log = logging.getLogger("safety_bench.landscape")

# vLLM module name of a fused parameter -> the HF modules concatenated (along dim 0) to build it.
FUSED: dict[str, tuple[str, ...]] = {
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "gate_up_proj": ("gate_proj", "up_proj"),
}
# Row-parallel linears: the weight is split along dim 1 (input features); the bias is replicated.
ROW_PARALLEL: tuple[str, ...] = ("o_proj", "down_proj")
# Vocab-parallel: rows split by rank over the vocabulary padded to a multiple of vLLM's padding size.
VOCAB_PARALLEL: tuple[str, ...] = ("embed_tokens", "lm_head")


class LayoutError(ValueError):
    """A vLLM parameter that the HF → vLLM mapping cannot explain (unknown fusion, other layout)."""


# ---------------------------------------------------------------------- layout

@dataclass(frozen=True)
class Layout:
    """What the slicing depends on: attention geometry and this worker's tensor-parallel rank."""

    num_heads: int
    num_kv_heads: int
    head_dim: int
    tp_rank: int = 0
    tp_size: int = 1

    @classmethod
    def from_hf_config(cls, config: Any, tp_rank: int = 0, tp_size: int = 1) -> Layout:
        heads = int(config.num_attention_heads)
        kv = int(getattr(config, "num_key_value_heads", None) or heads)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(heads, kv, int(head_dim), tp_rank, tp_size)

    def as_dict(self) -> dict[str, int]:
        return {"num_heads": self.num_heads, "num_kv_heads": self.num_kv_heads, "head_dim": self.head_dim}


@dataclass(frozen=True)
class Block:
    """Rows `rows` (and columns `cols`, or all) of HF tensor `hf_name`, placed at `dst` rows of the
    vLLM parameter (dim 0)."""

    hf_name: str
    rows: tuple[int, int]
    cols: tuple[int, int] | None
    dst: tuple[int, int]

    def key(self) -> str:
        """Identifies the slice across workers (replicated slices share a key and count once)."""
        cols = "all" if self.cols is None else f"{self.cols[0]}:{self.cols[1]}"
        return f"rows={self.rows[0]}:{self.rows[1]};cols={cols}"

    def take(self, full: torch.Tensor) -> torch.Tensor:
        """This block's slice of a full HF-shaped tensor."""
        part = full[self.rows[0]:self.rows[1]]
        if self.cols is not None:
            part = part[:, self.cols[0]:self.cols[1]]
        return part


@dataclass(frozen=True)
class ParamPlan:
    """How one vLLM parameter is made of HF tensor slices; rows outside every block are padding."""

    name: str
    shape: tuple[int, ...]
    blocks: tuple[Block, ...]


def _split(name: str) -> tuple[str, str, str]:
    """'model.layers.0.self_attn.qkv_proj.weight' -> ('model.layers.0.self_attn.', 'qkv_proj', 'weight')."""
    parts = name.split(".")
    if len(parts) < 2:
        return "", "", name
    prefix = ".".join(parts[:-2])
    return (prefix + "." if prefix else ""), parts[-2], parts[-1]


def _even(n: int, layout: Layout, what: str) -> tuple[int, int]:
    """Rank r's share [r·n/T, (r+1)·n/T) of n rows or columns."""
    if n % layout.tp_size:
        raise LayoutError(f"{what}: {n} rows/columns do not split evenly over tensor_parallel_size={layout.tp_size}")
    per = n // layout.tp_size
    return layout.tp_rank * per, (layout.tp_rank + 1) * per


def _kv_rows(n_rows: int, layout: Layout, what: str) -> tuple[int, int]:
    """Rank r's k or v rows: a share of the KV heads, or one replicated head when TP > KV heads."""
    if layout.num_kv_heads >= layout.tp_size:
        return _even(n_rows, layout, what)
    if layout.tp_size % layout.num_kv_heads:
        raise LayoutError(f"{what}: {layout.num_kv_heads} KV heads cannot be replicated over "
                          f"tensor_parallel_size={layout.tp_size}")
    head = layout.tp_rank // (layout.tp_size // layout.num_kv_heads)
    per_head = n_rows // layout.num_kv_heads
    return head * per_head, (head + 1) * per_head


def plan_parameter(name: str, shape: Sequence[int], hf_shapes: Mapping[str, Sequence[int]],
                   layout: Layout) -> ParamPlan:
    """The HF slices that make up vLLM parameter `name` on this worker; checked against its `shape`."""
    prefix, module, leaf = _split(name)
    shape = tuple(int(s) for s in shape)
    blocks: list[Block] = []
    if module in FUSED:
        pieces = [f"{prefix}{m}.{leaf}" for m in FUSED[module]]
        missing = [p for p in pieces if p not in hf_shapes]
        if missing:
            raise LayoutError(f"vLLM parameter {name!r} is fused from {pieces}, but the HF model has no {missing[0]!r}")
        at = 0
        for i, piece in enumerate(pieces):
            rows = int(hf_shapes[piece][0])
            if module == "qkv_proj" and i > 0:
                lo, hi = _kv_rows(rows, layout, piece)
            else:
                lo, hi = _even(rows, layout, piece)
            blocks.append(Block(piece, (lo, hi), None, (at, at + hi - lo)))
            at += hi - lo
        planned: tuple[int, ...] = (at, *tuple(int(s) for s in hf_shapes[pieces[0]][1:]))
    elif name in hf_shapes and module in ROW_PARALLEL and leaf == "weight":
        hf = tuple(int(s) for s in hf_shapes[name])
        lo, hi = _even(hf[1], layout, name)
        blocks.append(Block(name, (0, hf[0]), (lo, hi), (0, hf[0])))
        planned = (hf[0], hi - lo)
    elif name in hf_shapes and module in VOCAB_PARALLEL:
        hf = tuple(int(s) for s in hf_shapes[name])
        per = shape[0] if shape else 0
        if per * layout.tp_size < hf[0]:
            raise LayoutError(f"vLLM parameter {name!r} has {per} rows per rank, too few for a vocabulary "
                              f"of {hf[0]} over tensor_parallel_size={layout.tp_size}")
        start = layout.tp_rank * per
        stop = min(start + per, hf[0])
        if stop > start:
            blocks.append(Block(name, (start, stop), None, (0, stop - start)))
        planned = (per, *hf[1:])  # rows past the vocabulary are vLLM's zero padding: never moved
    elif name in hf_shapes:
        hf = tuple(int(s) for s in hf_shapes[name])
        blocks.append(Block(name, (0, hf[0] if hf else 1), None, (0, hf[0] if hf else 1)))
        planned = hf
    else:
        raise LayoutError(
            f"vLLM parameter {name!r} has no HF parameter of that name and {module!r} is not a known fused "
            f"module ({', '.join(sorted(FUSED))}); add its HF pieces to "
            "safety_bench.harness.vllm_extension.FUSED, or use the HF backend (`perturbed`)")
    if planned != shape:
        raise LayoutError(f"vLLM parameter {name!r} has shape {shape}, the HF → vLLM mapping expects {planned} "
                          f"(tp_rank={layout.tp_rank}, tp_size={layout.tp_size}); this vLLM lays the model out "
                          "differently: use the HF backend (`perturbed`)")
    return ParamPlan(name, shape, tuple(blocks))


def plan_model(vllm_params: Sequence[tuple[str, Sequence[int]]], hf_shapes: Mapping[str, Sequence[int]],
               layout: Layout) -> list[ParamPlan]:
    """Plans for every floating parameter of the worker's model; each HF tensor must be covered."""
    plans = [plan_parameter(n, s, hf_shapes, layout) for n, s in vllm_params]
    covered = {b.hf_name for p in plans for b in p.blocks}
    lost = [n for n in hf_shapes if n not in covered]
    if lost:
        raise LayoutError(f"HF parameter {lost[0]!r} maps to no vLLM parameter (the perturbation would skip it)")
    return plans


# ---------------------------------------------------------------------- full-tensor norms

def merge_norm_parts(parts: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, float]:
    """Full HF tensor norms from every worker's {hf_name: {slice key: Σx²}}; a slice held by several
    workers (replicated KV heads, replicated norms) counts once. With one slice per tensor (TP = 1)
    the result equals `frobenius_norm64` exactly; sharded tensors agree to fp64 rounding."""
    merged: dict[str, dict[str, float]] = {}
    for worker in parts:
        for hf_name, slices in worker.items():
            merged.setdefault(hf_name, {}).update(slices)
    return {n: math.sqrt(sum(s[k] for k in sorted(s))) for n, s in merged.items()}


# ---------------------------------------------------------------------- the worker-side state

class ShardPerturber:
    """The worker's perturbation state: one copy of its original (fused, sharded) weights, the plans, and
    the directions of the declared seeds, built block by block from the HF directions."""

    def __init__(self, model: torch.nn.Module, spec: Mapping[str, Any], tp_rank: int, tp_size: int) -> None:
        self.model = model
        self.seeds = [int(s) for s in spec.get("seeds", ())]
        self.selection = Selection(include=tuple(spec.get("include", ())),
                                   exclude=tuple(spec.get("exclude", ("norm",))))
        self.chunk = int(spec.get("chunk", CHUNK))
        geometry = dict(spec["layout"])
        self.layout = Layout(int(geometry["num_heads"]), int(geometry["num_kv_heads"]), int(geometry["head_dim"]),
                             tp_rank, tp_size)
        hf_shapes = {str(n): tuple(int(x) for x in s) for n, s in spec["hf_shapes"]}
        self.hf_shapes = hf_shapes
        live = [(n, p) for n, p in model.named_parameters(remove_duplicate=True) if p.is_floating_point()]
        self.plans = plan_model([(n, tuple(p.shape)) for n, p in live], hf_shapes, self.layout)
        self.params = dict(live)
        self.device = next(iter(self.params.values())).device if self.params else torch.device("cpu")
        nbytes = sum(p.numel() * p.element_size() for p in self.params.values())
        store = keep_on(self.device, nbytes, spec.get("original_on"))
        if store != self.device:
            log.warning("vLLM worker %d: not enough free device memory for a copy of the weights; keeping it in "
                        "host memory (slower points; lower gpu_memory_utilization to keep it on the device)", tp_rank)
        with torch.no_grad():
            self.original = {n: p.detach().to(store, copy=True) for n, p in self.params.items()}
        self.original_on = str(store)
        self.norms: dict[str, float] = {}
        self.targets: dict[str, torch.Tensor] = {}
        if spec.get("towards"):
            self._load_targets(str(spec["towards"]))
        # ‖z‖² of the whole HF tensor's Gaussian per (seed, HF name): a shard's direction is rescaled by it
        self._z_sumsq: dict[tuple[int, str], float] = {}
        need = sum(4 * self._block_numel(self.params[p.name], b) for p in self.plans for b in p.blocks
                   if self.selection.selects(b.hf_name, self.params[p.name]))
        self._cache = DirectionCache(spec.get("cache_directions"), self.device, need)
        self.point: dict[str, float] = {}

    # --------------------------------------------------------------- norms and targets

    def norm_parts(self) -> dict[str, dict[str, float]]:
        """{hf_name: {slice key: Σx²}} of this worker's original slices of each HF tensor."""
        parts: dict[str, dict[str, float]] = {}
        for plan in self.plans:
            orig = self.original[plan.name]
            for block in plan.blocks:
                piece = orig[block.dst[0]:block.dst[1]] if orig.dim() else orig
                parts.setdefault(block.hf_name, {})[block.key()] = sumsq64(piece, self.chunk)
        return parts

    def set_norms(self, norms: Mapping[str, float]) -> None:
        needed = {b.hf_name for p in self.plans for b in p.blocks}
        missing = sorted(needed - set(norms))
        if missing:
            raise KeyError(f"no norm for HF tensor {missing[0]!r}")
        self.norms = {n: float(norms[n]) for n in needed}
        self._cache.clear()

    def _load_targets(self, folder: str) -> None:
        """θ_B laid out like this worker's parameters (fp32, on the device when it fits)."""
        if (Path(folder) / "adapter_config.json").is_file():
            raise CheckpointMismatch(f"{folder}: perturbed-vllm interpolates towards full checkpoints only; merge "
                                     "the adapter into its base model first (or use the HF backend `perturbed`)")
        needed: dict[str, list[tuple[ParamPlan, Block]]] = {}
        for plan in self.plans:
            for block in plan.blocks:
                needed.setdefault(block.hf_name, []).append((plan, block))
        store = keep_on(self.device, sum(p.numel() * 4 for p in self.params.values()))
        targets = {plan.name: self.original[plan.name].to(store, torch.float32, copy=True) for plan in self.plans}
        found: set[str] = set()
        for key, value in _read_state_dict(Path(folder)):
            if key not in needed:
                continue
            if tuple(value.shape) != self.hf_shapes[key]:
                raise CheckpointMismatch(f"{folder}: {key!r} has shape {tuple(value.shape)}, the model's has "
                                         f"{self.hf_shapes[key]}")
            for plan, block in needed[key]:
                targets[plan.name][block.dst[0]:block.dst[1]] = block.take(value.to(torch.float32)).to(store)
            found.add(key)
        lost = sorted(set(needed) - found)
        if lost:
            raise CheckpointMismatch(f"{folder}: no tensor for the model's parameter {lost[0]!r}")
        self.targets = targets

    # --------------------------------------------------------------- directions

    @staticmethod
    def _block_numel(param: torch.Tensor, block: Block) -> int:
        row = param.numel() // param.shape[0] if param.dim() and param.shape[0] else 1
        return (block.dst[1] - block.dst[0]) * row

    def _block_direction(self, seed: int, block: Block) -> torch.Tensor:
        """The block's slice of the HF tensor's direction: `directions.direction_values`, the generator the HF
        backend uses, asked for this block's rows (and columns) and given the FULL tensor's norm."""
        shape = self.hf_shapes[block.hf_name]
        z_sumsq = None  # a whole tensor gets its ‖z‖ while it is generated; a slice needs the whole one's, once
        if not is_whole(shape, block.rows, block.cols):
            key = (seed, block.hf_name)
            if key not in self._z_sumsq:
                self._z_sumsq[key] = gaussian_sumsq(tensor_keys(seed, block.hf_name), math.prod(shape), self.device,
                                                    self.chunk)
            z_sumsq = self._z_sumsq[key]
        d = direction_values(seed, block.hf_name, shape, self.norms[block.hf_name], block.rows, block.cols,
                             device=self.device, chunk=self.chunk, z_sumsq=z_sumsq)
        return d if shape else d.reshape(1)  # a 0-dim HF tensor is one row of its vLLM parameter

    def _directions(self, seed: int) -> dict[tuple[str, int], torch.Tensor] | None:
        """Cached block directions of a seed (the shared `DirectionCache` policy), or None to regenerate."""
        return self._cache.get(seed, lambda: {(p.name, i): self._block_direction(seed, b)
                                              for p in self.plans for i, b in enumerate(p.blocks)
                                              if self.selection.selects(b.hf_name, self.params[p.name])})

    # --------------------------------------------------------------- moving

    def apply(self, coefficients: Mapping[str, float]) -> None:
        """θ = lerp(θ_A, θ_B, t) + Σ c·d per HF block, in fp32, cast back (the HF `Perturber`'s arithmetic,
        block by block, so every element gets exactly the value the HF backend gives it)."""
        if not self.norms:
            raise RuntimeError("sb_set_norms was not called after sb_setup")
        coeffs = {str(k): float(v) for k, v in coefficients.items()}
        t = coeffs.pop(TOWARDS, 0.0)
        if t and not self.targets:
            raise ValueError("an interpolation coordinate needs a `towards` checkpoint")
        seeds = [(int(k), c) for k, c in coeffs.items() if c != 0.0]
        unknown = [s for s, _ in seeds if s not in self.seeds]
        if unknown:
            raise KeyError(f"direction seed(s) {unknown} were not declared in sb_setup")
        sets = {s: self._directions(s) for s, _ in seeds}
        with torch.no_grad():
            for plan in self.plans:
                p = self.params[plan.name]
                orig = self.original[plan.name]
                p.copy_(orig)  # padding rows and untouched blocks: the original, exactly
                target = self.targets.get(plan.name) if t else None
                for i, block in enumerate(plan.blocks):
                    moves = [(c, s) for s, c in seeds if self.selection.selects(block.hf_name, p)]
                    if target is None and not moves:
                        continue
                    lo, hi = block.dst
                    acc = orig[lo:hi].to(self.device, torch.float32, copy=True)
                    if target is not None:
                        acc = torch.lerp(acc, target[lo:hi].to(self.device), t)
                    for c, s in moves:
                        cached = sets[s]
                        d = cached[(plan.name, i)] if cached is not None else self._block_direction(s, block)
                        acc.add_(d, alpha=c)
                    p[lo:hi].copy_(acc.to(p.dtype))
        self.point = {**{str(s): c for s, c in seeds}, **({TOWARDS: t} if t else {})}

    def restore(self) -> None:
        """Copy the saved original back: bit-exact, whatever the dtype."""
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.original[name])
        self.point = {}

    def max_abs_diff(self) -> float:
        worst = 0.0
        with torch.no_grad():
            for name, p in self.params.items():
                o = self.original[name].to(p.device, torch.float64)
                if p.numel():
                    worst = max(worst, float((p.detach().to(torch.float64) - o).abs().max()))
        return worst


# ---------------------------------------------------------------------- the vLLM worker extension

class SafetyBenchWorkerExtension:
    """Mixed into every vLLM worker (`LLM(..., worker_extension_cls=EXTENSION)`); call its methods with
    `llm.collective_rpc("sb_apply", args=({"0": 0.1},))`. Only plain values cross the process boundary."""

    _sb_state: ShardPerturber | None = None

    # hooks a test's fake worker overrides; in vLLM they read the worker's model runner and TP group
    def _sb_model(self) -> torch.nn.Module:
        return self.model_runner.model  # type: ignore[attr-defined]

    def _sb_tp(self) -> tuple[int, int]:
        from vllm.distributed import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size

        return int(get_tensor_model_parallel_rank()), int(get_tensor_model_parallel_world_size())

    def _sb(self) -> ShardPerturber:
        if self._sb_state is None:
            raise RuntimeError("call sb_setup first")
        return self._sb_state

    def sb_setup(self, spec: dict[str, Any]) -> dict[str, dict[str, float]]:
        """Plan the layout, keep the originals; returns this worker's partial norms (see module doc)."""
        rank, size = self._sb_tp()
        self._sb_state = ShardPerturber(self._sb_model(), spec, rank, size)
        return self._sb_state.norm_parts()

    def sb_set_norms(self, norms: dict[str, float]) -> None:
        self._sb().set_norms(norms)

    def sb_apply(self, coefficients: dict[str, float]) -> dict[str, float]:
        self._sb().apply(coefficients)
        return dict(self._sb().point)

    def sb_restore(self) -> None:
        self._sb().restore()

    def sb_max_abs_diff(self) -> float:
        return self._sb().max_abs_diff()

    def sb_info(self) -> dict[str, Any]:
        state = self._sb()
        return {"tp_rank": state.layout.tp_rank, "tp_size": state.layout.tp_size, "params": len(state.plans),
                "original_on": state.original_on, "cached_seeds": state._cache.seeds()}


EXTENSION = f"{SafetyBenchWorkerExtension.__module__}.{SafetyBenchWorkerExtension.__qualname__}"
