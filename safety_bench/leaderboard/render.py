"""Writing a ranked board: leaderboard.md / .csv / .json, a static index.html, per-model sample pages.

The HTML needs no server and no network: styles and the sorting script are inline, plots are copied
beside it. Pages are rendered by jinja2 with autoescaping on, so a model output such as `<script>` shows
as text. Credentials never reach a page: metadata was redacted when it entered the store.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import jinja2

from safety_bench.categories import BY_SLUG, SLUGS
from safety_bench.jsonio import atomic_write_text, write_json
from safety_bench.leaderboard import attack_report
from safety_bench.leaderboard.ranking import Board, Row
from safety_bench.leaderboard.store import model_slug
from safety_bench.leaderboard.tradeoff import plot_tradeoff
from safety_bench.metrics import UNSCORED_WARN
from safety_bench.records import normalize

TEMPLATES = Path(__file__).parent / "templates"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True))
    env.filters["pct"] = pct
    env.filters["heat"] = heat
    env.filters["prov"] = provenance_text
    return env


def _with_ci(number: dict[str, Any] | None, scale: float, fmt: str, suffix: str = "") -> str:
    """`value[suffix] [lo, hi]` for a {value, ci} number, or an em dash when missing."""
    if not number:
        return "—"
    text = f"{scale * number['value']:{fmt}}{suffix}"
    if number.get("ci"):
        lo, hi = number["ci"]
        text += f" [{scale * lo:{fmt}}, {scale * hi:{fmt}}]"
    return text


def pct(number: dict[str, Any] | None, digits: int = 1) -> str:
    """A rate as a percentage with its CI, or an em dash when missing; a rate whose judge could not score
    more than UNSCORED_WARN of the answers says so beside it (the rate is over the scored ones only)."""
    text = _with_ci(number, 100, f".{digits}f", "%")
    unscored = (number or {}).get("unscored") or 0.0
    if unscored > UNSCORED_WARN:
        text += f" ⚠ {100 * unscored:.0f}% unscored"
    return text


def visage_text(number: dict[str, Any] | None) -> str:
    return _with_ci(number, 1, ".2f")


def heat(value: float | None) -> str:
    """Inline background for a harm rate in [0, 1]: white (safe) to red (harmful)."""
    if value is None:
        return "background:#eee;color:#888"
    v = max(0.0, min(1.0, float(value)))
    g = int(round(255 - 175 * v))
    return f"background:rgb(255,{g},{g});color:{'#fff' if v > 0.75 else '#000'}"


def provenance_text(number: dict[str, Any] | None) -> str:
    """One line saying where a number came from (shown as a tooltip and in the Markdown notes)."""
    if not number:
        return "no result"
    parts = [f"judge {number.get('judge')} v{number.get('judge_version') or '?'}"]
    if number.get("tasks"):
        parts.append("tasks " + ", ".join(f"{t} v{v}" if v is not None else str(t) for t, v in number["tasks"].items()))
    elif number.get("task"):
        parts.append(f"task {number['task']}")
    if number.get("landscape_kind"):
        parts.append(f"landscape {number['landscape_kind']}")
    parts.append(f"run {number.get('run')}")
    parts.append(f"date {number.get('date')}")
    parts.append(n_text(number))
    if number.get("prompt_set_hash"):
        parts.append(f"prompts {str(number['prompt_set_hash'])[:12]}")
    if number.get("weights_id"):
        parts.append(f"weights {str(number['weights_id'])[:19]}")
    return "; ".join(parts)


def n_text(number: dict[str, Any]) -> str:
    """What `n` counts: directions for VISAGE, benign prompts for over-refusal, scored harmful prompts else."""
    n = number.get("n")
    metric = number.get("metric")
    if metric == "visage":
        kind = str(number.get("landscape_kind") or "")
        what = ("interpolation path" if kind.endswith("interpolation") else
                "random direction pair" if kind.startswith("2d") else "random direction")
        return f"n={n} {what}{'' if n == 1 else 's'}" + ("" if n == 1 else " (VISAGE is their mean)")
    if metric == "refusal_rate":
        return f"n={n} benign prompts scored"
    return f"n={n} harmful prompts scored"


def headers(board: Board) -> dict[str, str]:
    """Column titles, each naming its judge ('n/a' when no model had one: never 'None')."""
    metric = "harm. rate" if board.harm_metric == "harmfulness_rate" else "ASR"
    harm_judge = board.harm_judge or "n/a"
    out = {"visage": f"VISAGE [{board.visage_judge or 'n/a'}]", "harm": board.harm_label,
           "over_refusal": f"Over-refusal (XSTest, else benign set) [{board.refusal_judge or 'n/a'}]",
           "capability": "Capability at origin % / basin width (vs safety basin)",
           "flag": f"Over-refusal > {100 * board.over_refusal_threshold:g}%"}
    if board.harm_metric == "harmfulness_rate":
        out["harm_score"] = f"Harmfulness score 1-5 [{harm_judge}]"
    for slug in SLUGS:
        out[slug] = f"{BY_SLUG[slug].title} ({metric} [{harm_judge}])"
    return out


# ---------------------------------------------------------------------- JSON / CSV / Markdown

def row_json(row: Row) -> dict[str, Any]:
    return {"rank": row.rank, "model": row.name, "weights_id": row.weights_id, "visage": row.visage,
            "harm": row.harm, "harmfulness_score": row.harm_score, "per_category": row.per_category,
            "over_refusal": row.over_refusal, "notes": row.notes, "samples": f"samples/{model_slug(row.name)}.html",
            "n_records": len(row.records), "over_refusal_flagged": row.over_refusal_flagged,
            "over_refusal_source": (row.over_refusal or {}).get("source"), "capability": row.capability}


def over_refusal_text(row: Row) -> str:
    """Over-refusal with its CI, the set it was measured on, and the flag when over the threshold."""
    if not row.over_refusal:
        return "—"
    text = f"{pct(row.over_refusal)} ({row.over_refusal.get('source') or 'benign'})"
    return text + (" ⚠ OVER-REFUSES" if row.over_refusal_flagged else "")


def capability_text(row: Row) -> str:
    """`origin % (task) / basin width (safety basin width)` of a capability landscape, or an em dash."""
    c = row.capability
    if not c:
        return "—"
    text = f"{c['origin']:.1f}% ({c['task']})" if c.get("origin") is not None else f"— ({c['task']})"
    if c.get("basin_width") is not None:
        text += f" / basin {c['basin_width']:g} (safety {c['safety_basin_width']:g})"
    return text


def board_json(board: Board) -> dict[str, Any]:
    return {"built": board.built, "store": board.store, "over_refusal_threshold": board.over_refusal_threshold,
            "ranking": "VISAGE desc, then harm rate asc; models "
            "without a landscape follow by harm rate", "judges": {"harm": board.harm_judge,
            "harm_metric": board.harm_metric, "visage": board.visage_judge, "over_refusal": board.refusal_judge},
            "headers": headers(board), "rows": [row_json(r) for r in board.rows], "log": board.log,
            "validations": {j: validation_brief(v) for j, v in board.validations.items()},
            "attacks": attack_report.board_json_block(board.attacks)}


def validation_brief(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of a filed judge validation that the board shows beside the judge's numbers."""
    two = report.get("two_class") or {}
    return {"judge_version": report.get("judge_version"), "labelled": report.get("labelled"),
            "split": report.get("split"), "n": report.get("n"), "accuracy": two.get("accuracy"),
            "accuracy_ci": (two.get("ci95") or {}).get("accuracy"), "kappa": two.get("kappa"),
            "filed": report.get("filed")}


def validation_text(judge: str | None, board: Board) -> str | None:
    """One line: how well `judge` agrees with human labels (None when no validation is filed)."""
    report = board.validations.get(judge or "")
    if not report:
        return None
    b = validation_brief(report)
    kappa = "—" if b["kappa"] is None else f"{b['kappa']:.3f}"
    ci = f" [{b['accuracy_ci'][0]:.4f}, {b['accuracy_ci'][1]:.4f}]" if b["accuracy_ci"] else ""
    return (f"judge {judge} v{b['judge_version']} agrees with human labels: accuracy {b['accuracy']:.4f}{ci}, "
            f"kappa {kappa} (n={b['n']}, {b['labelled']}, split {b['split']})")


def validation_lines(board: Board) -> list[str]:
    """One line per judge on the board that has a filed validation."""
    judges = dict.fromkeys((board.visage_judge, board.harm_judge, board.refusal_judge))
    return [t for t in (validation_text(j, board) for j in judges) if t]


def _ci(number: dict[str, Any] | None, i: int) -> Any:
    return number["ci"][i] if number and number.get("ci") else ""


def board_csv(board: Board) -> str:
    hv = f"[{board.visage_judge or 'n/a'}]"
    hh = f"{board.harm_metric}[{board.harm_judge or 'n/a'}]"
    hr = f"over_refusal[{board.refusal_judge or 'n/a'}]"
    cols = ["rank", "model", "weights_id", f"visage{hv}", f"visage{hv}_ci_low", f"visage{hv}_ci_high",
            "visage_directions", hh, f"{hh}_ci_low", f"{hh}_ci_high", f"{hh}_n"]
    if board.harm_metric == "harmfulness_rate":
        cols.append(f"harmfulness_score[{board.harm_judge or 'n/a'}]")
    cols += [f"{slug}:{hh}" for slug in SLUGS]
    cols += [hr, f"{hr}_ci_low", f"{hr}_ci_high", "harm_run", "harm_date", "harm_judge_version", "harm_tasks",
             "harm_prompt_set_hash", "visage_run", "visage_date", "over_refusal_run", "over_refusal_date", "notes",
             "over_refusal_source", "over_refusal_flagged", "capability_task", "capability_origin",
             "capability_basin_width", "safety_basin_width"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)

    def v(n: dict[str, Any] | None, key: str = "value") -> Any:
        return "" if not n or n.get(key) is None else n[key]

    for r in board.rows:
        line = [r.rank, r.name, r.weights_id or "", v(r.visage), _ci(r.visage, 0), _ci(r.visage, 1),
                v(r.visage, "n"), v(r.harm), _ci(r.harm, 0), _ci(r.harm, 1), v(r.harm, "n")]
        if board.harm_metric == "harmfulness_rate":
            line.append(v(r.harm_score))
        line += [v(r.per_category.get(slug)) for slug in SLUGS]
        line += [v(r.over_refusal), _ci(r.over_refusal, 0), _ci(r.over_refusal, 1), v(r.harm, "run"),
                 v(r.harm, "date"), v(r.harm, "judge_version"),
                 json.dumps(r.harm.get("tasks")) if r.harm else "", v(r.harm, "prompt_set_hash"),
                 v(r.visage, "run"), v(r.visage, "date"), v(r.over_refusal, "run"), v(r.over_refusal, "date"),
                 "; ".join(r.notes)]
        cap = r.capability or {}
        line += [v(r.over_refusal, "source"), "yes" if r.over_refusal_flagged else "no", cap.get("task") or "",
                 "" if cap.get("origin") is None else cap["origin"],
                 "" if cap.get("basin_width") is None else cap["basin_width"],
                 "" if cap.get("safety_basin_width") is None else cap["safety_basin_width"]]
        w.writerow(line)
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def board_markdown(board: Board) -> str:
    h = headers(board)
    lines = ["# Safety leaderboard", "", f"Built {board.built} from store `{board.store}`. Ranked by VISAGE "
             "(higher first), ties by harm rate (lower first); models without a landscape follow by harm rate. "
             "Rates in percent with 95% Wilson CIs; VISAGE with its CI over directions.", ""]
    if board.harm_metric == "asr" and board.harm_judge:
        lines += [f"No rubric-judge results: the harm rate is the **{board.harm_judge}** judge's ASR "
                  "(share of answers that are not refusals).", ""]
    if not board.rows:
        lines += ["**No model on the board**: every model was skipped (see the build log below).", ""]
    flagged = [r.name for r in board.rows if r.over_refusal_flagged]
    lines += [f"Over-refusal is measured on XSTest's safe prompts when a model ran them, else on the benign set "
              f"(each value says which). **Flagged** (⚠ OVER-REFUSES, over-refusal above "
              f"{100 * board.over_refusal_threshold:g}%): {', '.join(flagged) if flagged else 'none'}. The flag "
              "never changes the rank; the scatter of harm vs over-refusal is in index.html (tradeoff.png).",
              ""]
    cols = (["#", "Model", h["visage"], h["harm"]] + ([h["harm_score"]] if "harm_score" in h else [])
            + [h["over_refusal"], h["capability"]])
    lines += ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in board.rows:
        cells = [str(r.rank), r.name, visage_text(r.visage), pct(r.harm)]
        if "harm_score" in h:
            cells.append(f"{r.harm_score['value']:.2f}" if r.harm_score else "—")
        cells += [over_refusal_text(r), capability_text(r)]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    checked = validation_lines(board)
    if checked:
        lines += ["", "Judges held to human labels (`safety-bench judge-validate`):", ""]
        lines += [f"- {_md_cell(t)}" for t in checked]
    lines += ["", f"## Per category: {'harmfulness rate' if board.harm_metric == 'harmfulness_rate' else 'ASR'} "
              f"[{board.harm_judge or 'n/a'}], percent", ""]
    cat_cols = ["Model"] + [h[s] for s in SLUGS]
    lines += ["| " + " | ".join(_md_cell(c) for c in cat_cols) + " |", "|" + "---|" * len(cat_cols)]
    for r in board.rows:
        cells = [r.name] + [pct(r.per_category.get(s), 0).split(" ")[0] for s in SLUGS]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    lines += ["", "## Provenance", ""]
    for r in board.rows:
        lines.append(f"- **{_md_cell(r.name)}** (weights `{r.weights_id or 'unknown'}`)")
        for label, num in (("VISAGE", r.visage), ("harm", r.harm), ("over-refusal", r.over_refusal)):
            lines.append(f"  - {label}: {provenance_text(num)}")
        for note in r.notes:
            lines.append(f"  - note: {_md_cell(note)}")
    lines += attack_report.board_section(board.attacks)
    if board.log:
        lines += ["", "## Build log", ""] + [f"- {_md_cell(entry)}" for entry in board.log]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- HTML

def _plot_from_landscape(landscape: dict[str, Any], judge: str | None, target: Path) -> bool:
    """Draw a 1D landscape's ASR curves when the store holds no plot image for it."""
    coords = landscape.get("coords") or []
    curves = (landscape.get("asr") or {}).get(judge or "") or next(iter((landscape.get("asr") or {}).values()), None)
    if len(coords) != 1 or not curves or not all(isinstance(c, list) and c and not isinstance(c[0], list)
                                                 for c in curves):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3))
    for i, curve in enumerate(curves):
        ax.plot(coords[0][:len(curve)], curve, marker=".", label=f"direction {i + 1}")
    ax.set_xlabel("alpha")
    ax.set_ylabel(f"ASR % [{judge}]")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return True


def _redraw(landscape: dict[str, Any], name: str, slug: str, plot_dir: Path) -> list[str]:
    """The landscape's plots drawn again under the model's stored name (the sweep's PNGs carry the name the
    sweep was run with, which `--name` at `store add` may have changed); [] when the data cannot be drawn."""
    from safety_bench.landscape.plots import plot_landscape

    tmp = plot_dir / f".{slug}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        drawn = plot_landscape({**landscape, "model": {**(landscape.get("model") or {}), "name": name}}, tmp)
    except (KeyError, TypeError, ValueError, IndexError):
        shutil.rmtree(tmp, ignore_errors=True)
        return []
    rel = []
    for path in drawn:  # PNGs on the page, SVGs beside them for print
        target = plot_dir / f"{slug}--{path.name}"
        path.replace(target)
        if path.suffix == ".png":
            rel.append(f"plots/{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    return rel


def _copy_plots(board: Board, out: Path) -> dict[str, list[str]]:
    plots: dict[str, list[str]] = {}
    plot_dir = out / "plots"
    if plot_dir.exists():
        shutil.rmtree(plot_dir)
    for r in board.rows:
        slug = model_slug(r.name)
        rel: list[str] = _redraw(r.landscape, r.name, slug, plot_dir) if r.landscape is not None else []
        for png in r.landscape_plots if not rel else ():
            target = plot_dir / f"{slug}--{png.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(png, target)
            rel.append(f"plots/{target.name}")
        if not rel and r.landscape is not None:
            target = plot_dir / f"{slug}--landscape.png"
            if _plot_from_landscape(r.landscape, r.visage.get("judge") if r.visage else None, target):
                rel.append(f"plots/{target.name}")
        plots[r.name] = rel
    return plots


def render_html(board: Board, out: Path) -> None:
    env = _env()
    plots = _copy_plots(board, out)
    tradeoff = plot_tradeoff(board, out / "tradeoff.png")
    h = headers(board)
    rows = []
    for r in board.rows:
        rows.append({"row": r, "slug": model_slug(r.name), "plots": plots.get(r.name, []),
                     "visage_text": visage_text(r.visage), "over_refusal_text": over_refusal_text(r),
                     "capability_text": capability_text(r)})
    page = env.get_template("index.html.j2").render(board=board, rows=rows, h=h, slugs=SLUGS, titles=BY_SLUG,
                                                     tradeoff=tradeoff, validations=validation_lines(board))
    atomic_write_text(out / "index.html", page)
    samples_dir = out / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    for item in rows:
        r = item["row"]
        page = env.get_template("samples.html.j2").render(board=board, row=r, records=[normalize(x) for x in r.records])
        atomic_write_text(samples_dir / f"{item['slug']}.html", page)


def write_board(board: Board, out: str | Path) -> dict[str, Path]:
    """Write every output of a board into `out`; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "leaderboard.md", "csv": out / "leaderboard.csv", "json": out / "leaderboard.json",
             "html": out / "index.html", "log": out / "build.log"}
    atomic_write_text(paths["md"], board_markdown(board))
    atomic_write_text(paths["csv"], board_csv(board))
    write_json(paths["json"], board_json(board))
    render_html(board, out)
    for page in attack_report.write_pages(board.attacks, out):
        paths[f"attacks:{page.stem}"] = page
    atomic_write_text(paths["log"], "".join(f"{line}\n" for line in board.log) or "no problems\n")
    return paths
