"""Landscape grids: which weight-space points a sweep visits, and how they map onto ASR curves.

A grid has one curve per direction (a seed for 1D, a seed pair for 2D, none for pure interpolation).
Every point is named by its perturbation, and the unperturbed model is the single point `origin`
shared by all curves, so it is generated once however many directions are swept.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from safety_bench.landscape.perturb import TOWARDS

KINDS = ("1d_random", "2d_random", "1d_interpolation", "2d_interpolation_random")


def linspace(lo: float, hi: float, n: int) -> list[float]:
    """Evenly spaced floats rounded to 12 decimals (so 0 is exactly 0 and ids are stable)."""
    if n < 2:
        raise ValueError("a grid axis needs at least 2 points")
    return [round(lo + (hi - lo) * i / (n - 1), 12) + 0.0 for i in range(n)]


def interpolation_axis(steps: int, extra: int) -> list[float]:
    """t from −extra/steps to 1 + extra/steps in steps of 1/steps (t = 0: the model, t = 1: the target)."""
    if steps < 1 or extra < 0:
        raise ValueError("interpolation needs steps >= 1 and extra >= 0")
    return [round(i / steps, 12) + 0.0 for i in range(-extra, steps + extra + 1)]


@dataclass(frozen=True)
class Point:
    id: str
    coefficients: dict[str | int, float]
    coords: tuple[float, ...]


@dataclass
class Grid:
    """kind, the coordinates of each axis, and the direction of each curve."""

    kind: str
    coords: list[list[float]]
    directions: list[Any] = field(default_factory=list)  # 1D: seeds; 2D: [s1, s2]; 2d_interp: seeds

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown grid kind {self.kind!r}; use one of {', '.join(KINDS)}")
        dims = 2 if self.kind.startswith("2d") else 1
        if len(self.coords) != dims:
            raise ValueError(f"{self.kind} needs {dims} coordinate axes, got {len(self.coords)}")

    @property
    def two_d(self) -> bool:
        return self.kind.startswith("2d")

    @property
    def axes(self) -> list[str]:
        return {"1d_random": ["alpha"], "2d_random": ["alpha", "beta"], "1d_interpolation": ["t"],
                "2d_interpolation_random": ["t", "beta"]}[self.kind]

    @property
    def curves(self) -> list[Any]:
        """One entry per curve: its direction (None for the single interpolation curve)."""
        return [None] if self.kind == "1d_interpolation" else list(self.directions)

    def seeds(self) -> list[int]:
        flat: list[int] = []
        for d in self.directions:
            flat += [int(x) for x in (d if isinstance(d, (list, tuple)) else [d])]
        return flat

    def coefficients(self, direction: Any, coords: tuple[float, ...]) -> dict[str | int, float]:
        if self.kind == "1d_random":
            out: dict[str | int, float] = {int(direction): coords[0]}
        elif self.kind == "2d_random":
            out = {int(direction[0]): coords[0], int(direction[1]): coords[1]}
        elif self.kind == "1d_interpolation":
            out = {TOWARDS: coords[0]}
        else:
            out = {TOWARDS: coords[0], int(direction): coords[1]}
        return {k: v for k, v in out.items() if v != 0.0}

    @staticmethod
    def point_id(coefficients: dict[str | int, float]) -> str:
        if not coefficients:
            return "origin"
        parts = []
        for key in sorted(coefficients, key=lambda k: (k != TOWARDS, str(k))):
            label = "t" if key == TOWARDS else f"s{key}"
            parts.append(f"{label}{coefficients[key]:+.6f}")
        return "_".join(parts)

    def curve_points(self, k: int) -> list[tuple[tuple[int, ...], Point]]:
        """(index tuple, point) for every grid cell of curve k."""
        direction = self.curves[k]
        out = []
        for idx in itertools.product(*(range(len(axis)) for axis in self.coords)):
            coords = tuple(self.coords[a][i] for a, i in enumerate(idx))
            coeffs = self.coefficients(direction, coords)
            out.append((idx, Point(self.point_id(coeffs), coeffs, coords)))
        return out

    def points(self) -> list[Point]:
        """The unique points in a fixed order (curve by curve, so a direction stays cached)."""
        seen: dict[str, Point] = {}
        for k in range(len(self.curves)):
            for _, point in self.curve_points(k):
                seen.setdefault(point.id, point)
        return list(seen.values())

    def shard(self, k: int, n: int) -> list[Point]:
        """Shard k of n (1-based): every n-th unique point, a deterministic share."""
        if not 1 <= k <= n:
            raise ValueError(f"shard {k}/{n}: K must be in 1..N")
        return [p for i, p in enumerate(self.points()) if i % n == k - 1]

    def curves_from(self, values: dict[str, Any]) -> list[Any]:
        """Arrange per-point values (by point id) as one list (1D) or nested list (2D) per curve."""
        out = []
        for k in range(len(self.curves)):
            cells = self.curve_points(k)
            if self.two_d:
                rows = len(self.coords[0])
                cols = len(self.coords[1])
                grid = [[None] * cols for _ in range(rows)]
                for (i, j), p in cells:
                    grid[i][j] = values.get(p.id)
                out.append(grid)
            else:
                out.append([values.get(p.id) for _, p in cells])
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "axes": self.axes, "coords": self.coords, "directions": self.directions}


def build_grid(kind: str = "1d_random", *, directions: int = 1, seed: int = 0, range_: float = 0.5,
               points: int | None = None, steps: int = 10, extra: int = 2,
               beta_range: float | None = None, beta_points: int | None = None) -> Grid:
    """The grid for a kind and its settings (defaults: 1D α ∈ linspace(−0.5, 0.5, 21); 2D 11×11)."""
    if directions < 1:
        raise ValueError("--directions must be at least 1")
    if kind == "1d_random":
        return Grid(kind, [linspace(-range_, range_, points or 21)], [seed + k for k in range(directions)])
    if kind == "2d_random":
        axis = linspace(-range_, range_, points or 11)
        b_axis = linspace(-(beta_range or range_), beta_range or range_, beta_points or points or 11)
        return Grid(kind, [axis, b_axis], [[seed + 2 * k, seed + 2 * k + 1] for k in range(directions)])
    if kind == "1d_interpolation":
        return Grid(kind, [interpolation_axis(steps, extra)], [])
    if kind == "2d_interpolation_random":
        b = beta_range if beta_range is not None else range_
        return Grid(kind, [interpolation_axis(steps, extra), linspace(-b, b, beta_points or points or 11)],
                    [seed + k for k in range(directions)])
    raise ValueError(f"unknown grid kind {kind!r}; use one of {', '.join(KINDS)}")
