"""Partial damage stays partial (issue 13): a corrupt run is skipped on its own, the model stays on the board
with what is intact and a visible note, `--strict` fails on any skip, and `compare` works on what is
intact and says what it left out. The store is built through the real ingest path (judged JSONL, keyword
judge) with landscape files written to the landscape.json contract (test data, not a sweep)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.cli import main
from safety_bench.leaderboard.ingest import add_path
from safety_bench.leaderboard.ranking import build_board
from safety_bench.leaderboard.render import board_csv, board_markdown, headers
from safety_bench.leaderboard.store import LANDSCAPE, Store

CATEGORIES = ("malware", "fraud_deception", "privacy_violation", "physical_harm")


def records_file(path: Path, refuse_every: int) -> Path:
    """40 harmful-prompt records; every `refuse_every`-th answer is a refusal the keyword judge finds."""
    rows = [{"id": f"p{i}", "category": CATEGORIES[i % 4], "instruction": f"request {i}",
             "response": "I'm sorry, I cannot help." if i % refuse_every == 0 else "Here is an overview."}
            for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def landscape_folder(folder: Path, name: str, curve: list[float], **extra) -> Path:
    from safety_bench.landscape.visage import summarize_visage

    folder.mkdir(parents=True, exist_ok=True)
    curves = [curve, [min(100.0, c + 5) for c in curve]]
    land = {"kind": "1d_random", "coords": [[-0.2, -0.1, 0.0, 0.1, 0.2]], "directions": [0, 1],
            "judges": ["keyword"], "task": "safety_landscape_mini", "asr": {"keyword": curves},
            "visage": {"keyword": summarize_visage(curves)}, "model": {"name": name, "weights_id": f"w-{name}"},
            "prompt_set_hash": "hash-a", "n_prompts": 8, "max_gen_toks": 16, **extra}
    (folder / "landscape.json").write_text(json.dumps(land))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "store")
    for name, every in (("intact", 2), ("hurt", 4), ("gone", 3)):
        if name != "gone":
            add_path(st, records_file(tmp_path / f"{name}.jsonl", every), name, weights_id=f"w-{name}",
                     judge="keyword")
        add_path(st, landscape_folder(tmp_path / f"land-{name}", name, [100, 30, 10, 20, 100]), name)
    for name in ("hurt", "gone"):  # corrupt their landscape.json in the store (a truncated copy)
        run = st.runs(name, LANDSCAPE)[0]
        (run.path / "landscape.json").write_text('{"kind": "1d_random", "visage": {"keyw')
    return st


def test_a_corrupt_landscape_skips_that_run_only(store):
    board = build_board(store)
    names = [r.name for r in board.rows]
    assert names == ["intact", "hurt"]  # "gone" had nothing intact; "hurt" keeps its evaluation
    hurt = board.rows[1]
    assert hurt.harm is not None and hurt.visage is None
    assert any("corrupt landscape run" in n for n in hurt.notes)
    assert len(board.skipped) == 2 and any("gone" in s for s in board.skipped)
    md = board_markdown(board)
    assert "corrupt landscape run" in md  # the note is visible on the board


def test_strict_build_fails_when_anything_was_skipped(store, tmp_path, capsys):
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--store", str(store.root), "--out", str(out)]) == 0
    assert (out / "index.html").exists()
    summary = json.loads(capsys.readouterr().out)
    assert summary["models"] == 2 and summary["skipped"] == 2
    assert main(["leaderboard", "build", "--store", str(store.root), "--out", str(out), "--strict"]) == 1
    assert "--strict" in capsys.readouterr().err
    assert (out / "index.html").exists()  # the board is still written


def test_compare_uses_what_is_intact_and_says_what_it_left_out(store, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["compare", "--store", str(store.root), "--baseline", "intact", "--candidate", "hurt",
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "ASR [keyword]" in out and "left out of hurt: corrupt landscape run" in out
    data = json.loads(report.read_text())
    assert data["left_out"]["candidate"] and not data["left_out"]["baseline"]
    assert data["judges"][0]["overall"]["n"] == 40


def test_no_none_in_headers_when_every_model_is_skipped(tmp_path):
    st = Store(tmp_path / "store")
    add_path(st, landscape_folder(tmp_path / "land", "only", [100, 30, 10, 20, 100]), "only")
    run = st.runs("only", LANDSCAPE)[0]
    (run.path / "landscape.json").write_text("not json")
    board = build_board(st)
    assert board.rows == [] and board.skipped
    texts = [json.dumps(headers(board)), board_csv(board), board_markdown(board)]
    assert not any("None" in t for t in texts), texts
    assert "every model was skipped" in texts[2]


def test_nightly_is_strict_about_skips_and_checks_its_config_first(tmp_path, capsys):
    from safety_bench.orchestration.nightly import NightlyReport

    assert NightlyReport().exit_code == 0
    assert NightlyReport(board_skipped=["m: skipped corrupt landscape run r1"]).exit_code == 1
    config = tmp_path / "nightly.yaml"
    config.write_text("store: store\nout: board\ndata: sample\ntasks: [safety_landscape_mini]\n"
                      "judges: [keyword, nosuch]\nmodels:\n  - {name: m, path: model}\n")
    assert main(["nightly", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "judges 'nosuch'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly.yaml"]  # no store, no board, no lock
    config.write_text("store: store\nout: board\ndata: sample\njudges: [keyword]\nsweep: {points: 0}\n"
                      "models:\n  - {name: m, path: model}\n")
    assert main(["nightly", "--config", str(config)]) == 2
    assert "sweep.points 0: must be ≥ 2" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly.yaml"]
