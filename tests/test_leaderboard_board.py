"""Leaderboard from a store of real tiny-model runs: ranking, CSV/JSON contents, corrupt entry, escaping."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from safety_bench.categories import SLUGS
from safety_bench.judges.base import RUBRIC_SCALE, Verdict
from safety_bench.judges.run import judge_records
from safety_bench.leaderboard.ingest import add_lm_eval_results, add_path
from safety_bench.leaderboard.ranking import build_board
from safety_bench.leaderboard.render import write_board
from safety_bench.leaderboard.store import BASE, Store
from safety_bench.records import parse_verdict

from helpers.models import build_tiny_model

SCRIPT = "<script>alert('pwned')</script>"


class ScriptedRubric:
    """Test judge: scores 5 (harmful) for the first `rate` share of prompts by id, 1 for the rest."""

    name = "scripted_rubric"
    version = "7"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def judge(self, items):
        ids = sorted(i.id for i in items if i.category != "benign")
        cut = set(ids[: round(self.rate * len(ids))])
        return [Verdict(judge=self.name, score=5.0 if i.id in cut else 1.0, harmful=i.id in cut,
                        judge_version=self.version, score_scale=RUBRIC_SCALE) for i in items]


def landscape_fixture(folder: Path, visage: float, weights_id: str) -> Path:
    """TEST DATA written to DESIGN.md's landscape.json contract (not a real sweep): two direction curves whose
    VISAGE values are `visage` ∓ 1 (flat margins, saturated ends that the reference trimming drops), with the
    VISAGE block computed from those curves, so the fixture is consistent with itself."""
    from safety_bench.landscape.visage import summarize_visage

    folder.mkdir(parents=True, exist_ok=True)
    curves = [[100.0] + [100.0 - (visage + d)] * 3 + [100.0] for d in (-1.0, 1.0)]
    summary = summarize_visage(curves)
    assert summary["mean"] == pytest.approx(visage) and summary["per_direction"] == pytest.approx([visage - 1,
                                                                                                  visage + 1])
    land = {"kind": "1d_random", "coords": [[-0.5, -0.25, 0.0, 0.25, 0.5]], "directions": [0, 1],
            "judges": ["keyword"], "task": "safety_landscape_mini", "asr": {"keyword": curves},
            "visage": {"keyword": summary},
            "model": {"name": folder.name, "weights_id": weights_id}, "prompt_set_hash": "test",
            "software": {"test": "1"}, "timing": {"seconds": 1}}
    (folder / "landscape.json").write_text(json.dumps(land))
    return folder


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Real lm-eval runs of two tiny random models (one TaskManager, max 4 new tokens)."""
    import lm_eval

    from safety_bench.harness import task_manager

    root = tmp_path_factory.mktemp("lb_models")
    tm = task_manager({"data": "sample"})
    runs = {}
    for seed in (0, 1):
        folder = build_tiny_model(root / f"m{seed}", seed=seed)
        runs[f"m{seed}"] = lm_eval.simple_evaluate(
            model="hf", model_args=f"pretrained={folder},device=cpu", tasks=["safety_landscape_mini", "safety_benign"],
            task_manager=tm, apply_chat_template=True, batch_size=16, gen_kwargs="max_gen_toks=4", log_samples=True)
        runs[f"m{seed}"]["folder"] = folder
    return runs


@pytest.fixture(scope="module")
def board_store(tiny_runs, tmp_path_factory) -> Store:
    """Five entries: two tied on VISAGE, one higher, one without a landscape, one corrupt."""
    tmp = tmp_path_factory.mktemp("lb_store")
    store = Store(tmp / "store")
    plan = {"alpha": ("m0", 0.5, 80.0), "beta": ("m1", 0.25, 80.0), "gamma": ("m0", 0.9, 90.0),
            "delta": ("m1", 0.1, None), "broken": ("m0", 0.0, None)}
    for name, (run_name, rate, visage) in plan.items():
        results = json.loads(json.dumps({k: v for k, v in tiny_runs[run_name].items() if k != "folder"},
                                        default=str))
        if name == "alpha":  # a model output that must render as text
            sample = results["samples"]["safety_landscape_mini"][0]
            sample["filtered_resps"][0] = json.dumps({**parse_verdict(sample["filtered_resps"]), "response": SCRIPT})
        run = add_lm_eval_results(store, results, name)
        generations = store.load_generations(run)
        store.add_judgement(run, "scripted_rubric", "7", judge_records(generations, ScriptedRubric(rate)))
        if visage is not None:
            store.add_landscape(name, landscape_fixture(tmp / f"land-{name}", visage, run.weights_id or "x"))
    broken = store.runs("broken", BASE)[0]
    (broken.path / "judged" / "scripted_rubric.jsonl").write_text('{"id": "x", "harmful": tr')  # truncated
    return store


@pytest.fixture(scope="module")
def built(board_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("lb_board")
    board = build_board(board_store)
    return board, write_board(board, out), out


def test_ranking_visage_then_harm_rate_then_no_landscape(built):
    board, _, _ = built
    assert board.harm_judge == "scripted_rubric" and board.harm_metric == "harmfulness_rate"
    assert [r.name for r in board.rows] == ["gamma", "beta", "alpha", "delta"]
    beta, alpha = board.rows[1], board.rows[2]
    assert beta.visage["value"] == alpha.visage["value"] == 80.0  # the tie is broken by harm rate
    assert beta.harm["value"] < alpha.harm["value"]
    assert board.rows[3].visage is None


def test_corrupt_entry_is_reported_and_skipped(built):
    board, paths, _ = built
    assert "broken" not in [r.name for r in board.rows]
    assert any("broken" in line and "corrupt" in line for line in board.log)
    assert "broken" in paths["log"].read_text()
    assert any("broken" in line for line in json.loads(paths["json"].read_text())["log"])


def test_csv_contents(built, board_store):
    _, paths, _ = built
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["model"] for r in rows] == ["gamma", "beta", "alpha", "delta"]
    harm = "harmfulness_rate[scripted_rubric]"
    assert {r["model"]: float(r[harm]) for r in rows} == pytest.approx(
        {"gamma": 0.9, "beta": 0.25, "alpha": 0.5, "delta": 0.1}, abs=0.01)
    cat_cols = [c for c in rows[0] if c.endswith(f":{harm}")]
    assert [c.split(":")[0] for c in cat_cols] == list(SLUGS)
    assert float(rows[0]["visage[keyword]"]) == 90.0 and rows[3]["visage[keyword]"] == ""
    assert float(rows[0]["over_refusal[keyword]"]) == pytest.approx(
        json.loads(paths["json"].read_text())["rows"][0]["over_refusal"]["value"])
    assert all(r["harm_judge_version"] == "7" and r["harm_date"] and r["harm_run"] for r in rows)


def test_json_contents_name_judges_and_provenance(built):
    _, paths, _ = built
    data = json.loads(paths["json"].read_text())
    assert data["judges"] == {"harm": "scripted_rubric", "harm_metric": "harmfulness_rate", "visage": "keyword",
                              "over_refusal": "keyword"}
    assert all("scripted_rubric" in data["headers"][s] for s in SLUGS)
    top = data["rows"][0]
    assert top["rank"] == 1 and top["model"] == "gamma"
    assert set(top["per_category"]) == set(SLUGS)
    for number in (top["harm"], top["visage"], top["over_refusal"]):
        assert number["date"] and number["run"] and number["judge"]
    assert top["harm"]["tasks"] == {"safety_benign": 1.0, "safety_landscape_mini": 1.0}
    assert top["harm"]["prompt_set_hash"] and top["harm"]["weights_id"].startswith("sha256:")
    assert top["harm"]["ci"][0] <= top["harm"]["value"] <= top["harm"]["ci"][1]
    assert top["harmfulness_score"]["value"] == pytest.approx(1 + 4 * 0.9, abs=0.05)


def test_html_escapes_model_output_and_has_plots(built):
    _, paths, out = built
    page = (out / "samples" / "alpha.html").read_text()
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert SCRIPT not in page
    index = paths["html"].read_text()
    assert "Harmfulness rate [scripted_rubric]" in index and "http" not in index.split("<body>")[1]
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == 3  # drawn from landscape.json for the three models with a landscape
    assert 'src="plots/' in index


def test_markdown_names_judge_and_lists_provenance(built):
    _, paths, _ = built
    md = paths["md"].read_text()
    assert "| # | Model | VISAGE [keyword] | Harmfulness rate [scripted_rubric]" in md
    assert "## Provenance" in md and "judge scripted_rubric v7" in md


def test_keyword_asr_is_the_harm_rate_without_rubric(tiny_runs, tmp_path):
    store = Store(tmp_path / "store")
    results = {**tiny_runs["m0"], "config": {**tiny_runs["m0"]["config"],
                                              "model_args": "pretrained=x,token=hf_SECRETSECRET123"}}
    add_lm_eval_results(store, results, "only-keyword")
    board = build_board(store)
    assert board.harm_judge == "keyword" and board.harm_metric == "asr"
    paths = write_board(board, tmp_path / "out")
    assert "Harm rate = ASR [keyword]" in paths["md"].read_text()
    assert "asr[keyword]" in paths["csv"].read_text().splitlines()[0]
    stored = "".join(p.read_text() for p in (tmp_path / "store").rglob("meta.json"))
    assert "hf_SECRET" not in stored and "[redacted]" in stored


def test_store_add_cli_from_lm_eval_output_folder_and_reindex(tiny_runs, tmp_path):
    from lm_eval.loggers import EvaluationTracker

    from safety_bench.cli import main

    results = dict(tiny_runs["m1"])
    samples = results.pop("samples")
    results.pop("folder")
    tracker = EvaluationTracker(output_path=str(tmp_path / "lm_out"))
    tracker.general_config_tracker.model_name_sanitized = "tiny"
    tracker.save_results_aggregated(results=results, samples=samples)
    for task, rows in samples.items():
        tracker.save_results_samples(task_name=task, samples=rows)
    store_dir = tmp_path / "store"
    assert main(["store", "add", str(tmp_path / "lm_out"), "--store", str(store_dir), "--name", "from-disk"]) == 0
    land = landscape_fixture(tmp_path / "land", 70.0, "x")
    assert main(["store", "add", str(land), "--store", str(store_dir), "--name", "from-disk"]) == 0
    store = Store(store_dir)
    run = store.runs("from-disk", BASE)[0]
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["judges"]["keyword"]["version"] == "1" and meta["dataset"]["source"] == "sample"
    assert meta["model"]["weights_id"].startswith("sha256:") and meta["software"]["lm_eval"]
    assert len(store.load_generations(run)) == 88 + 40
    (store_dir / "models" / "from-disk" / "base" / "half-written").mkdir()  # a partial run folder
    (store_dir / "index.sqlite").unlink()
    problems = Store(store_dir).reindex()
    assert any("half-written" in p for p in problems)
    assert [r.kind for r in Store(store_dir).runs("from-disk")] in (["base", "landscape"], ["landscape", "base"])
    assert main(["leaderboard", "build", "--store", str(store_dir), "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "leaderboard.json").read_text())["rows"][0]["visage"]["value"] == 70.0


def test_store_add_rejects_unknown_input(tmp_path):
    from safety_bench.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["store", "add", str(tmp_path / "empty"), "--store", str(tmp_path / "s"), "--name", "x"]) == 2
    with pytest.raises(Exception, match="no such file"):
        add_path(Store(tmp_path / "s"), tmp_path / "missing", "x")


def test_weights_id_from_model_args_given_as_string_or_dict(tiny_runs, tmp_path):
    """The lm-eval CLI records `model_args` as a dict, the Python API as the string it was given."""
    folder = tiny_runs["m0"]["folder"]
    base = json.loads(json.dumps({k: v for k, v in tiny_runs["m0"].items() if k != "folder"}, default=str))
    store = Store(tmp_path / "store")
    ids = []
    for name, args in (("as-string", f"pretrained={folder},device=cpu"), ("as-dict", {"pretrained": str(folder)}),
                       ("absent", {"pretrained": str(tmp_path / "not-here")})):
        results = json.loads(json.dumps(base))
        results["config"]["model_args"] = args
        ids.append(add_lm_eval_results(store, results, name).weights_id)
    assert ids[0] == ids[1] and ids[0].startswith("sha256:") and ids[2] is None


class FlakyRubric(ScriptedRubric):
    """Test judge: like ScriptedRubric, but cannot score every fourth harmful prompt (an API error)."""

    name = "flaky_rubric"

    def judge(self, items):
        verdicts = super().judge(items)
        failing = set(sorted(i.id for i in items if i.category != "benign")[::4])
        return [Verdict(judge=self.name, error="HTTP 500", judge_version=self.version, score_scale=RUBRIC_SCALE)
                if i.id in failing else v for i, v in zip(items, verdicts, strict=True)]


def test_a_rate_over_mostly_unscored_answers_is_marked(tiny_runs, tmp_path):
    store = Store(tmp_path / "store")
    results = json.loads(json.dumps({k: v for k, v in tiny_runs["m0"].items() if k != "folder"}, default=str))
    for name, judge in (("flaky", FlakyRubric(0.5)), ("steady", ScriptedRubric(0.5))):
        run = add_lm_eval_results(store, results, name)
        store.add_judgement(run, judge.name, "7", judge_records(store.load_generations(run), judge))
    paths = write_board(build_board(store), tmp_path / "board")
    rows = {line.split(" | ")[1]: line for line in paths["md"].read_text().splitlines()
            if " | flaky | " in line or " | steady | " in line}
    assert "⚠ 25% unscored" in rows["flaky"] and "unscored" not in rows["steady"]
    assert "⚠ 25% unscored" in paths["html"].read_text()
