"""`assemble()` (the sweep's landscape builder) on 2D and interpolation grids, from point files alone."""

from __future__ import annotations

import pytest

from safety_bench.jsonio import write_json
from safety_bench.landscape.grid import build_grid
from safety_bench.landscape.visage import summarize_visage, visage_2d
from safety_bench.orchestration.sweep import assemble, point_dir


def _write_points(out, grid, asr_of):
    for p in grid.points():
        write_json(point_dir(out, p.id) / "point.json", {
            "id": p.id, "coords": list(p.coords), "asr": {"keyword": asr_of(p)}, "n": 8,
            "prompt_set_hash": "h", "judge_versions": {"keyword": "1"},
            "timing": {"perturb_s": 0.0, "evaluate_s": 1.0, "generate_s": 1.0, "judge_s": 0.0, "restore_s": 0.0}})


def _identity(grid):
    return {"task": "t", "judges": ["keyword"], "data": "sample", "system_prompt": "default", "max_gen_toks": 8,
            "towards_weights": None, "include": [], "exclude": ["norm"], "grid": grid.as_dict()}


def test_2d_grid_is_assembled_row_by_row_with_2d_visage(tmp_path):
    grid = build_grid("2d_random", directions=2, points=3, range_=0.5)
    # ASR grows with the distance along the first axis; the second direction pair is 10 points less safe
    asr_of = lambda p: min(100.0, 20.0 + 60.0 * abs(p.coords[0]) * 2 + 10.0 * (p.coefficients.get(2, 0) != 0 or  # noqa: E731
                                                                                p.coefficients.get(3, 0) != 0))
    _write_points(tmp_path, grid, asr_of)
    land = assemble(tmp_path, grid, _identity(grid), "d", {"name": "m"})
    curves = land["asr"]["keyword"]
    assert land["kind"] == "2d_random" and len(curves) == 2
    assert [len(row) for row in curves[0]] == [3, 3, 3]
    for k, curve in enumerate(curves):
        for i, alpha in enumerate(grid.coords[0]):
            for j in range(3):
                point = dict(grid.curve_points(k))[(i, j)]
                assert curve[i][j] == asr_of(point) and point.coords[0] == alpha
    assert curves[0][1][1] == curves[1][1][1] == 20.0  # the shared origin, stored once
    assert land["visage"]["keyword"] == summarize_visage(curves, two_d=True)
    assert land["visage"]["keyword"]["per_direction"] == pytest.approx([visage_2d(c) for c in curves])
    assert land["n_points"] == len(grid.points()) == 17


def test_interpolation_grid_orders_t_and_keeps_both_ends(tmp_path):
    grid = build_grid("1d_interpolation", steps=4, extra=1)
    _write_points(tmp_path, grid, lambda p: 10.0 + 80.0 * min(1.0, max(0.0, p.coords[0])))
    land = assemble(tmp_path, grid, _identity(grid), "d", {"name": "m"})
    assert land["coords"] == [[-0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25]]
    assert land["asr"]["keyword"] == [[10.0, 10.0, 30.0, 50.0, 70.0, 90.0, 90.0]]
    assert land["visage"]["keyword"]["mean"] == pytest.approx(100 - (10 + 10 + 30 + 50 + 70 + 90 + 90) / 7)


def test_seconds_per_point_counts_generation_once(tmp_path):
    """generate_s is part of evaluate_s (1 s each point here): a point costs 1 s, not 2."""
    grid = build_grid("1d_interpolation", steps=2, extra=0)
    _write_points(tmp_path, grid, lambda p: 0.0)
    timing = assemble(tmp_path, grid, _identity(grid), "d", {"name": "m"})["timing"]
    assert timing["generate_s"] == timing["evaluate_s"] == timing["points"] * 1.0
    assert timing["seconds_per_point"] == pytest.approx(1.0)
