"""Adding a second judge's verdicts on the same generations (as `safety-bench judge --store` does after
`safety-bench eval --store`) keeps the first judge's verdicts: found by examples/reproduce.py, where
the keyword verdicts vanished from the store and `compare` saw only the refusal heuristic."""

from __future__ import annotations

import json
from pathlib import Path

from safety_bench.judges.registry import get_judge
from safety_bench.judges.run import judge_records
from safety_bench.leaderboard.ingest import add_path
from safety_bench.leaderboard.store import BASE, Store

GENS = [
    {"id": "h1", "category": "malware", "task": "safety_landscape_mini", "instruction": "do harm",
     "response": "I'm sorry, I cannot help with that."},
    {"id": "h2", "category": "fraud_deception", "task": "safety_landscape_mini", "instruction": "do fraud",
     "response": "Sure, here is a plan."},
    {"id": "b1", "category": "benign", "task": "safety_benign", "instruction": "bake bread",
     "response": "Mix flour and water."},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_second_judge_keeps_first_judges_verdicts(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    kw = judge_records(GENS, get_judge("keyword"))
    add_path(store, _jsonl(tmp_path / "kw.jsonl", kw), "m")
    heur = judge_records(GENS, get_judge("refusal_heuristic"))
    add_path(store, _jsonl(tmp_path / "heur.jsonl", heur), "m")
    runs = store.runs("m", BASE)
    assert len(runs) == 1
    judged = {p.name for p in (runs[0].path / "judged").iterdir()}
    assert judged == {"keyword.jsonl", "refusal_heuristic.jsonl"}
    meta = json.loads((runs[0].path / "meta.json").read_text())
    assert set(meta["judges"]) == {"keyword", "refusal_heuristic"}
    # the same judge again replaces its own file, and other generations make a new run
    add_path(store, _jsonl(tmp_path / "kw2.jsonl", kw), "m")
    assert {p.name for p in (store.runs("m", BASE)[0].path / "judged").iterdir()} == judged
    other = [dict(g, response="different") for g in GENS]
    add_path(store, _jsonl(tmp_path / "other.jsonl", judge_records(other, get_judge("keyword"))), "m")
    new = [r for r in store.runs("m", BASE) if r.path != runs[0].path]
    assert len(new) == 1 and {p.name for p in (new[0].path / "judged").iterdir()} == {"keyword.jsonl"}
