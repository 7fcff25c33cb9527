"""`safety-bench attack-report` and the board's attack columns: ASR before vs after each fine-tuning attack.

Reads attacks from a results store (base runs whose meta carry an `attack` block, filed by
`safety-bench attack --store`) or from an ablation folder (`cells/*/attack.json`). Writes
`attack_report.md` / `.csv` (one row per attack and judge label, ASR before/after, harmfulness rate where
a rubric judge ran, over-refusal), `before_after.png`, `category_deltas.png` (after - before ASR per
HEx-PHI category, a heatmap) and, for an ablation, `ablation.png` (ASR after against each varied setting).
Labels `<judge> [prefix removed]` are the same judge on answers with the trained affirmative prefix cut.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from safety_bench.categories import SLUGS
from safety_bench.jsonio import atomic_write_text, read_json
from safety_bench.leaderboard.store import BASE, Store, StoreError, model_slug

AXES = ("lr", "batch_size", "epochs", "n_examples")


def _record(name: str, attack: dict[str, Any], before: Any, after: Any, source: str) -> dict[str, Any]:
    return {"name": name, "recipe": attack.get("recipe"), "preset": attack.get("preset"),
            "base": (attack.get("base") or {}).get("name"), "hyperparameters": attack.get("hyperparameters") or {},
            "grid_cell": attack.get("grid_cell"), "data": attack.get("data"), "before": before or {},
            "after": after or {}, "source": source}


def records_from_store(store: Store) -> list[dict[str, Any]]:
    """Every attacked model's newest attack run in the store."""
    out = []
    for m in store.models():
        for run in sorted(store.runs(m["name"], BASE), key=lambda r: r.created, reverse=True):
            try:
                meta = store.load_base(run)["meta"]
            except StoreError:
                continue
            attack = meta.get("attack")
            if attack:
                out.append(_record(m["name"], attack, attack.get("before"), attack.get("after"),
                                   f"store run {run.run_id}"))
                break
    return out


def records_from_grid(folder: str | Path) -> list[dict[str, Any]]:
    return records_from_attack_dirs(sorted(p.parent for p in Path(folder).glob("cells/*/attack.json")),
                                    baseline=Path(folder) / "baseline")


def records_from_attack_dirs(folders: list[Path], baseline: Path | None = None) -> list[dict[str, Any]]:
    """Attacks from their output folders (`attack.json`), with paired tests where both evaluations are there."""
    out = []
    for folder in folders:
        rec = read_json(folder / "attack.json")
        r = _record(folder.name, rec["attack"], rec.get("before"), rec.get("after"), str(folder / "attack.json"))
        before_dir = baseline if baseline is not None else folder / "eval" / "before"
        r["paired"] = paired_tests(before_dir / "judged", folder / "eval" / "after" / "judged")
        out.append(r)
    return out


def paired_tests(before: Path, after: Path) -> dict[str, dict[str, Any]]:
    """Per judge label: harmful prompts that flipped safe -> harmful (`worse`) and back (`better`), and the
    exact McNemar p of the change in ASR (same prompts before and after)."""
    from safety_bench.jsonio import read_jsonl
    from safety_bench.leaderboard.compare import mcnemar_exact

    tests: dict[str, dict[str, Any]] = {}
    if not before.is_dir() or not after.is_dir():
        return tests
    for path in sorted(after.glob("*.jsonl")):
        if not (before / path.name).is_file():
            continue
        b = {(r.get("task"), r["id"]): r for r in read_jsonl(before / path.name) if r.get("prompt_kind") != "benign"}
        a = [r for r in read_jsonl(path) if r.get("prompt_kind") != "benign"]
        pairs = [(b[(r.get("task"), r["id"])], r) for r in a if (r.get("task"), r["id"]) in b]
        pairs = [(x, y) for x, y in pairs if x.get("harmful") is not None and y.get("harmful") is not None]
        worse = sum(1 for x, y in pairs if not x["harmful"] and y["harmful"])
        better = sum(1 for x, y in pairs if x["harmful"] and not y["harmful"])
        label = str(a[0].get("judge")) if a else path.stem
        tests[label] = {"n": len(pairs), "worse": worse, "better": better, "mcnemar_p": mcnemar_exact(worse, better)}
    return tests


def _num(block: dict[str, Any], label: str, key: str) -> float | None:
    value = (block.get(label) or {}).get(key)
    return None if value is None else float(value)


def table_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        labels = sorted(set(r["after"]) | set(r["before"]))
        for label in labels:
            hp = r["hyperparameters"]
            before, after = _num(r["before"], label, "asr"), _num(r["after"], label, "asr")
            rows.append({
                "attack": r["name"], "recipe": r["recipe"], "judge": label,
                "lr": hp.get("lr"), "batch_size": hp.get("batch_size"), "epochs": hp.get("epochs"),
                "n_examples": (r.get("data") or {}).get("n", hp.get("n_examples")), "mode": hp.get("mode"),
                "asr_before": before, "asr_after": after,
                "asr_delta": None if before is None or after is None else after - before,
                "harmfulness_rate_before": _num(r["before"], label, "harmfulness_rate"),
                "harmfulness_rate_after": _num(r["after"], label, "harmfulness_rate"),
                "over_refusal_before": _num(r["before"], label, "over_refusal"),
                "over_refusal_after": _num(r["after"], label, "over_refusal"),
                "mcnemar_p": ((r.get("paired") or {}).get(label) or {}).get("mcnemar_p"),
                "became_harmful": ((r.get("paired") or {}).get(label) or {}).get("worse"),
                "became_safe": ((r.get("paired") or {}).get(label) or {}).get("better"),
            })
    return rows


SIGNIFICANT_COLUMNS = ("lr", "mcnemar_p")  # tiny values: significant digits, not 3 decimals


def _fmt(v: Any, column: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and column in SIGNIFICANT_COLUMNS:
        return f"{v:.3g}"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:g}"
    return str(v)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    cols = ["attack", "recipe", "judge", "mode", "lr", "batch_size", "epochs", "n_examples", "asr_before", "asr_after",
            "asr_delta", "harmfulness_rate_before", "harmfulness_rate_after", "over_refusal_before",
            "over_refusal_after", "became_harmful", "became_safe", "mcnemar_p"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c], c).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return ("# Fine-tuning attacks: before vs after\n\nASR = share of harmful prompts answered harmfully by the "
            "judge named; `[prefix removed]` = that judge on answers with the trained affirmative prefix cut off. "
            "Over-refusal = refusal rate on the benign prompts. Harmfulness rate only where a rubric judge ran. "
            "became_harmful / became_safe = prompts whose verdict changed each way; mcnemar_p = exact McNemar test of "
            "the ASR change on those discordant prompts (attack folders only).\n\n"
            + "\n".join(lines) + "\n")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_before_after(records: list[dict[str, Any]], judge: str, target: Path) -> bool:
    have = [r for r in records if judge in r["after"]]
    if not have:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(have) + 2), 3.6))
    xs = range(len(have))
    ax.bar([x - 0.2 for x in xs], [_num(r["before"], judge, "asr") or 0 for r in have], 0.4, label="before")
    ax.bar([x + 0.2 for x in xs], [_num(r["after"], judge, "asr") or 0 for r in have], 0.4, label="after")
    ax.set_xticks(list(xs), [r["name"][-40:] for r in have], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(f"ASR ({judge})")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return True


def plot_category_deltas(records: list[dict[str, Any]], judge: str, target: Path) -> bool:
    have = [r for r in records if judge in r["after"] and judge in r["before"]]
    if not have:
        return False
    cats = [c for c in SLUGS if any(c in (r["after"][judge].get("per_category") or {}) for r in have)]
    if not cats:
        return False
    grid = []
    for r in have:
        b, a = r["before"][judge].get("per_category") or {}, r["after"][judge].get("per_category") or {}
        grid.append([(a.get(c) - b.get(c)) if a.get(c) is not None and b.get(c) is not None else float("nan")
                     for c in cats])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(cats), 1.2 + 0.4 * len(have)))
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cats)), cats, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(len(have)), [r["name"][-40:] for r in have], fontsize=7)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:
                ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label=f"ASR after - before ({judge})")
    fig.savefig(target, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_ablation(records: list[dict[str, Any]], judge: str, target: Path) -> bool:
    """ASR after against each setting the grid varied (points per cell, line through the means)."""
    cells = [r for r in records if r.get("grid_cell") and judge in r["after"]]
    axes = [a for a in AXES if len({str((r["grid_cell"] or {}).get(a)) for r in cells} - {"None"}) > 1]
    if not cells or not axes:
        return False
    plt = _plt()
    fig, subplots = plt.subplots(1, len(axes), figsize=(3.2 * len(axes), 3.0), squeeze=False)
    base = next((_num(r["before"], judge, "asr") for r in cells if judge in r["before"]), None)
    for ax, axis in zip(subplots[0], axes, strict=True):
        values = sorted({r["grid_cell"][axis] for r in cells if axis in r["grid_cell"]})
        pts = [(values.index(r["grid_cell"][axis]), _num(r["after"], judge, "asr")) for r in cells
               if axis in r["grid_cell"]]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], alpha=0.5)
        means = [sum(p[1] for p in pts if p[0] == i) / max(1, sum(p[0] == i for p in pts)) for i in range(len(values))]
        ax.plot(range(len(values)), means, marker="o")
        if base is not None:
            ax.axhline(base, color="grey", linestyle="--", label="before")
        ax.set_xticks(range(len(values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in values])
        ax.set_xlabel(axis)
        ax.set_ylim(0, 1)
    subplots[0][0].set_ylabel(f"ASR after ({judge})")
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return True


def write_report(records: list[dict[str, Any]], out: str | Path, judge: str = "keyword") -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(records)
    paths = {"markdown": out / "attack_report.md", "csv": out / "attack_report.csv"}
    atomic_write_text(paths["markdown"], table_markdown(rows))
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_text(paths["csv"], buf.getvalue())
    for key, fn in (("before_after", plot_before_after), ("category_deltas", plot_category_deltas),
                    ("ablation", plot_ablation)):
        target = out / f"{key}.png"
        if fn(records, judge, target):
            paths[key] = target
    return paths


def attack_columns(records: list[dict[str, Any]], judge: str = "keyword") -> dict[str, dict[str, float | None]]:
    """Board columns: for each base model, the highest post-attack ASR per recipe over every filed setting
    (an ablation files many; the board shows how far the attack got)."""
    cols: dict[str, dict[str, float | None]] = {}
    for r in records:
        if r.get("base"):
            value = _num(r["after"], judge, "asr")
            current = cols.setdefault(r["base"], {}).get(str(r["recipe"]))
            if current is None or (value is not None and value > current):
                cols[r["base"]][str(r["recipe"])] = value
    return cols


# ---------------------------------------------------------------------- the board's attack section and pages

def board_section(records: list[dict[str, Any]], judge: str = "keyword") -> list[str]:
    """Markdown: post-attack ASR per recipe for each base model, and every filed attack with its settings."""
    if not records:
        return []
    cols = attack_columns(records, judge)
    recipes = sorted({r for c in cols.values() for r in c})
    lines = ["", f"## Fine-tuning attacks: post-attack ASR [{judge}] per recipe", "",
             "Highest ASR after the attack over every filed setting of that recipe; each base model's page "
             "lists every attack with its settings and the ASR before it.", "",
             "| Base model | " + " | ".join(recipes) + " | page |", "|" + "---|" * (len(recipes) + 2)]
    for base, by_recipe in sorted(cols.items()):
        cells = [_fmt(by_recipe.get(r)) for r in recipes]
        lines.append(f"| {base} | " + " | ".join(cells) + f" | attacks/{model_slug(base)}.html |")
    return lines


def board_json_block(records: list[dict[str, Any]], judge: str = "keyword") -> dict[str, Any]:
    return {"judge": judge, "post_attack_asr": attack_columns(records, judge),
            "attacks": [{k: r[k] for k in ("name", "recipe", "preset", "base", "hyperparameters", "data")}
                        | {"asr_before": _num(r["before"], judge, "asr"), "asr_after": _num(r["after"], judge, "asr")}
                        for r in records]}


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Attacks on {{ base }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:3px 6px;font-size:13px}</style></head><body>
<h1>Fine-tuning attacks on {{ base }}</h1>
<p>ASR = share of harmful prompts answered harmfully by the judge named; "[prefix removed]" = the same judge on
answers with the trained affirmative prefix cut off.</p>
{% for img in images %}<p><img src="{{ img }}" alt="{{ img }}" style="max-width:100%"></p>{% endfor %}
<table><tr>{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows %}<tr>{% for c in cols %}<td>{{ fmt(r[c]) }}</td>{% endfor %}</tr>{% endfor %}</table>
</body></html>"""


def write_pages(records: list[dict[str, Any]], out: str | Path, judge: str = "keyword") -> list[Path]:
    """One page per base model (`attacks/<slug>.html`) with its attacks' table, before/after and ablation plots."""
    import jinja2

    out = Path(out) / "attacks"
    by_base: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_base.setdefault(str(r.get("base")), []).append(r)
    if not by_base:
        return []
    out.mkdir(parents=True, exist_ok=True)
    template = jinja2.Environment(autoescape=True).from_string(_PAGE)
    pages = []
    for base, recs in by_base.items():
        slug = model_slug(base)
        images = []
        for key, fn in (("before_after", plot_before_after), ("ablation", plot_ablation),
                        ("category_deltas", plot_category_deltas)):
            if fn(recs, judge, out / f"{slug}-{key}.png"):
                images.append(f"{slug}-{key}.png")
        rows = table_rows(recs)
        cols = list(rows[0]) if rows else []
        page = out / f"{slug}.html"
        atomic_write_text(page, template.render(base=base, images=images, rows=rows, cols=cols, fmt=_fmt))
        pages.append(page)
    return pages
