"""`safety-bench compare` on constructed paired outcomes: McNemar p-values, bootstrap CIs, the gate's exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

from safety_bench.cli import main
from safety_bench.jsonio import write_jsonl
from safety_bench.leaderboard.compare import (
    Side,
    Thresholds,
    compare,
    mcnemar_exact,
    paired_bootstrap_ci,
    regressions,
    visage_delta,
)

CATS = ["illegal_activity", "malware"]


def records(outcomes: list[int], judge: str = "keyword", scores: list[float] | None = None,
            tag: str = "") -> list[dict]:
    """Judged records with given harmful (1) / safe (0) outcomes on fixed prompt ids (constructed data)."""
    rows = []
    for i, h in enumerate(outcomes):
        rows.append({"id": f"p{i:03d}", "task": "safety_landscape_mini", "category": CATS[i % 2],
                     "instruction": f"instruction {i}", "response": f"{tag} response {i} {'sure' if h else 'no'}",
                     "judge": judge, "harmful": bool(h), "refused": not h, "error": None,
                     "score": scores[i] if scores else None, "score_scale": "1-5" if scores else None})
    return rows


def paired(n: int, worse: int, better: int, both: int) -> tuple[list[int], list[int]]:
    """Baseline/candidate outcomes with the given discordant counts and `both` concordant harmful pairs."""
    a, b = [], []
    for _ in range(worse):
        a.append(0); b.append(1)
    for _ in range(better):
        a.append(1); b.append(0)
    for _ in range(both):
        a.append(1); b.append(1)
    while len(a) < n:
        a.append(0); b.append(0)
    return a, b


@pytest.mark.parametrize("worse,better", [(8, 1), (5, 5), (0, 6), (12, 2), (1, 0)])
def test_mcnemar_matches_scipy_exact_binomial(worse, better):
    a, b = paired(60, worse, better, both=7)
    result = compare(Side("A", {"keyword": records(a)}), Side("B", {"keyword": records(b, tag="B")}))
    overall = result.judges[0].overall
    assert (overall.worse, overall.better, overall.n) == (worse, better, 60)
    expected = binomtest(worse, worse + better, 0.5).pvalue
    assert overall.p_value == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(worse, better) == pytest.approx(expected, rel=1e-12)
    assert overall.delta == pytest.approx((worse - better) / 60)
    assert len(result.judges[0].flips) == worse + better


def test_mcnemar_without_discordant_pairs_is_one():
    assert mcnemar_exact(0, 0) == 1.0


def test_paired_bootstrap_ci_is_seeded_and_covers_the_delta():
    a, b = paired(80, 14, 3, both=10)
    ci = paired_bootstrap_ci(a, b, seed=3)
    assert ci == paired_bootstrap_ci(a, b, seed=3)
    delta = (14 - 3) / 80
    assert ci[0] < delta < ci[1] and ci[0] > 0


def test_rubric_scores_get_harmfulness_rate_and_score_ci():
    a, b = paired(40, 10, 0, both=2)
    sa = [5.0 if h else 1.0 for h in a]
    sb = [5.0 if h else 2.0 for h in b]
    result = compare(Side("A", {"rubric": records(a, "rubric", sa)}), Side("B", {"rubric": records(b, "rubric", sb)}))
    j = result.judges[0]
    assert j.metric == "harmfulness_rate"
    assert j.score.delta == pytest.approx(sum(sb) / 40 - sum(sa) / 40)
    assert j.score.ci[0] <= j.score.delta <= j.score.ci[1]
    unmarked = [{**r, "score_scale": "probability"} for r in records(a, "rubric", sa)]
    guess = compare(Side("A", {"rubric": unmarked}), Side("B", {"rubric": unmarked})).judges[0]
    assert guess.metric == "asr"  # scores that look like 1-5 are never taken for rubric scores


def test_visage_delta_paired_over_same_directions():
    base = {"mean": 80.0, "per_direction": [78.0, 80.0, 82.0]}
    cand = {"mean": 70.0, "per_direction": [69.0, 70.0, 71.0]}
    v = visage_delta(base, cand, [0, 1, 2], [0, 1, 2])
    assert v["paired"] and v["delta"] == pytest.approx(-10.0)
    assert v["ci"][0] < -10.0 < v["ci"][1] < 0
    unpaired = visage_delta(base, cand, [0, 1, 2], [5, 6, 7])
    assert not unpaired["paired"] and unpaired["ci"][1] - unpaired["ci"][0] > v["ci"][1] - v["ci"][0]


def test_regression_thresholds():
    a, b = paired(60, 12, 2, both=5)
    result = compare(Side("A", {"keyword": records(a)}), Side("B", {"keyword": records(b)}))
    assert regressions(result, Thresholds())
    assert not regressions(result, Thresholds(alpha=0.001))
    assert not regressions(result, Thresholds(min_delta=0.5))
    reverse = compare(Side("B", {"keyword": records(b)}), Side("A", {"keyword": records(a)}))
    assert not regressions(reverse, Thresholds())  # the candidate is safer: never a regression


def _landscape(folder: Path, per_direction: list[float]) -> None:
    """TEST DATA in the landscape.json contract."""
    folder.mkdir(parents=True)
    mean = sum(per_direction) / len(per_direction)
    (folder / "landscape.json").write_text(json.dumps({
        "kind": "1d_random", "coords": [[-0.1, 0.0, 0.1]], "directions": [0, 1, 2], "judges": ["keyword"],
        "task": "t", "asr": {"keyword": [[0, 0, 0]] * 3},
        "visage": {"keyword": {"mean": mean, "ci": None, "per_direction": per_direction, "untrimmed": mean}}}))


def test_cli_report_and_fail_on_regression_exit_code(tmp_path, capsys):
    a, b = paired(60, 12, 2, both=5)
    base_rows, cand_rows = records(a, tag="BASE"), records(b, tag="CAND")
    cand_rows[0]["response"] = "```\n<script>x</script> sure"
    write_jsonl(tmp_path / "a.jsonl", base_rows)
    write_jsonl(tmp_path / "b.jsonl", cand_rows)
    args = ["compare", "--baseline", str(tmp_path / "a.jsonl"), "--candidate", str(tmp_path / "b.jsonl")]
    assert main(args) == 0  # without the gate, a report only
    report = capsys.readouterr().out
    p = binomtest(12, 14, 0.5).pvalue
    assert "| overall | 60 | 11.7 | 28.3 | +16.7 |" in report and f"{p:.3g}" in report
    assert "## Flipped verdicts [keyword]: 14" in report
    assert "BASE response 0 no" in report and "<script>x</script> sure" in report
    assert "````text" in report  # the fence outgrows the response's own backticks
    assert main(args + ["--fail-on-regression"]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert main(args + ["--fail-on-regression", "--min-delta", "0.3"]) == 0
    assert main(["compare", "--baseline", str(tmp_path / "b.jsonl"), "--candidate", str(tmp_path / "a.jsonl"),
                 "--fail-on-regression", "--json", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["regressions"] == [] and data["judges"][0]["overall"]["better"] == 12


def test_cli_store_models_and_visage_gate(tmp_path, capsys):
    from safety_bench.leaderboard.ingest import add_path
    from safety_bench.leaderboard.store import Store

    store = Store(tmp_path / "store")
    a, b = paired(40, 0, 0, both=4)
    write_jsonl(tmp_path / "a.jsonl", records(a))
    write_jsonl(tmp_path / "b.jsonl", records(b))
    _landscape(tmp_path / "la", [80.0, 81.0, 79.0])
    _landscape(tmp_path / "lb", [60.0, 61.0, 59.5])
    for name, rec, land in (("base", "a.jsonl", "la"), ("cand", "b.jsonl", "lb")):
        add_path(store, tmp_path / rec, name)
        add_path(store, tmp_path / land, name)
    args = ["compare", "--store", str(store.root), "--baseline", "base", "--candidate", "cand", "--fail-on-regression"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "## VISAGE" in out and "VISAGE [keyword] fell" in out
    assert main(args + ["--max-visage-drop", "30"]) == 0
    assert main(["compare", "--store", str(store.root), "--baseline", "nope", "--candidate", "cand"]) == 2
