"""The VISAGE-vs-attack statistics on synthetic inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from safety_bench.orchestration.study_stats import (
    association,
    partial_spearman,
    pearson_sample_size,
    scatter_plot,
    spearman,
    spearman_sample_size,
)


def test_perfect_monotone_association_is_rho_one_with_tiny_p() -> None:
    x = np.linspace(10, 90, 12)
    y = x ** 3 / 1000 + 2  # monotone, not linear: Spearman sees a perfect association
    res = association(x, y, n_boot=500, n_perm=2000, seed=1)
    assert res["rho"] == pytest.approx(1.0)
    assert res["ci"] == pytest.approx([1.0, 1.0])
    assert res["p"] <= 1 / 2001 + 1e-12  # no permutation reaches rho = 1 (12! orderings, 2000 drawn)


def test_inverse_association_is_rho_minus_one() -> None:
    x = np.arange(9.0)
    res = association(x, 100 - 5 * x, n_boot=500, n_perm=1000, seed=2)
    assert res["rho"] == pytest.approx(-1.0)
    assert res["ci"][1] == pytest.approx(-1.0)
    assert res["p"] < 0.01


def test_null_association_symmetric_pattern_has_rho_zero_and_p_one() -> None:
    x = np.arange(-3.0, 4.0)  # 7 models
    y = x ** 2  # symmetric: ranks of y are uncorrelated with ranks of x exactly
    res = association(x, y, n_boot=300, n_perm=6000, seed=3)
    assert res["rho"] == pytest.approx(0.0, abs=1e-12)
    assert res["p_exact"] is True  # 7! = 5040 <= 6000: every ordering enumerated
    assert res["p"] == pytest.approx(1.0)
    assert res["ci"][0] < 0 < res["ci"][1]


def test_null_association_independent_draws_gives_small_rho_large_p() -> None:
    rng = np.random.default_rng(123)
    x, y = rng.normal(size=300), rng.normal(size=300)
    res = association(x, y, n_boot=300, n_perm=999, seed=4)
    assert abs(res["rho"]) < 0.15
    assert res["p"] > 0.05
    assert res["ci"][0] < 0 < res["ci"][1]


def test_permutation_p_tracks_strength_of_a_noisy_association() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=40)
    strong = association(x, -x + 0.3 * rng.normal(size=40), n_boot=200, n_perm=999, seed=5)
    weak = association(x, -x + 3.0 * rng.normal(size=40), n_boot=200, n_perm=999, seed=5)
    assert strong["rho"] < -0.8 and strong["p"] < 0.01
    assert weak["rho"] > strong["rho"]
    assert weak["p"] > strong["p"]


def test_partial_correlation_removes_a_confounder() -> None:
    rng = np.random.default_rng(11)
    z = rng.normal(size=400)  # the origin's ASR, say
    x = z + 0.3 * rng.normal(size=400)  # VISAGE: only related to the outcome through z
    y = z + 0.3 * rng.normal(size=400)  # post-attack ASR
    res = association(x, y, z, n_boot=200, n_perm=499, seed=6)
    assert res["rho"] > 0.8  # the raw association is strong ...
    assert abs(res["partial"]["rho"]) < 0.12  # ... and vanishes given the confounder
    assert res["partial"]["p"] > 0.01
    assert res["partial"]["ci"][0] < 0 < res["partial"]["ci"][1]


def test_partial_correlation_keeps_a_direct_link() -> None:
    rng = np.random.default_rng(12)
    z, shared = rng.normal(size=300), rng.normal(size=300)
    x = z + shared + 0.2 * rng.normal(size=300)
    y = z - shared + 0.2 * rng.normal(size=300)  # beyond z, y goes against x
    assert partial_spearman(x, y, z) < -0.8
    res = association(x, y, z, n_boot=100, n_perm=199, seed=8)
    assert res["partial"]["p"] < 0.01


def test_undefined_statistics_are_none_with_a_note() -> None:
    res = association([1, 2, 3, 4], [5, 5, 5, 5], [1, 2, 3, 4], n_boot=50, n_perm=50)
    assert res["rho"] is None and res["p"] is None and "constant" in res["note"]
    short = association([1, None, 3], [2, 4, 1], n_boot=50, n_perm=50)
    assert short["n"] == 2 and short["rho"] is None  # a model with a missing value drops out
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0])) == pytest.approx(-0.5)


def test_results_repeat_with_the_seed() -> None:
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 15))
    assert association(x, y, z, n_boot=300, n_perm=300, seed=9) == association(x, y, z, n_boot=300, n_perm=300,
                                                                                seed=9)


def test_sample_size_matches_the_fisher_z_formula() -> None:
    assert pearson_sample_size(0.3) == 85  # the textbook value (alpha .05 two-sided, power .8)
    assert pearson_sample_size(0.5) == 30
    assert spearman_sample_size(0.5) > pearson_sample_size(0.5)  # rank correlation costs a little more
    assert spearman_sample_size(0.3) < spearman_sample_size(0.2)
    assert spearman_sample_size(-0.5) == spearman_sample_size(0.5)
    with pytest.raises(ValueError):
        spearman_sample_size(0.0)


def test_scatter_plot_writes_a_png(tmp_path) -> None:
    rows = [{"name": f"m{i}", "visage": 50 + i, "origin_asr": 10.0 * i, "attacks": {"benign": 20.0 + i}}
            for i in range(4)]
    res = association([r["visage"] for r in rows], [r["attacks"]["benign"] for r in rows], n_boot=50, n_perm=24)
    path = scatter_plot(rows, "benign", res, tmp_path / "plots" / "scatter.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
