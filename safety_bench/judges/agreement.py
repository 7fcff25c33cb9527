"""Judge agreement: Cohen's κ and harmful/safe confusion tables between judges, overall and per category.

Input: judged record files (one judge each, or several judges in one file), matched by record `id`
(records without an id are matched by their instruction and response). A record enters a pair's
comparison only when both judges scored it (no `error`, `harmful` set); the skipped count is reported,
so a judge that fails often cannot look agreeable by omission.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety_bench.categories import SLUGS
from safety_bench.jsonio import read_jsonl


def record_key(record: Mapping[str, Any]) -> str:
    if record.get("id") not in (None, ""):
        return f"id:{record['id']}"
    text = f"{record.get('instruction', '')}\0{record.get('response', '')}"
    return "text:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def cohen_kappa(pairs: Iterable[tuple[bool, bool]]) -> float | None:
    """κ = (p_o − p_e) / (1 − p_e); None when undefined (no pairs, or both judges constant and equal)."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    agree = sum(a == b for a, b in pairs) / n
    pa = sum(a for a, _ in pairs) / n
    pb = sum(b for _, b in pairs) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected >= 1.0:
        return None
    return (agree - expected) / (1 - expected)


@dataclass
class PairStats:
    """Agreement of judge A with judge B on one set of records."""

    n: int = 0
    skipped: int = 0
    table: dict[str, int] = field(default_factory=lambda: {"both_harmful": 0, "a_only": 0, "b_only": 0,
                                                           "both_safe": 0})
    pairs: list[tuple[bool, bool]] = field(default_factory=list)

    def add(self, a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> None:
        if not _scored(a) or not _scored(b):
            self.skipped += 1
            return
        ha, hb = bool(a["harmful"]), bool(b["harmful"])  # type: ignore[index]
        self.pairs.append((ha, hb))
        self.n += 1
        key = "both_harmful" if ha and hb else "a_only" if ha else "b_only" if hb else "both_safe"
        self.table[key] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "skipped": self.skipped, "kappa": cohen_kappa(self.pairs),
                "agreement": (sum(a == b for a, b in self.pairs) / self.n) if self.n else None,
                "confusion": dict(self.table)}


def _scored(r: Mapping[str, Any] | None) -> bool:
    return r is not None and r.get("error") is None and r.get("harmful") is not None


def load_judged(paths: Iterable[str | Path]) -> dict[str, dict[str, dict[str, Any]]]:
    """{judge name: {record key: record}} from judged JSONL files."""
    by_judge: dict[str, dict[str, dict[str, Any]]] = {}
    for path in paths:
        rows = read_jsonl(path)
        for row in rows:
            judge = row.get("judge")
            if not judge:
                raise ValueError(f"{path}: record {row.get('id')!r} has no `judge` field (is it judged?)")
            seen = by_judge.setdefault(str(judge), {})
            key = record_key(row)
            if key in seen and seen[key] != row:
                raise ValueError(f"{path}: judge {judge} has two different records for {key}")
            seen[key] = row
    return by_judge


def agreement(by_judge: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Every pair of judges: overall and per-category κ, agreement and confusion tables."""
    judges = sorted(by_judge)
    if len(judges) < 2:
        raise ValueError(f"judge agreement needs at least two judges; found {judges or 'none'}")
    result: dict[str, Any] = {"judges": judges, "pairs": []}
    for a, b in itertools.combinations(judges, 2):
        ra, rb = by_judge[a], by_judge[b]
        shared = sorted(set(ra) & set(rb))
        overall, per_cat = PairStats(), {}
        for key in shared:
            cat = str(ra[key].get("category") or rb[key].get("category") or "uncategorised")
            overall.add(ra[key], rb[key])
            per_cat.setdefault(cat, PairStats()).add(ra[key], rb[key])
        ordered = [c for c in SLUGS if c in per_cat] + sorted(c for c in per_cat if c not in SLUGS)
        result["pairs"].append({"a": a, "b": b, "matched": len(shared),
                                "only_a": len(set(ra) - set(rb)), "only_b": len(set(rb) - set(ra)),
                                "overall": overall.as_dict(),
                                "per_category": {c: per_cat[c].as_dict() for c in ordered}})
    return result


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def to_markdown(report: Mapping[str, Any]) -> str:
    """A readable report: one section per judge pair, a κ table per category and the overall confusion."""
    lines = ["# Judge agreement", "", f"Judges: {', '.join(report['judges'])}. Labels: harmful vs safe; "
             "records a judge could not score are skipped. κ = Cohen's kappa (— = undefined).", ""]
    for pair in report["pairs"]:
        a, b, o = pair["a"], pair["b"], pair["overall"]
        lines += [f"## {a} vs {b}", "",
                  f"Matched records: {pair['matched']} (only in {a}: {pair['only_a']}, only in {b}: "
                  f"{pair['only_b']}); compared: {o['n']}, skipped as unscored: {o['skipped']}.", "",
                  f"| | {b}: harmful | {b}: safe |", "|---|---:|---:|",
                  f"| **{a}: harmful** | {o['confusion']['both_harmful']} | {o['confusion']['a_only']} |",
                  f"| **{a}: safe** | {o['confusion']['b_only']} | {o['confusion']['both_safe']} |", "",
                  "| category | n | κ | agreement | both harmful | only " + a + " | only " + b + " | both safe |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        rows = [("**overall**", o)] + list(pair["per_category"].items())
        for cat, s in rows:
            t = s["confusion"]
            lines.append(f"| {cat} | {s['n']} | {_fmt(s['kappa'])} | {_fmt(s['agreement'])} | "
                         f"{t['both_harmful']} | {t['a_only']} | {t['b_only']} | {t['both_safe']} |")
        lines.append("")
    return "\n".join(lines)
