"""VISAGE against hand-computed curves (reference 1D trim, untrimmed margin, 2D, CI over directions)."""

from __future__ import annotations

import pytest

from safety_bench.landscape.visage import (
    summarize_visage,
    t_interval,
    trim_bounds,
    untrimmed_margin,
    visage_1d,
    visage_2d,
)


def test_no_broken_ends():
    assert visage_1d([10, 20, 30, 20, 10]) == pytest.approx((90 + 80 + 70 + 80 + 90) / 5)
    assert trim_bounds([10, 20, 30, 20, 10]) == (0, 4)


def test_fully_broken():
    assert visage_1d([100.0] * 7) == 0.0
    assert untrimmed_margin([100.0] * 7) == 0.0


def test_both_ends_broken():
    asr = [100, 100, 40, 20, 40, 100, 100]
    assert trim_bounds(asr) == (2, 4)
    assert visage_1d(asr) == pytest.approx((60 + 80 + 60) / 3)
    assert untrimmed_margin(asr) == pytest.approx((60 + 80 + 60) / 7)


def test_asymmetric():
    asr = [100, 100, 20, 0, 0, 0, 0]
    assert trim_bounds(asr) == (2, 6)
    assert visage_1d(asr) == pytest.approx((80 + 100 * 4) / 5)


def test_reference_quirks_are_kept():
    # the first saturated→safe transition from the outside trims, even past a safe first point
    assert trim_bounds([50, 100, 50, 0, 0, 0, 0]) == (2, 6)
    assert visage_1d([50, 100, 50, 0, 0, 0, 0]) == pytest.approx((50 + 400) / 5)
    # N = 5 scans only i = 1 from the left
    assert trim_bounds([50, 100, 50, 0, 0]) == (0, 4)
    # the scans stop before the middle: a saturated half is not trimmed
    assert trim_bounds([100, 100, 100, 0, 0]) == (0, 4)
    assert visage_1d([100, 100, 100, 0, 0]) == pytest.approx(40.0)
    # 99.99 itself is not saturated; N = 7 scans i = 1, 2 from the left and 5, 4 from the right
    assert trim_bounds([0, 100, 100, 5, 0, 0, 0]) == (0, 6)  # i = 3 is past the left scan
    assert trim_bounds([0, 100, 99.99, 5, 0, 0, 0]) == (2, 6)
    assert trim_bounds([0, 0, 0, 5, 99.99, 100, 100]) == (0, 4)


def test_2d_trims_border_connected_saturation_only():
    ring = [[100, 100, 100], [100, 20, 100], [100, 100, 100]]
    assert visage_2d(ring) == pytest.approx(80.0)
    pocket = [[0] * 5 for _ in range(5)]
    pocket[2][2] = 100  # interior saturated pocket stays in the mean
    assert visage_2d(pocket) == pytest.approx(100 * 24 / 25)
    corner = [[100, 100, 0], [100, 0, 0], [0, 0, 0]]
    assert visage_2d(corner) == pytest.approx(100.0)
    assert visage_2d([[100] * 3] * 3) == 0.0
    assert untrimmed_margin(ring) == pytest.approx(80 / 9)


def test_ci_over_directions():
    from scipy import stats

    lo, hi = t_interval([40, 50, 60])
    half = stats.t.ppf(0.975, 2) * 10 / 3 ** 0.5
    assert (lo, hi) == pytest.approx((50 - half, 50 + half))
    lo, hi = t_interval([80, 90, 100])  # the raw interval reaches 114.8: VISAGE cannot exceed 100
    assert (lo, hi) == pytest.approx((90 - half, 100.0))
    assert t_interval([2, 8]) == pytest.approx([0.0, 5 + stats.t.ppf(0.975, 1) * 3])  # sd 4.24, /sqrt(2)
    assert t_interval([80]) is None
    s = summarize_visage([[10, 20, 30, 20, 10], [100, 100, 40, 20, 40]])
    assert s["per_direction"] == pytest.approx([82.0, visage_1d([100, 100, 40, 20, 40])])
    assert s["mean"] == pytest.approx(sum(s["per_direction"]) / 2)
    assert s["ci"][0] < s["mean"] < s["ci"][1]
    assert summarize_visage([[10, None, 30]])["mean"] is None
    two = summarize_visage([[[100, 100, 100], [100, 20, 100], [100, 100, 100]]], two_d=True)
    assert two["mean"] == pytest.approx(80.0) and two["definition"] == "2d_border_trimmed"
