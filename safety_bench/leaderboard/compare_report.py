"""The Markdown (and JSON) report of `safety-bench compare`."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from safety_bench.leaderboard.compare import Comparison, PairedStat


def _p(x: float | None, scale: float = 100.0, digits: int = 1) -> str:
    return "—" if x is None else f"{scale * x:.{digits}f}"


def _ci(ci: tuple[float, float] | None, scale: float = 100.0, digits: int = 1) -> str:
    return "—" if ci is None else f"[{scale * ci[0]:+.{digits}f}, {scale * ci[1]:+.{digits}f}]"


def _row(s: PairedStat, scale: float = 100.0, digits: int = 1) -> str:
    delta = "—" if s.delta is None else f"{scale * s.delta:+.{digits}f}"
    p = "—" if s.p_value is None else f"{s.p_value:.3g}"
    disc = f"{s.worse} / {s.better}" if s.metric != "harmfulness_score" else "—"
    return (f"| {s.group} | {s.n} | {_p(s.baseline, scale, digits)} | {_p(s.candidate, scale, digits)} | {delta} "
            f"| {_ci(s.ci, scale, digits)} | {disc} | {p} |")


def _fence(text: str) -> str:
    """A fenced block longer than any backtick run inside, so a response cannot break out of it."""
    longest = max((len(m) for m in re.findall(r"`+", text or "")), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def markdown_report(result: Comparison, regressions: list[str] | None = None, max_flips: int | None = None) -> str:
    """Deltas with paired statistics per judge, VISAGE deltas, the verdict, and every flipped prompt."""
    b, c = result.baseline, result.candidate
    out = [f"# Safety comparison: `{c.label}` (candidate) vs `{b.label}` (baseline)", "",
           "Deltas are candidate minus baseline, in percentage points, on the prompts both answered. "
           "CIs: 95% paired bootstrap (seeded). Discordant = prompts that became harmful / became safe; "
           "p = McNemar's exact test (two-sided binomial test on the discordant pairs).", ""]
    head = ("| group | n | baseline % | candidate % | delta | 95% CI | discordant (worse / better) | McNemar p |\n"
            "|---|---|---|---|---|---|---|---|")
    for j in result.judges:
        label = "Harmfulness rate" if j.metric == "harmfulness_rate" else "ASR"
        out += [f"## {label} [{j.judge}]", "", head, _row(j.overall)]
        out += [_row(s) for s in j.per_category]
        out.append("")
        if j.score:
            s = j.score
            out += [f"Harmfulness score (1-5) [{j.judge}]: baseline {s.baseline:.3f}, candidate {s.candidate:.3f}, "
                    f"delta {s.delta:+.3f}, 95% CI {_ci(s.ci, 1, 3)} (n={s.n}).", ""]
        if j.over_refusal:
            out += [f"### Over-refusal on benign prompts [{j.judge}]", "", head, _row(j.over_refusal), ""]
    if result.visage:
        out += ["## VISAGE", "", "| judge | baseline | candidate | delta | 95% CI over directions | paired |",
                "|---|---|---|---|---|---|"]
        for judge, v in result.visage.items():
            ci = "—" if v["ci"] is None else f"[{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]"
            out.append(f"| {judge} | {v['baseline']:.2f} | {v['candidate']:.2f} | {v['delta']:+.2f} | {ci} "
                       f"| {'yes' if v['paired'] else 'no'} |")
        out.append("")
    for note in result.notes:
        out.append(f"_Note: {note}_")
    if regressions is not None:
        out += ["## Verdict", ""]
        if regressions:
            out += [f"**REGRESSION**: {r}" for r in regressions]
            out += [f"Caveat: {c}" for c in result.caveats]
        elif result.caveats:
            out += ["**No verdict**: the evidence cannot support one. No significant regression was found at the "
                    "set thresholds, but:"] + [f"- {c}" for c in result.caveats]
        else:
            out.append("No significant safety regression at the set thresholds.")
        out.append("")
    for j in result.judges:
        flips = j.flips if max_flips is None else j.flips[:max_flips]
        out += [f"## Flipped verdicts [{j.judge}]: {len(j.flips)}", ""]
        for f in flips:
            direction = "became HARMFUL" if f["candidate_harmful"] else "became safe"
            out += [f"### `{f['id']}` ({f['category']}, {f['task']}): {direction}", "", "Instruction:", "",
                    _fence(str(f["instruction"])), "", f"Baseline response (harmful={f['baseline_harmful']}, "
                    f"score={f['baseline_score']}):", "", _fence(str(f["baseline_response"])), "",
                    f"Candidate response (harmful={f['candidate_harmful']}, score={f['candidate_score']}):", "",
                    _fence(str(f["candidate_response"])), ""]
        if max_flips is not None and len(j.flips) > max_flips:
            out += [f"... and {len(j.flips) - max_flips} more.", ""]
    return "\n".join(out) + "\n"


def json_report(result: Comparison, regressions: list[str] | None = None) -> dict[str, Any]:
    return {"baseline": result.baseline.label, "candidate": result.candidate.label,
            "judges": [asdict(j) for j in result.judges], "visage": result.visage, "notes": result.notes,
            "caveats": result.caveats, "regressions": regressions,
            "left_out": {"baseline": result.baseline.skipped, "candidate": result.candidate.skipped}}
