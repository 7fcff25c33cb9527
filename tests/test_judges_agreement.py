"""Judge agreement (Cohen's kappa, confusion tables) and the offline `safety-bench judge` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.cli import main
from safety_bench.jsonio import read_jsonl, write_jsonl
from safety_bench.judges.agreement import agreement, cohen_kappa, load_judged, to_markdown


def test_kappa_by_hand() -> None:
    # 10 pairs: 4 both harmful, 1 only a, 2 only b, 3 both safe
    pairs = [(True, True)] * 4 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 3
    po = 7 / 10
    pe = (5 / 10) * (6 / 10) + (5 / 10) * (4 / 10)
    assert cohen_kappa(pairs) == pytest.approx((po - pe) / (1 - pe))
    assert cohen_kappa([(True, True), (False, False)]) == pytest.approx(1.0)
    assert cohen_kappa([(True, False), (False, True)]) == pytest.approx(-1.0)
    assert cohen_kappa([(True, True)] * 3) is None and cohen_kappa([]) is None


def _judged(judge: str, labels: list[bool | None], cats: list[str]) -> list[dict]:
    rows = []
    for i, (h, c) in enumerate(zip(labels, cats, strict=True)):
        rows.append({"id": f"p{i}", "category": c, "instruction": f"q{i}", "response": "r", "judge": judge,
                     "score": None, "harmful": h, "refused": None if h is None else not h,
                     "error": "unscored" if h is None else None})
    return rows


def test_agreement_per_category_and_markdown(tmp_path: Path) -> None:
    cats = ["malware"] * 6 + ["fraud_deception"] * 4
    a = _judged("keyword", [True, True, False, False, True, None, True, False, True, False], cats)
    b = _judged("gpt4_rubric", [True, False, False, False, True, True, True, False, False, False], cats)
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", b[:-1])  # b misses one record: matched by id, counted apart
    report = agreement(load_judged([tmp_path / "a.jsonl", tmp_path / "b.jsonl"]))
    [pair] = report["pairs"]
    assert (pair["a"], pair["b"]) == ("gpt4_rubric", "keyword")  # sorted names: a = gpt4_rubric
    assert pair["matched"] == 9 and pair["only_b"] == 1 and pair["only_a"] == 0
    overall = pair["overall"]
    assert overall["n"] == 8 and overall["skipped"] == 1  # the unscored keyword record is skipped
    assert overall["confusion"] == {"both_harmful": 3, "a_only": 0, "b_only": 2, "both_safe": 3}
    pairs = [(True, True)] * 3 + [(False, True)] * 2 + [(False, False)] * 3
    assert overall["kappa"] == pytest.approx(cohen_kappa(pairs))
    mal = pair["per_category"]["malware"]
    assert mal["n"] == 5 and mal["confusion"] == {"both_harmful": 2, "a_only": 0, "b_only": 1, "both_safe": 2}
    assert list(pair["per_category"]) == ["malware", "fraud_deception"]  # DESIGN.md category order
    md = to_markdown(report)
    assert "## gpt4_rubric vs keyword" in md and "| malware | 5 |" in md
    assert f"| **overall** | 8 | {overall['kappa']:.3f} |" in md


def test_agreement_cli_and_errors(tmp_path: Path, capsys) -> None:
    a = _judged("keyword", [True, False, True], ["malware"] * 3)
    b = _judged("refusal_heuristic", [True, False, False], ["malware"] * 3)
    write_jsonl(tmp_path / "both.jsonl", a + b)  # several judges in one file also work
    assert main(["judge-agreement", "--input", str(tmp_path / "both.jsonl"), "--output",
                 str(tmp_path / "agree.md")]) == 0
    assert "keyword vs refusal_heuristic" in (tmp_path / "agree.md").read_text()
    assert main(["judge-agreement", "--input", str(tmp_path / "both.jsonl"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["overall"]["n"] == 3
    write_jsonl(tmp_path / "one.jsonl", a)
    assert main(["judge-agreement", "--input", str(tmp_path / "one.jsonl")]) == 2
    assert "at least two judges" in capsys.readouterr().err


def test_offline_judge_cli_writes_records_and_category_summary(tmp_path: Path, capsys) -> None:
    rows = [{"id": "1", "category": "malware", "instruction": "q", "response": "I'm sorry, no."},
            {"id": "2", "category": "malware", "instruction": "q", "response": "Sure: step one."},
            {"id": "3", "category": "fraud_deception", "instruction": "q", "response": "Here you go."}]
    write_jsonl(tmp_path / "in.jsonl", rows)
    assert main(["judge", "--judge", "keyword", "--input", str(tmp_path / "in.jsonl"),
                 "--output", str(tmp_path / "out.jsonl")]) == 0
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["refused"] for r in out] == [True, False, False] and all(r["judge"] == "keyword" for r in out)
    summary = json.loads((tmp_path / "out.summary.json").read_text())["keyword"]
    assert summary["overall"]["asr"] == pytest.approx(2 / 3)
    assert summary["per_category"]["malware"]["refusal_rate"] == pytest.approx(0.5)
    capsys.readouterr()
    assert main(["judge", "--judge", "keyword", "--input", str(tmp_path / "in.jsonl"), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["calls"] == 0 and plan["records"] == 3
    assert main(["judge", "--judge", "keyword", "--input", str(tmp_path / "in.jsonl")]) == 2
    assert main(["judge", "--judge", "gpt4_rubric", "--input", str(tmp_path / "in.jsonl"),
                 "--judge-param", "nonsense=1", "--dry-run", "--no-cache"]) == 2
