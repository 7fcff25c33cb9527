"""Judges held to human labels: accuracy, Cohen's κ, confusion matrices and bootstrap CIs for any judge.

Why: every number the suite publishes is a judge's verdict, so a judge's error rate belongs beside it.
`validate(judge, cases)` runs a judge over labelled answers and compares.

Labels (JSONL, one case a line): `instruction` (may be left out for refusal judges), `response` and one of
- `label` ∈ `compliance | partial_refusal | full_refusal` (three classes; partial counts as refused),
- `refused` (bool), or
- `harmful` (0/1 or bool: compared with the judge's `harmful`, for harm judges).
Optional: `id`, `category`, `kind` (the class of answer), `split` (`dev` | `heldout`), `degenerate`.

The headline is the two-class accuracy "refused or not" (or "harmful or not" for `harmful` labels),
over **all** cases: a case the judge could not score counts as wrong, since an unscored record is
never right. κ and the confusion matrix cover the scored cases; the unscored count is reported. The
three-class figures follow when the labels have three classes and the judge sets `refusal`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safety_bench.jsonio import RecordError, read_jsonl
from safety_bench.judges.base import Judge, JudgeInput, Verdict

LABELS3 = ("compliance", "partial_refusal", "full_refusal")
REFUSAL3 = {"compliance": "none", "partial_refusal": "partial", "full_refusal": "full"}
SPLITS = ("dev", "heldout", "all")


@dataclass(frozen=True)
class LabelledCase:
    instruction: str
    response: str
    truth: bool                 # refused (refusal labels) or harmful (harm labels)
    label3: str | None = None   # none | partial | full, when the label has three classes
    id: str | None = None
    category: str | None = None
    kind: str | None = None
    split: str | None = None
    degenerate: bool | None = None


def _truth(row: Mapping[str, Any], where: str) -> tuple[str, bool, str | None]:
    """(target, truth, three-class label) of one labelled row."""
    if row.get("label") is not None:
        label = str(row["label"])
        if label not in LABELS3:
            raise RecordError(f"{where}: label {label!r} is not one of {', '.join(LABELS3)}")
        return "refused", label != "compliance", REFUSAL3[label]
    if row.get("refused") is not None:
        return "refused", bool(row["refused"]), None
    if row.get("harmful") is not None:
        value = row["harmful"]
        if value not in (0, 1, True, False):
            raise RecordError(f"{where}: harmful {value!r} is not 0/1")
        return "harmful", bool(value), None
    raise RecordError(f"{where}: no `label`, `refused` or `harmful` field")


def load_labelled(path: str | Path, split: str = "all") -> tuple[str, list[LabelledCase]]:
    """The target ("refused" or "harmful") and the cases of one split (`all` = every case)."""
    rows = read_jsonl(path)
    if not rows:
        raise RecordError(f"{path}: no labelled cases")
    if split != "all" and not any("split" in r for r in rows):
        raise RecordError(f"{path}: no `split` field, so --split {split} selects nothing (use --split all)")
    targets, cases = set(), []
    for n, row in enumerate(rows, 1):
        where = f"{path}:{n}"
        if not isinstance(row.get("response"), str):
            raise RecordError(f"{where}: lacks the string field response")
        if not isinstance(row.get("instruction", ""), str):
            raise RecordError(f"{where}: instruction is not a string")
        target, truth, label3 = _truth(row, where)
        targets.add(target)
        if split != "all" and row.get("split") != split:
            continue
        deg = row.get("degenerate")
        cases.append(LabelledCase(row.get("instruction", ""), row["response"], truth, label3,
                                  None if row.get("id") is None else str(row["id"]), row.get("category"),
                                  row.get("kind"), row.get("split"), None if deg is None else bool(deg)))
    if len(targets) > 1:
        raise RecordError(f"{path}: mixes refusal labels and harm labels; use one kind per file")
    if not cases:
        raise RecordError(f"{path}: no cases in split {split!r}")
    return targets.pop(), cases


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# ------------------------------------------------------------------ reading a verdict

def predicted(verdict: Verdict, target: str) -> bool | None:
    """The judge's answer to the two-class question, or None when it could not score the case.

    Refusal: the three-class `refusal` when set (partial counts as refused), else `refused`, else
    `not harmful` (a harm judge's "safe" read as "did not comply"). Harm: `harmful`."""
    if verdict.error is not None:
        return None
    if target == "harmful":
        return verdict.harmful
    if verdict.refusal is not None:
        return verdict.refusal != "none"
    if verdict.refused is not None:
        return verdict.refused
    return None if verdict.harmful is None else not verdict.harmful


# ------------------------------------------------------------------ statistics

def kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's κ for two equally long label sequences (any number of classes); None when undefined."""
    n = len(a)
    if n == 0:
        return None
    classes = sorted(set(a) | set(b), key=str)
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pe = sum((sum(x == c for x in a) / n) * (sum(y == c for y in b) / n) for c in classes)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


def bootstrap_ci(correct: np.ndarray, truth: np.ndarray, pred: np.ndarray, scored: np.ndarray,
                 n_boot: int, seed: int, confidence: float = 0.95) -> dict[str, list[float] | None]:
    """Percentile bootstrap CIs (cases resampled with replacement) for accuracy and κ."""
    n = len(correct)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    acc = correct[idx].mean(axis=1)
    lo, hi = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    out: dict[str, list[float] | None] = {"accuracy": [float(np.percentile(acc, lo)), float(np.percentile(acc, hi))]}
    # κ over the scored cases of each resample: unscored cases are dropped by giving them zero weight
    keep = scored[idx]
    t, p = truth[idx].astype(float), pred[idx].astype(float)
    m = keep.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        po = ((t == p) & keep).sum(axis=1) / m
        pt, pp = (t * keep).sum(axis=1) / m, (p * keep).sum(axis=1) / m
        pe = pt * pp + (1 - pt) * (1 - pp)
        kap = np.where((m > 0) & (pe < 1.0), (po - pe) / (1 - pe), np.nan)
    kap = kap[~np.isnan(kap)]
    out["kappa"] = [float(np.percentile(kap, lo)), float(np.percentile(kap, hi))] if len(kap) else None
    return out


def _confusion2(truth: Iterable[bool], pred: Iterable[bool | None]) -> dict[str, int]:
    table = {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "unscored": 0}
    for t, p in zip(truth, pred, strict=True):
        if p is None:
            table["unscored"] += 1
        else:
            table[("t" if t == p else "f") + ("p" if p else "n")] += 1
    return table


def _group(cases: list[LabelledCase], pred: list[bool | None]) -> dict[str, Any]:
    n = len(cases)
    scored = [(c.truth, p) for c, p in zip(cases, pred, strict=True) if p is not None]
    correct = sum(t == p for t, p in scored)
    one_class = len({t for t, _ in scored}) < 2  # κ says nothing when the truth has a single class
    return {"n": n, "scored": len(scored), "accuracy": correct / n if n else None,
            "kappa": None if one_class else kappa([t for t, _ in scored], [p for _, p in scored])}


def _by(cases: list[LabelledCase], pred: list[bool | None], key: str) -> dict[str, Any]:
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        value = getattr(c, key)
        if value is not None:
            groups.setdefault(str(value), []).append(i)
    return {g: _group([cases[i] for i in idx], [pred[i] for i in idx]) for g, idx in sorted(groups.items())}


def validate(judge: Judge, cases: list[LabelledCase], target: str = "refused", n_boot: int = 2000,
             seed: int = 0) -> dict[str, Any]:
    """Run `judge` over the labelled cases and compare; see the module docstring for the figures."""
    items = [JudgeInput(c.instruction, c.response, c.category, c.id) for c in cases]
    verdicts = judge.judge(items)
    if len(verdicts) != len(cases):
        raise RuntimeError(f"judge {judge.name} returned {len(verdicts)} verdicts for {len(cases)} cases")
    pred = [predicted(v, target) for v in verdicts]
    truth = np.array([c.truth for c in cases], dtype=bool)
    scored = np.array([p is not None for p in pred], dtype=bool)
    pred_arr = np.array([bool(p) for p in pred], dtype=bool)
    correct = scored & (truth == pred_arr)
    n = len(cases)
    scored_pairs = [(c.truth, p) for c, p in zip(cases, pred, strict=True) if p is not None]
    two = {"question": "refused or not (partial counts as refused)" if target == "refused" else "harmful or not",
           "accuracy": float(correct.mean()), "accuracy_scored": (float(correct.sum() / scored.sum())
                                                                  if scored.any() else None),
           "kappa": kappa([t for t, _ in scored_pairs], [p for _, p in scored_pairs]) if scored_pairs else None,
           "confusion": _confusion2(truth.tolist(), pred),
           "ci95": bootstrap_ci(correct, truth, pred_arr, scored, n_boot, seed)}
    report: dict[str, Any] = {
        "judge": judge.name, "judge_version": str(getattr(judge, "version", "")), "target": target,
        "n": n, "scored": int(scored.sum()), "unscored": int(n - scored.sum()), "two_class": two,
        "per_label": _per_label(cases, pred), "per_kind": _by(cases, pred, "kind"),
        "per_category": _by(cases, pred, "category"), "bootstrap": {"resamples": n_boot, "seed": seed},
    }
    report["three_class"] = _three_class(cases, verdicts)
    report["degenerate"] = _degenerate(cases, verdicts)
    report["escalation"] = _escalation(verdicts, correct)
    run_report = getattr(judge, "run_report", None)
    if callable(run_report):
        run = dict(run_report())
        if run:
            report["run"] = run
    return report


def _escalation(verdicts: list[Verdict], correct: np.ndarray) -> dict[str, Any] | None:
    """For a cascade: how many records went (or would go) to the stronger judge, how many final verdicts
    are wrong among them and elsewhere, and the ceiling: the accuracy if every escalated record were
    decided right (what a perfect stronger judge would reach with this escalation rule)."""
    if not any("escalated" in v.extra for v in verdicts):
        return None
    esc = np.array([bool(v.extra.get("escalated") or v.extra.get("would_escalate")) for v in verdicts])
    n = len(verdicts)
    wrong_in = int((esc & ~correct).sum())
    return {"escalated": int(esc.sum()), "share": float(esc.mean()) if n else 0.0,
            "wrong_among_escalated": wrong_in, "wrong_elsewhere": int((~esc & ~correct).sum()),
            "ceiling_accuracy": float((correct.sum() + wrong_in) / n) if n else None}


def _per_label(cases: list[LabelledCase], pred: list[bool | None]) -> dict[str, Any]:
    """Two-class accuracy within each true class (for three-class labels: compliance, partial, full)."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        name = c.label3 if c.label3 is not None else ("positive" if c.truth else "negative")
        groups.setdefault(name, []).append(i)
    order = ["none", "partial", "full", "negative", "positive"]
    return {g: _group([cases[i] for i in groups[g]], [pred[i] for i in groups[g]]) for g in order if g in groups}


def _three_class(cases: list[LabelledCase], verdicts: list[Verdict]) -> dict[str, Any] | None:
    if any(c.label3 is None for c in cases):
        return None
    got = [v.refusal if v.error is None else None for v in verdicts]
    if all(g is None for g in got):
        return {"available": False, "note": "the judge does not set `refusal` (none/partial/full)"}
    classes = ("none", "partial", "full")
    matrix = {t: {p: 0 for p in (*classes, "unscored")} for t in classes}
    for c, g in zip(cases, got, strict=True):
        matrix[c.label3][g if g in classes else "unscored"] += 1  # type: ignore[index]
    pairs = [(c.label3, g) for c, g in zip(cases, got, strict=True) if g in classes]
    return {"available": True, "accuracy": sum(t == g for t, g in pairs) / len(cases),
            "kappa": kappa([t for t, _ in pairs], [g for _, g in pairs]) if pairs else None,
            "confusion": matrix,
            "recall": {t: (matrix[t][t] / sum(matrix[t].values()) if sum(matrix[t].values()) else None)
                       for t in classes}}


def _degenerate(cases: list[LabelledCase], verdicts: list[Verdict]) -> dict[str, Any] | None:
    pairs = [(c.degenerate, v.degenerate) for c, v in zip(cases, verdicts, strict=True)
             if c.degenerate is not None and v.degenerate is not None and v.error is None]
    if not pairs:
        return None
    tp = sum(t and p for t, p in pairs)
    return {"n": len(pairs), "accuracy": sum(t == p for t, p in pairs) / len(pairs),
            "recall": tp / max(1, sum(t for t, _ in pairs)), "precision": tp / max(1, sum(p for _, p in pairs))}


# ------------------------------------------------------------------ rendering

def _f(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "—" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def to_text(report: Mapping[str, Any]) -> str:
    """The headline first (two-class accuracy as a fraction, 4 decimals), then κ, tables and 3-class."""
    two = report["two_class"]
    c = two["confusion"]
    what = "refused" if report["target"] == "refused" else "harmful"
    lines = [
        f"judge {report['judge']} v{report['judge_version']} on {report.get('labelled', 'labelled cases')}"
        f" (split {report.get('split', 'all')}, n={report['n']}, unscored={report['unscored']})",
        f"accuracy {two['accuracy']:.4f}  95% CI {_ci(two['ci95']['accuracy'])}  ({two['question']})",
        f"kappa    {_f(two['kappa'])}  95% CI {_ci(two['ci95']['kappa'])}",
        "",
        f"confusion (rows: truth, columns: judge)  judge {what} | judge not {what}",
        f"  truly {what:12s}                     {c['tp']:>6d} | {c['fn']:>6d}",
        f"  truly not {what:8s}                     {c['fp']:>6d} | {c['tn']:>6d}",
    ]
    if c["unscored"]:
        lines.append(f"  unscored (counted wrong): {c['unscored']}")
    lines += ["", "per true class        n   accuracy"]
    lines += [f"  {k:16s} {v['n']:>5d}   {_f(v['accuracy'])}" for k, v in report["per_label"].items()]
    if report["per_kind"]:
        lines += ["", "per kind                          n   accuracy   kappa"]
        lines += [f"  {k:28s} {v['n']:>5d}   {_f(v['accuracy'])}   {_f(v['kappa'], 3)}"
                  for k, v in report["per_kind"].items()]
    if report["per_category"]:
        lines += ["", "per category                      n   accuracy   kappa"]
        lines += [f"  {k:28s} {v['n']:>5d}   {_f(v['accuracy'])}   {_f(v['kappa'], 3)}"
                  for k, v in report["per_category"].items()]
    three = report.get("three_class")
    if three:
        lines.append("")
        if not three["available"]:
            lines.append(f"three-class: — ({three['note']})")
        else:
            lines.append(f"three-class accuracy {three['accuracy']:.4f}  kappa {_f(three['kappa'])}  "
                         f"recall none {_f(three['recall']['none'])}, partial {_f(three['recall']['partial'])}, "
                         f"full {_f(three['recall']['full'])}")
            lines.append("  truth \\ judge      none  partial     full  unscored")
            for t, row in three["confusion"].items():
                lines.append(f"  {t:14s} {row['none']:>8d} {row['partial']:>8d} {row['full']:>8d} {row['unscored']:>9d}")
    deg = report.get("degenerate")
    if deg:
        lines += ["", f"degenerate flag: accuracy {deg['accuracy']:.4f}, recall {deg['recall']:.4f}, "
                      f"precision {deg['precision']:.4f} (n={deg['n']})"]
    esc, run = report.get("escalation"), report.get("run") or {}
    if esc:
        called = run.get("escalation_called", True)
        target = run.get("escalate_to") or "the stronger judge"
        lines += ["", f"escalation share {esc['share']:.4f} ({esc['escalated']} of {report['n']} "
                      f"{'sent to ' + target if called else 'would be escalated; nothing called'}); "
                      f"calls saved {report['n'] - esc['escalated']} of {report['n']}",
                  f"  wrong verdicts among escalated {esc['wrong_among_escalated']}, elsewhere "
                  f"{esc['wrong_elsewhere']}; ceiling accuracy (escalated all right) {esc['ceiling_accuracy']:.4f}"]
    return "\n".join(lines) + "\n"
