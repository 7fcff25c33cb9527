"""Safety beside capability on one figure: the safety margin (100 − ASR) and the capability score (both
in percent) against the same coordinate, with both basins marked (landscape/capability.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safety_bench.landscape.capability import mean_curve


def _nan(curve: list[float | None]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in curve]


def _draw(ax: Any, landscape: Mapping[str, Any], judge: str, label: str, color: str, mark_basins: bool) -> None:
    xs = landscape["coords"][0]
    cap = landscape["capability"]
    margin = [None if a is None else 100.0 - a for a in mean_curve(landscape["asr"][judge])]
    ax.plot(xs, _nan(margin), "o-", color=color, lw=2, label=f"{label}safety margin (100 − ASR, {judge})")
    ax.plot(xs, _nan(mean_curve(cap["curves"])), "s--", color=color, lw=1.5, alpha=0.8,
            label=f"{label}capability ({cap['task']}: {cap['metric']})")
    b = (cap.get("basins") or {}).get(judge) or {}
    if mark_basins:
        for key, hatch, alpha in (("safety", None, 0.12), ("capability", "//", 0.0)):
            if b.get(key):
                lo, hi = b[key]["range"]
                ax.axvspan(lo, hi, color=color, alpha=alpha or 0.0, hatch=hatch, fill=alpha > 0,
                           label=f"{label}{key} basin {lo:g}..{hi:g} (width {b[key]['width']:g})")


def plot_capability(landscape: Mapping[str, Any], out: str | Path) -> list[Path]:
    """`capability_<judge>.png/.svg` for a 1D landscape with a `capability` section (else nothing)."""
    if not landscape.get("capability") or not landscape["kind"].startswith("1d"):
        return []
    return plot_capability_models({landscape.get("model", {}).get("name", "model"): landscape}, out)


def plot_capability_models(landscapes: Mapping[str, Mapping[str, Any]], out: str | Path,
                           stem: str = "capability") -> list[Path]:
    """One figure per judge holding every model's safety margin and capability (e.g. base vs aligned)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(out)
    first = next(iter(landscapes.values()))
    tol = first["capability"].get("tolerance")
    written: list[Path] = []
    for judge in first["asr"]:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        several = len(landscapes) > 1
        for k, (name, land) in enumerate(landscapes.items()):
            _draw(ax, land, judge, f"{name}: " if several else "", f"C{k}", mark_basins=True)
        interp = "interpolation" in first["kind"]
        ax.set_xlabel("t (aligned → fine-tuned)" if interp else "α (perturbation, per-tensor normalised)")
        ax.set_ylabel("percent")
        ax.set_ylim(-3, 103)
        ax.set_title(f"Safety vs capability: {', '.join(landscapes)} (basins: within {tol:g} pts of the origin; "
                     f"{first['note']})", fontsize=8)
        ax.grid(alpha=0.3)
        # below the axes: inside, the 8-line legend of two models hid the curves' peaks
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
        for ext in ("png", "svg"):
            path = out / f"{stem}_{judge}.{ext}"
            fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
            written.append(path)
        plt.close(fig)
    return written
