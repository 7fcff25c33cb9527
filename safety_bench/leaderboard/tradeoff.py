"""The board's safety-vs-helpfulness picture: harm rate against over-refusal, one dot per model, with the
Pareto front (models no other model beats on both). A model that refuses everything sits at the far right
of this plot however safe its harm rate looks, which the ranked table alone would hide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safety_bench.leaderboard.ranking import Board, pareto_front


def tradeoff_points(board: Board) -> dict[str, tuple[float, float]]:
    """(harm rate, over-refusal) per model that has both, as fractions."""
    return {r.name: (r.harm["value"], r.over_refusal["value"]) for r in board.rows if r.harm and r.over_refusal}


def plot_tradeoff(board: Board, target: Path) -> dict[str, Any]:
    """Write the scatter PNG to `target`; returns {points, pareto_front} (the plot is written even when no
    model has both numbers, saying so)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    points = tradeoff_points(board)
    front = pareto_front(points)
    flagged = {r.name for r in board.rows if r.over_refusal_flagged}
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, (x, y) in points.items():
        colour = "C3" if name in flagged else ("C2" if name in front else "C0")
        ax.scatter([100 * x], [100 * y], s=40, color=colour, zorder=3)
        ax.annotate(name, (100 * x, 100 * y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    if len(front) > 1:
        ax.plot([100 * points[n][0] for n in front], [100 * points[n][1] for n in front], "-", color="C2",
                lw=1.2, label="Pareto front (lower harm and lower over-refusal)")
    elif front:
        ax.scatter([], [], color="C2", label="Pareto front (lower harm and lower over-refusal)")
    ax.axhline(100 * board.over_refusal_threshold, color="C3", ls="--", lw=1,
               label=f"over-refusal flag above {100 * board.over_refusal_threshold:g}%")
    if not points:
        ax.text(50, 50, "no model has both a harm rate and an over-refusal rate", ha="center", fontsize=8)
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.set_xlabel(f"{board.harm_label}, %")
    ax.set_ylabel(f"over-refusal [{board.refusal_judge}], %")
    ax.set_title("Harm vs over-refusal (lower-left is better)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    plt.close(fig)
    return {"points": {n: list(p) for n, p in points.items()}, "pareto_front": front}
