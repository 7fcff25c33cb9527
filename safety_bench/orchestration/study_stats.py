"""Statistics of the VISAGE-vs-attack study: does a wider safety basin go with a lower attack success?

With one number per model (VISAGE, the ASR at the origin, the ASR after an attack) the question is a rank
association over a handful of models, so everything here is rank-based and small-sample honest:

- Spearman's rho between VISAGE and post-attack ASR, with a percentile bootstrap CI over models (pairs
  resampled with a seeded generator) and a two-sided permutation p-value (exact over all orderings when
  n! is at most the permutation budget, else Monte Carlo with the (1 + hits) / (1 + draws) estimate);
- the **partial Spearman** correlation of VISAGE and post-attack ASR given the origin's ASR: all three are
  turned into ranks (average ranks for ties), the ranks of VISAGE and of post-attack ASR are each regressed
  linearly on the ranks of origin ASR, and the Pearson correlation of the two residuals is reported (with a
  bootstrap CI and a permutation p-value that permutes the post-attack residuals). It answers "does VISAGE
  say more than the origin's ASR already says?";
- the sample size a real test needs (`spearman_sample_size`): Fisher's z with Bonett & Wright's variance
  (1 + rho²/2) / (n − 3) for Spearman's rho.

A statistic that cannot be computed (fewer than 3 models, a constant variable) is `None` with a `note`,
never a NaN pretending to be a number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

DEFAULT_BOOTSTRAP = 2000
DEFAULT_PERMUTATIONS = 5000


def _clean(*columns: Sequence[float | None]) -> np.ndarray:
    """Rows where every column has a finite number (a model whose attack failed drops out of the test)."""
    arr = np.array([[np.nan if v is None else float(v) for v in col] for col in columns], dtype=float)
    keep = np.all(np.isfinite(arr), axis=0)
    return arr[:, keep]


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    if den <= 1e-12 * max(1.0, float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0))):
        return None
    return float(np.clip((a @ b) / den, -1.0, 1.0))


def _rank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho (Pearson on average ranks); None when either variable is constant."""
    return _pearson(_rank(x), _rank(y))


def _residual(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """y minus its least-squares line on z (just centred when z is constant)."""
    design = np.column_stack([np.ones_like(z), z])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float | None:
    """Rank-based partial correlation of x and y given z: Pearson of the residuals of rank(x) and rank(y)
    after a linear fit on rank(z)."""
    rz = _rank(z)
    return _pearson(_residual(_rank(x), rz), _residual(_rank(y), rz))


def _permutations(n: int, budget: int, rng: np.random.Generator) -> tuple[Any, bool]:
    """Every ordering of n items when there are at most `budget` of them (exact), else `budget` random ones."""
    if math.factorial(n) <= budget:
        return (np.array(p) for p in itertools.permutations(range(n))), True
    return (rng.permutation(n) for _ in range(budget)), False


def permutation_p(x: np.ndarray, y: np.ndarray, statistic: Any, observed: float, n_perm: int,
                  rng: np.random.Generator) -> tuple[float, bool]:
    """Two-sided p-value of `statistic(x, y[perm])` reaching |observed|; (p, exact)."""
    perms, exact = _permutations(len(y), n_perm, rng)
    hits = total = 0
    tol = 1e-12
    for perm in perms:
        value = statistic(x, y[perm])
        total += 1
        if value is not None and abs(value) >= abs(observed) - tol:
            hits += 1
    if exact:
        return hits / total, True
    return (1 + hits) / (1 + total), False


def bootstrap_ci(columns: np.ndarray, statistic: Any, n_boot: int, rng: np.random.Generator,
                 level: float = 0.95) -> tuple[list[float] | None, int]:
    """Percentile CI of `statistic(*columns[:, idx])` over resampled models; resamples where it is undefined
    (e.g. all one model) are skipped and counted out. Returns (ci or None, resamples used)."""
    n = columns.shape[1]
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        value = statistic(*columns[:, idx])
        if value is not None:
            values.append(value)
    if len(values) < max(10, n_boot // 10):
        return None, len(values)
    lo, hi = np.percentile(values, [50 * (1 - level), 100 - 50 * (1 - level)])
    return [float(lo), float(hi)], len(values)


def association(visage: Sequence[float | None], post_asr: Sequence[float | None],
                origin_asr: Sequence[float | None] | None = None, *, n_boot: int = DEFAULT_BOOTSTRAP,
                n_perm: int = DEFAULT_PERMUTATIONS, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """The study's numbers for one attack: Spearman rho (CI, p) and, given origin ASRs, the partial rho."""
    cols = _clean(visage, post_asr, *([origin_asr] if origin_asr is not None else []))
    n = cols.shape[1]
    out: dict[str, Any] = {"n": n, "level": level, "bootstrap": n_boot, "permutations": n_perm, "seed": seed,
                           "method": "spearman (average ranks); bootstrap percentile CI over models; "
                                     "two-sided permutation p"}
    rng = np.random.default_rng(seed)
    rho = spearman(cols[0], cols[1]) if n >= 3 else None
    if rho is None:
        out.update(rho=None, ci=None, p=None, note="fewer than 3 models, or VISAGE or post-attack ASR constant")
    else:
        p, exact = permutation_p(cols[0], cols[1], spearman, rho, n_perm, rng)
        ci, used = bootstrap_ci(cols[:2], spearman, n_boot, rng, level)
        out.update(rho=rho, ci=ci, p=p, p_exact=exact, bootstrap_used=used)
    if origin_asr is not None:
        out["partial"] = partial_given(cols[0], cols[1], cols[2], n_boot=n_boot, n_perm=n_perm, rng=rng,
                                       level=level)
    return out


def partial_given(x: np.ndarray, y: np.ndarray, z: np.ndarray, *, n_boot: int, n_perm: int,
                  rng: np.random.Generator, level: float = 0.95) -> dict[str, Any]:
    """Partial Spearman of x, y given z with a bootstrap CI and a permutation p (residuals of y permuted)."""
    n = len(x)
    method = ("partial spearman: pearson of residuals of rank(visage) and rank(post-attack asr) after a "
              "linear fit on rank(origin asr)")
    rho = partial_spearman(x, y, z) if n >= 4 else None
    if rho is None:
        return {"rho": None, "ci": None, "p": None, "method": method,
                "note": "fewer than 4 models, or a variable constant once the origin ASR is accounted for"}
    rz = _rank(z)
    ex, ey = _residual(_rank(x), rz), _residual(_rank(y), rz)
    p, exact = permutation_p(ex, ey, _pearson, rho, n_perm, rng)
    ci, used = bootstrap_ci(np.vstack([x, y, z]), partial_spearman, n_boot, rng, level)
    return {"rho": rho, "ci": ci, "p": p, "p_exact": exact, "bootstrap_used": used, "method": method}


def spearman_sample_size(rho: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Models needed to detect a Spearman correlation `rho` (two-sided test at `alpha` with `power`):
    n = 3 + (1 + rho²/2) · ((z_{1−α/2} + z_{power}) / atanh(rho))² (Fisher z, Bonett & Wright 2000)."""
    if not 0 < abs(rho) < 1:
        raise ValueError(f"rho must be in (-1, 1) and not 0, got {rho}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(math.ceil(3 + (1 + rho * rho / 2) * (z / math.atanh(abs(rho))) ** 2))


def pearson_sample_size(rho: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The same for Pearson's r (no Bonett–Wright factor): the textbook n = 3 + ((z_a + z_b) / atanh r)²."""
    if not 0 < abs(rho) < 1:
        raise ValueError(f"rho must be in (-1, 1) and not 0, got {rho}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(math.ceil(3 + (z / math.atanh(abs(rho))) ** 2))


def scatter_plot(rows: Sequence[dict[str, Any]], attack: str, result: dict[str, Any], path: str | Path,
                 judge: str = "keyword") -> Path:
    """VISAGE (x) against post-attack ASR (y), one labelled dot per model, origin ASR as a hollow marker
    joined to it, and rho with CI and p in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for row in rows:
        v, post, origin = row.get("visage"), (row.get("attacks") or {}).get(attack), row.get("origin_asr")
        if v is None or post is None:
            continue
        if origin is not None:
            ax.plot([v, v], [origin, post], color="0.8", lw=1, zorder=1)
            ax.scatter([v], [origin], facecolors="none", edgecolors="tab:blue", zorder=2)
        ax.scatter([v], [post], color="tab:red", zorder=3)
        ax.annotate(str(row["name"]), (v, post), textcoords="offset points", xytext=(4, 4), fontsize=7)
    rho, ci, p = result.get("rho"), result.get("ci"), result.get("p")
    title = f"after attack {attack!r}: "
    if rho is None:
        title += "rho undefined"
    else:
        title += f"Spearman rho = {rho:+.2f}"
        title += f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""
        title += f", p = {p:.3g} (n = {result['n']})"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"VISAGE ({judge}, 1D, mean over directions)")
    ax.set_ylabel(f"ASR % ({judge}); hollow: at the origin, filled: after the attack")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
