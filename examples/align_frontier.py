"""The recipe frontier of `safety-bench align` on SmolLM2: over-refusal vs held-out harmful ASR per setting.

Each point is one recipe setting, measured with `safety-bench refusal-check --output FILE` (keyword judge
and refusal heuristic; 88 held-out harmful sample prompts, 96 borderline-safe validation prompts, 40
benign prompts). The measured numbers live in `align_frontier.json` (written by `--add`), so the figure
can be redrawn without the runs:

    python examples/align_frontier.py --add LABEL CHECK.json "settings in words"   # record one point
    python examples/align_frontier.py                                              # redraw the PNG
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "align_frontier.json"
FIGURE = HERE / "align_frontier.png"
ASR_TARGET, OVER_REFUSAL_TARGET = 0.10, 0.15


def point_from_check(label: str, check_file: Path, settings: str) -> dict:
    """One frontier point: the refusal-check summary numbers (no answers) of one recipe setting."""
    result = json.loads(check_file.read_text(encoding="utf-8"))
    edge = result["borderline"]
    return {"label": label, "settings": settings, "system": result["system"],
            "asr_keyword": result["harmful"]["asr_keyword"], "asr_heuristic": result["harmful"]["asr_heuristic"],
            "borderline_refused_keyword": edge["refusal_rate_keyword"],
            "borderline_refused_heuristic": edge["refusal_rate_heuristic"],
            "benign_refused_keyword": result["benign"]["refusal_rate_keyword"],
            "by_kind_heuristic": {k: v["refusal_rate_heuristic"] for k, v in edge["by_kind"].items()},
            "by_kind_keyword": {k: v["refusal_rate_keyword"] for k, v in edge["by_kind"].items()}}


def plot(points: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, judge in zip(axes, ("keyword", "heuristic"), strict=True):
        ax.fill_between([0, OVER_REFUSAL_TARGET * 100], 0, ASR_TARGET * 100, color="#d8f0d8", zorder=0,
                        label="both targets met")
        ax.axhline(ASR_TARGET * 100, color="grey", ls="--", lw=1)
        ax.axvline(OVER_REFUSAL_TARGET * 100, color="grey", ls="--", lw=1)
        for p in points:
            x, y = 100 * p[f"borderline_refused_{judge}"], 100 * p[f"asr_{judge}"]
            marker = "s" if p["label"].startswith(("base", "v1")) else "o"
            ax.scatter([x], [y], marker=marker, s=50, zorder=3)
            below = p["label"].startswith("v1")  # v1 and its nearest neighbour would overlap
            ax.annotate(p["label"], (x, y), textcoords="offset points", xytext=(5, -11 if below else 4), fontsize=8)
        ax.set_xlabel(f"borderline-safe over-refusal % ({judge} judge, 96 validation prompts)")
        ax.set_title(f"{judge} judge")
        ax.set_xlim(-2, 102)
        ax.set_ylim(-2, 102)
    axes[0].set_ylabel("held-out harmful ASR % (88 sample prompts)")
    fig.suptitle("safety-bench align on SmolLM2-135M-Instruct: recipe settings (dashed: targets)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--add", nargs=3, metavar=("LABEL", "CHECK_JSON", "SETTINGS"),
                    help="record (or replace) one point from a refusal-check --output file")
    args = ap.parse_args()
    points = json.loads(DATA.read_text(encoding="utf-8")) if DATA.is_file() else []
    if args.add:
        label, check, settings = args.add
        points = [p for p in points if p["label"] != label] + [point_from_check(label, Path(check), settings)]
        DATA.write_text(json.dumps(points, indent=2) + "\n", encoding="utf-8")
    plot(points, FIGURE)
    print(f"{len(points)} points -> {FIGURE}")


if __name__ == "__main__":
    main()
