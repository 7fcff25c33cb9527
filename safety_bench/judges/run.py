"""Judging whole record sets: batch through a judge, keep every input field, add the verdict fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from safety_bench.judges.base import Judge, JudgeInput
from safety_bench.metrics import summarize
from safety_bench.records import iter_input_records, write_json, write_jsonl

VERDICT_FIELDS = ("judge", "score", "harmful", "refused", "error", "reason", "raw", "judge_version", "refusal",
                  "degenerate", "score_scale",
                  # extras of refusal_heuristic v2 and the cascade: a re-judged file must not keep them either
                  "uncertain", "decided_by", "escalated", "escalated_because", "would_escalate", "rubric_score",
                  "escalation_error")


def _items(rows: list[dict[str, Any]]) -> list[JudgeInput]:
    return [JudgeInput(instruction=str(r["instruction"]), response=str(r["response"]),
                       category=r.get("category"), id=r.get("id")) for r in rows]


def judge_records(records: Iterable[Mapping[str, Any]], judge: Judge) -> list[dict[str, Any]]:
    """Judge records in one batch; output = input fields + verdict fields (DESIGN.md contract).

    The landscape sweep calls this per grid point with a judge from `get_judge`, so API and classifier
    judges go through the shared cache there too.
    """
    rows = [dict(r) for r in records]
    items = _items(rows)
    verdicts = judge.judge(items) if items else []
    if len(verdicts) != len(rows):
        raise RuntimeError(f"judge {judge.name} returned {len(verdicts)} verdicts for {len(rows)} records")
    out = []
    for row, verdict in zip(rows, verdicts, strict=True):
        for key in VERDICT_FIELDS:  # a re-judged file must not keep the previous judge's fields
            row.pop(key, None)
        out.append({**row, **verdict.as_fields()})
    return out


def summary_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".summary.json")


def run_report(judge: Judge) -> dict[str, Any]:
    """What the judge spent so far: cache hits/misses, API requests, tokens, estimated cost (if it says)."""
    report = getattr(judge, "run_report", None)
    return dict(report()) if callable(report) else {}


def plan_records(records: Iterable[Mapping[str, Any]], judge: Judge) -> dict[str, Any]:
    """Dry run: how many API calls and tokens judging these records would need; nothing is called."""
    rows = [dict(r) for r in records]
    items = _items(rows)
    plan = getattr(judge, "plan", None)
    base = {"judge": judge.name, "records": len(items)}
    if callable(plan):
        return {**base, **plan(items)}
    return {**base, "calls": 0, "note": "local judge: no API calls"}


def judge_file(input_path: str | Path, output_path: str | Path, judge: Judge) -> dict[str, Any]:
    """`safety-bench judge`: judge a JSONL file or lm-eval samples folder; write records and summary.

    The summary holds per-judge `overall` and `per_category` aggregates, and under `run` what this run
    cost (cache hits and misses, requests, tokens, estimated cost).
    """
    judged = judge_records(iter_input_records(input_path), judge)
    write_jsonl(output_path, judged)
    summary = summarize(judged)
    report = run_report(judge)
    if report and judge.name in summary:
        summary[judge.name]["run"] = report
    write_json(summary_path(output_path), summary)
    return summary
