"""Seeded, per-tensor normalised Gaussian directions that are the same on every run and every device.

torch's CPU and CUDA generators give different streams for one seed, and storing a direction costs as
much memory as the model. So a direction is a pure function of (seed, parameter name, shape): each
element's two uniforms come from a counter-based integer hash of (per-tensor key, element index),
computed with 32-bit arithmetic carried in int64 tensors with explicit masking (no overflow anywhere,
so every device computes the same bits), then Box–Muller in fp64. The per-tensor keys come from
sha256 (never Python's salted `hash()`). Each tensor's direction is rescaled so ‖d‖_F = ‖θ‖_F
(norms in fp64). Generation is chunked, so memory stays bounded for any tensor size, and it runs on
the parameter's own device, so a GPU regenerates a direction at memory speed instead of storing it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

MASK32 = 0xFFFFFFFF
CHUNK = 1 << 22  # elements per generation chunk (a few fp64 temporaries of 32 MiB each)
DEFAULT_EXCLUDE: tuple[str, ...] = ("norm",)
_TWO_PI = 2.0 * math.pi
# The domain string hashed with (seed, name) into each tensor's keys. Changing it changes every direction,
# and so every published landscape: tests/test_direction_golden.py pins the values it gives.
KEY_DOMAIN = "safety-bench/direction/v1"


def tensor_keys(seed: int, name: str) -> tuple[int, int, int, int]:
    """Four 32-bit keys for one tensor, from sha256 of (domain, seed, canonical name)."""
    digest = hashlib.sha256(f"{KEY_DOMAIN}\0{int(seed)}\0{name}".encode()).digest()
    return tuple(int.from_bytes(digest[4 * i:4 * i + 4], "little") for i in range(4))  # type: ignore[return-value]


# Odd multipliers below 2^31: for x < 2^32 the product stays below 2^63, so int64 never overflows and
# masking gives (x * c) mod 2^32 exactly on every device. Odd => each multiply is a bijection mod 2^32.
_M1 = 0x21F0AAAD
_M2 = 0x7FEB352D


def _fmix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit xor-shift-multiply finaliser (bijective on [0, 2^32)), computed in place on x."""
    x ^= x >> 16
    x.mul_(_M1).bitwise_and_(MASK32)
    x ^= x >> 15
    x.mul_(_M2).bitwise_and_(MASK32)
    x ^= x >> 15
    return x


def hash32(index: torch.Tensor, key_a: int, key_b: int) -> torch.Tensor:
    """A 32-bit hash of (keys, 64-bit counter), identical on every device (int64 tensors, masked)."""
    x = (index & MASK32) ^ key_a
    x = _fmix32(x)
    x ^= ((index >> 32) + key_b) & MASK32
    return _fmix32(x)


def gaussian_chunk(keys: tuple[int, int, int, int], start: int, stop: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normals (fp64) for element indices [start, stop) of the tensor with these keys.

    Box–Muller on pairs: elements 2j and 2j+1 share the uniforms of counter j (cos and sin outputs), so
    the value of an element never depends on the chunk boundaries.
    """
    first, last = start // 2, (stop + 1) // 2
    pair = torch.arange(first, last, dtype=torch.int64, device=device)
    u1 = hash32(pair, keys[0], keys[1]).to(torch.float64).add_(0.5).mul_(1.0 / 4294967296.0)
    u2 = hash32(pair, keys[2], keys[3]).to(torch.float64).add_(0.5).mul_(_TWO_PI / 4294967296.0)
    radius = u1.log_().mul_(-2.0).sqrt_()
    z = torch.stack((radius * torch.cos(u2), radius.mul_(torch.sin(u2))), dim=1).reshape(-1)
    offset = start - 2 * first
    return z[offset:offset + (stop - start)]


def sumsq64(t: torch.Tensor, chunk: int = CHUNK) -> float:
    """Σ t² in fp64, chunk by chunk in flat order (no full fp64 copy of a large tensor). A worker that
    holds a tensor in slices reports these partial sums; the engine merges them into the full norm."""
    flat = t.detach().reshape(-1)
    total = 0.0
    for a in range(0, flat.numel(), chunk):
        total += float(flat[a:a + chunk].to(torch.float64).pow(2).sum().item())
    return total


def frobenius_norm64(t: torch.Tensor, chunk: int = CHUNK) -> float:
    """‖t‖_F accumulated in fp64 chunk by chunk: the square root of `sumsq64`, bit for bit."""
    return math.sqrt(sumsq64(t, chunk))


def gaussian_sumsq(keys: tuple[int, int, int, int], numel: int, device: torch.device | str = "cpu",
                   chunk: int = CHUNK, out_dtype: torch.dtype = torch.float32) -> float:
    """‖z‖² of a whole tensor's Gaussian as cast to `out_dtype` (fp64 sums chunk by chunk): the norm a
    direction is rescaled by. The same accumulation `direction_values` does while it generates a whole
    tensor, so passing this in gives the same scale bit for bit."""
    total = 0.0
    for a in range(0, numel, chunk):
        b = min(numel, a + chunk)
        total += float(gaussian_chunk(keys, a, b, device).to(out_dtype).to(torch.float64).pow(2).sum().item())
    return total


def is_whole(shape: Sequence[int], rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None) -> bool:
    """Whether rows [r0, r1) and columns [c0, c1) (None: all) of a tensor of `shape` are the whole tensor."""
    grid = tuple(int(s) for s in shape) or (1,)
    all_cols = cols is None or len(grid) < 2 or tuple(cols) == (0, grid[1])
    return (rows is None or tuple(rows) == (0, grid[0])) and all_cols


def direction_values(seed: int, name: str, shape: Sequence[int], theta_norm: float,
                     rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None, *,
                     device: torch.device | str = "cpu", chunk: int = CHUNK, out_dtype: torch.dtype = torch.float32,
                     z_sumsq: float | None = None) -> torch.Tensor:
    """THE direction generator (both engines): rows [r0, r1) of dim 0, and columns [c0, c1) of dim 1 when
    given, of the direction of tensor `name` whose FULL shape is `shape`, rescaled so the whole tensor's
    direction has ‖d‖_F = `theta_norm` (the full tensor's ‖θ‖_F). Whole tensor by default.

    Values depend on (seed, name, shape, theta_norm) only: a slice is exactly the same slice of the whole
    tensor's direction (the HF backend takes whole tensors, a vLLM worker the slices it holds). Gaussians are
    generated on the whole tensor's chunk grid (chunks [k·chunk, (k+1)·chunk)), so every element is computed
    by the same kernels at the same offsets whichever slice is asked for. The rescale needs ‖z‖ of the whole
    tensor: accumulated while generating a whole tensor, otherwise `z_sumsq` (`gaussian_sumsq`, which a
    caller may keep per seed) or one sum-only pass. Memory: the requested rows, all columns, in `out_dtype`.
    """
    shape = tuple(int(s) for s in shape)
    keys = tensor_keys(seed, name)
    grid = shape if shape else (1,)  # a 0-dim tensor is one row of one element
    n = math.prod(grid)
    row = math.prod(grid[1:])
    r0, r1 = rows if rows is not None else (0, grid[0])
    if cols is not None and is_whole(grid, None, cols):
        cols = None  # all columns
    lo, hi = r0 * row, r1 * row
    whole = is_whole(grid, (r0, r1), cols)
    buf = torch.empty(hi - lo, dtype=out_dtype, device=device)
    sumsq = 0.0
    for a in range((lo // chunk) * chunk, hi, chunk):
        b = min(n, a + chunk)
        zf = gaussian_chunk(keys, a, b, device).to(out_dtype)
        if whole and z_sumsq is None:
            sumsq += float(zf.to(torch.float64).pow(2).sum().item())
        s, e = max(lo, a), min(hi, b)
        buf[s - lo:e - lo] = zf[s - a:e - a]
    if z_sumsq is None:
        z_sumsq = sumsq if whole else gaussian_sumsq(keys, n, device, chunk, out_dtype)
    d_norm = math.sqrt(z_sumsq)
    scale = theta_norm / d_norm if d_norm > 0 else 0.0
    if cols is None:
        for a in range(0, buf.numel(), chunk):
            b = min(buf.numel(), a + chunk)
            buf[a:b] = (buf[a:b].to(torch.float64) * scale).to(out_dtype)
        return buf.view(shape) if whole else buf.view(r1 - r0, *grid[1:])
    block = buf.view(r1 - r0, *grid[1:])[:, cols[0]:cols[1]]
    out = torch.empty(block.shape, dtype=out_dtype, device=device)
    step = max(1, chunk // max(1, row))
    for a in range(0, out.shape[0], step):
        out[a:a + step] = (block[a:a + step].to(torch.float64) * scale).to(out_dtype)
    return out


def direction_for(seed: int, name: str, param: torch.Tensor, chunk: int = CHUNK,
                  out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The direction for one whole tensor: N(0, I) by counter hash, rescaled so ‖d‖_F = ‖θ‖_F.

    Returned in `out_dtype` (fp32: the perturbation arithmetic's precision) on the parameter's device.
    (‖θ‖_F uses the default chunk, as it always has, so a custom `chunk` never changes θ's norm.)
    """
    return direction_values(seed, name, param.shape, frobenius_norm64(param), device=param.device, chunk=chunk,
                            out_dtype=out_dtype)


# ---------------------------------------------------------------------- which tensors move

def _matches(name: str, pattern: str) -> bool:
    """A pattern with glob characters is a glob over the full name; otherwise a substring."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


@dataclass(frozen=True)
class Selection:
    """Which parameters a random direction moves: floating tensors matching `include` (all when empty)
    and no `exclude` pattern. Excluded tensors get d = 0 (by default every name containing `norm`)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE

    def selects(self, name: str, param: torch.Tensor) -> bool:
        if not param.is_floating_point():
            return False
        if self.include and not any(_matches(name, p) for p in self.include):
            return False
        return not any(_matches(name, p) for p in self.exclude)

    def as_dict(self) -> dict[str, list[str]]:
        return {"include": list(self.include), "exclude": list(self.exclude)}


def parse_patterns(value: str | Sequence[str] | None, default: Sequence[str] = ()) -> tuple[str, ...]:
    """Patterns from a CLI/model-arg value: `None` gives the default, `""`/`"none"` gives none,
    otherwise a `|`- or `;`-separated list (commas already separate lm-eval model args)."""
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        if value.strip().lower() in ("", "none"):
            return ()
        parts = value.replace(";", "|").split("|")
    else:
        parts = list(value)
    return tuple(p.strip() for p in parts if p.strip())


def unique_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Each unique parameter once, under its canonical (first) name: tied weights count once.

    `named_parameters` already drops repeated Parameter objects; distinct Parameter objects that share
    storage (some tying schemes) are dropped here by their data pointer.
    """
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    out = []
    for name, p in model.named_parameters(remove_duplicate=True):
        key = (p.data_ptr(), p.storage_offset(), tuple(p.shape)) if p.numel() else (id(p), 0, ())
        if key in seen:
            continue
        seen.add(key)
        out.append((name, p))
    return out


@dataclass
class Direction:
    """One random direction over a model: a seed plus the selection of tensors it moves."""

    seed: int
    selection: Selection = field(default_factory=Selection)
    chunk: int = CHUNK

    def tensor(self, name: str, param: torch.Tensor) -> torch.Tensor | None:
        """The fp32 direction for one parameter, or None when the selection gives it d = 0."""
        if not self.selection.selects(name, param):
            return None
        return direction_for(self.seed, name, param.detach(), chunk=self.chunk)

    def tensors(self, params: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
        for name, p in params:
            d = self.tensor(name, p)
            if d is not None:
                yield name, d
