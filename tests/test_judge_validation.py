"""judge-validate: accuracy, kappa, confusion and bootstrap CIs against human labels; filing in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.judges.base import Verdict
from safety_bench.judges.keyword import KeywordJudge
from safety_bench.judges.refusal_v2 import RefusalHeuristicV2Judge
from safety_bench.judges.validation import LabelledCase, kappa, load_labelled, predicted, to_text, validate

DATA = Path(__file__).parent / "data"


def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    from safety_bench.cli import main

    rc = main(["judge-validate", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_kappa_by_hand():
    # 2x2 table: both yes 20, a-only 5, b-only 10, both no 15 -> po = .7, pe = .5*.6... computed below
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    po, pa, pb = 35 / 50, 25 / 50, 30 / 50
    pe = pa * pb + (1 - pa) * (1 - pb)
    assert kappa(a, b) == pytest.approx((po - pe) / (1 - pe))
    assert kappa([1, 1], [1, 1]) is None and kappa([], []) is None
    assert kappa(["x", "y", "z"], ["x", "y", "z"]) == pytest.approx(1.0)


class _Scripted:
    """A judge whose verdicts are given: refused, not refused, or unscored (an error)."""

    name, version = "scripted", "1"

    def __init__(self, answers):
        self.answers = answers

    def judge(self, items):
        out = []
        for a in self.answers[:len(items)]:
            out.append(Verdict(judge=self.name, error="api: down") if a is None
                       else Verdict(judge=self.name, refused=a, harmful=not a))
        return out


def test_validate_counts_unscored_as_wrong_and_fills_the_confusion():
    cases = [LabelledCase("q", "r", truth=t, label3="full" if t else "none", kind="k") for t in
             (True, True, True, False, False, False)]
    report = validate(_Scripted([True, False, None, False, False, True]), cases, n_boot=500)
    two = report["two_class"]
    assert two["confusion"] == {"tp": 1, "fn": 1, "unscored": 1, "tn": 2, "fp": 1}
    assert two["accuracy"] == pytest.approx(3 / 6) and two["accuracy_scored"] == pytest.approx(3 / 5)
    assert report["unscored"] == 1
    lo, hi = two["ci95"]["accuracy"]
    assert lo <= 0.5 <= hi and lo < hi
    assert report["three_class"] == {"available": False, "note": "the judge does not set `refusal` (none/partial/full)"}
    assert validate(_Scripted([True, False, None, False, False, True]), cases, n_boot=500)["two_class"]["ci95"] \
        == two["ci95"]  # seeded: reproducible


def test_predicted_reads_refusal_then_refused_then_harmful():
    assert predicted(Verdict("j", refusal="partial", refused=False), "refused") is True
    assert predicted(Verdict("j", refused=False), "refused") is False
    assert predicted(Verdict("j", harmful=False, score=1.0), "refused") is True   # rubric "safe" = did not comply
    assert predicted(Verdict("j", harmful=True), "harmful") is True
    assert predicted(Verdict("j", error="x", refused=True), "refused") is None


def test_held_out_split_three_class_and_degenerate_figures():
    target, cases = load_labelled(DATA / "judge_labels.jsonl", "heldout")
    assert target == "refused" and all(c.split == "heldout" for c in cases)
    report = validate(RefusalHeuristicV2Judge(), cases, n_boot=300)
    three = report["three_class"]
    assert three["available"] and sum(sum(r.values()) for r in three["confusion"].values()) == len(cases)
    assert report["degenerate"]["n"] == len(cases)
    assert set(report["per_label"]) == {"none", "partial", "full"}
    keyword = validate(KeywordJudge(), cases, n_boot=300)
    assert report["two_class"]["accuracy"] > keyword["two_class"]["accuracy"]
    text = to_text(report)
    assert text.splitlines()[1].startswith(f"accuracy {report['two_class']['accuracy']:.4f}")


def test_harm_labels_and_the_existing_refused_labels(tmp_path):
    path = tmp_path / "harm.jsonl"
    path.write_text("".join(json.dumps({"instruction": "q", "response": r, "harmful": h}) + "\n" for r, h in
                            [("I'm sorry, no.", 0), ("Here is the plan: ...", 1)]))
    target, cases = load_labelled(path)
    assert target == "harmful"
    assert validate(KeywordJudge(), cases, "harmful", n_boot=200)["two_class"]["accuracy"] == 1.0
    target, cases = load_labelled(DATA / "refusal_labelled.jsonl")
    assert target == "refused" and len(cases) == 40 and cases[0].label3 is None


def test_cli_checks_settings_before_anything(tmp_path, capsys):
    out = tmp_path / "report.txt"
    for args, setting in ((["--judge", "nope", "--labelled", str(DATA / "judge_labels.jsonl")], "--judge 'nope'"),
                          (["--judge", "keyword", "--labelled", str(tmp_path / "missing.jsonl")], "--labelled"),
                          (["--judge", "keyword", "--labelled", str(DATA / "judge_labels.jsonl"), "--split", "test"],
                           "--split 'test'")):
        rc, _, err = _in_process(capsys, *args, "--output", str(out))
        assert rc == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"safety-bench judge-validate: error: {setting}")
        assert "(valid: " in lines[0]
        assert not out.exists()
    rc, _, err = _in_process(capsys, "--judge", "keyword", "--labelled", str(DATA / "refusal_labelled.jsonl"),
                             "--split", "heldout")
    assert rc == 2 and "no `split` field" in err


def test_cli_files_the_validation_and_the_board_shows_it(tmp_path, capsys):
    from safety_bench.leaderboard.ranking import build_board
    from safety_bench.leaderboard.render import board_json, write_board
    from safety_bench.leaderboard.store import Store

    store_dir = tmp_path / "store"
    rc, out, err = _in_process(capsys, "--judge", "keyword", "--labelled", str(DATA / "judge_labels.jsonl"),
                               "--split", "heldout", "--store", str(store_dir), "--format", "json", "--bootstrap", "200")
    assert rc == 0, err
    report = json.loads(out[:out.rindex("}") + 1])
    filed = json.loads((store_dir / "validations" / "keyword.json").read_text())
    assert filed["two_class"]["accuracy"] == report["two_class"]["accuracy"] and filed["split"] == "heldout"
    store = Store(store_dir)
    gens = [{"id": str(i), "category": "malware", "instruction": "q", "response": r}
            for i, r in enumerate(["I'm sorry, no.", "Here is the plan."])]
    judged = [{**g, "judge": "keyword", "refused": g["response"].startswith("I'm"), "error": None,
               "harmful": not g["response"].startswith("I'm")} for g in gens]
    store.add_base_run("m", gens, {"model": {"name": "m"}}, judged={"keyword": judged})
    board = build_board(store)
    assert board.harm_judge == "keyword" and "keyword" in board.validations
    paths = write_board(board, tmp_path / "out")
    acc = f"{report['two_class']['accuracy']:.4f}"
    assert f"judge keyword v1 agrees with human labels: accuracy {acc}" in paths["md"].read_text()
    assert acc in paths["html"].read_text()
    assert board_json(board)["validations"]["keyword"]["split"] == "heldout"
