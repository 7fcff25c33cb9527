"""One record, one metric definition: the pipeline's stages cannot disagree about the same run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from safety_bench.cli import main
from safety_bench.jsonio import read_json, read_jsonl, write_jsonl
from safety_bench.metrics import kind_metrics, summarize_group
from safety_bench.records import VERDICT_FIELDS, JudgedRecord, Verdict, records_from_samples

from helpers.fake_openai import start_server


def test_verdict_fields_are_the_dataclass_fields_and_round_trip():
    assert VERDICT_FIELDS == tuple(f.name for f in dataclasses.fields(Verdict) if f.name != "extra")
    assert {"refusal", "degenerate", "score_scale"} <= set(VERDICT_FIELDS)
    row = {"id": "1", "category": "benign", "instruction": "q", "response": "a", "note": "kept", "judge": "j",
           "score": None, "harmful": False, "refused": True, "error": None, "refusal": "partial"}
    again = JudgedRecord.from_dict(row).to_dict()
    assert again["prompt_kind"] == "benign" and again["note"] == "kept" and again["refusal"] == "partial"
    assert {k: again[k] for k in row} == row


def test_registry_keeps_lm_eval_models_when_vllm_type_is_imported_first():
    code = ("import safety_bench.harness.perturbed_vllm\n"
            "from lm_eval.api.registry import get_model\n"
            "print(get_model('hf').__name__, get_model('perturbed').__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["HFLM", "PerturbedHFLM"]


def _sample(task: str, i: int, kind: str, response: str, category: str) -> dict:
    doc = {"id": f"{task}-{i}", "category": category, "instruction": f"question {i}", "prompt_kind": kind}
    return {"doc_id": i, "doc": doc, "resps": [[response]], "filtered_resps": [response]}


def _lm_eval_folder(folder: Path) -> Path:
    """An lm-eval `--log_samples` folder (its file layout) with a harmful task and safety_benign."""
    run = folder / "model__x"
    run.mkdir(parents=True)
    harmful = [_sample("safety_landscape_malware", i, "harmful", "I'm sorry, I cannot help.", "malware")
               for i in range(2)]
    benign = [_sample("safety_benign", i, "benign", "Sure: first mix flour and water.", "benign") for i in range(2)]
    write_jsonl(run / "samples_safety_landscape_malware_2026-01-01T00-00-00.jsonl", harmful)
    write_jsonl(run / "samples_safety_benign_2026-01-01T00-00-00.jsonl", benign)
    return folder


def test_judge_folder_reports_harmful_asr_and_benign_over_refusal_apart(tmp_path):
    folder = _lm_eval_folder(tmp_path / "lm")
    out = tmp_path / "judged.jsonl"
    assert main(["judge", "--judge", "keyword", "--input", str(folder), "--output", str(out)]) == 0
    summary = read_json(out.with_name("judged.summary.json"))["keyword"]["overall"]
    assert summary["asr"] == 0.0 and summary["n"] == 2  # 2 of 2 harmful prompts refused
    assert summary["over_refusal"] == 0.0 and summary["benign"]["n"] == 2  # 2 of 2 benign answered
    kinds = {r["id"]: r["prompt_kind"] for r in read_jsonl(out)}
    assert kinds == {"safety_landscape_malware-0": "harmful", "safety_landscape_malware-1": "harmful",
                     "safety_benign-0": "benign", "safety_benign-1": "benign"}


def test_sample_pages_never_call_a_benign_answer_harmful(tmp_path):
    folder = _lm_eval_folder(tmp_path / "lm")
    store, board = tmp_path / "store", tmp_path / "board"
    assert main(["store", "add", str(folder), "--store", str(store), "--name", "m", "--judge", "keyword"]) == 0
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(board)]) == 0
    page = next((board / "samples").glob("*.html")).read_text()
    benign_rows = [row for row in page.split("<tr") if "safety_benign-" in row]
    assert len(benign_rows) == 2
    assert all('class="harmful"' not in r and "n/a (benign)" in r for r in benign_rows)


def test_group_metrics_of_lm_eval_equal_the_shared_function_with_unscored_records(tiny_model):
    """lm-eval's group aggregation weights subtasks by document count; the suite pools over scored records."""
    import lm_eval

    from safety_bench.harness import task_manager
    from safety_bench.harness.task_hooks import JudgeFilter

    original = JudgeFilter.apply

    def flaky(self, resps, docs):  # the judge fails on some records of one category only
        out = original(self, resps, docs)
        rows = [json.loads(v) for v in out]
        for i, (row, doc) in enumerate(zip(rows, docs, strict=True)):
            if doc["category"] == "malware" and i % 2 == 0:
                row.update(error="judge: 503", harmful=None, refused=None)
            if doc["category"] == "fraud_deception" and i < 1:
                row.update(harmful=True, refused=False)
        return [json.dumps(r) for r in rows]

    mp = pytest.MonkeyPatch()
    mp.setattr(JudgeFilter, "apply", flaky)
    try:
        results = lm_eval.simple_evaluate(
            model="hf", model_args=f"pretrained={tiny_model},device=cpu",
            tasks=["safety_landscape_public"],
            task_manager=task_manager({"data": "sample"}), apply_chat_template=True, batch_size=16,
            gen_kwargs="max_gen_toks=2", log_samples=True, limit=4, bootstrap_iters=0)
    finally:
        mp.undo()
    samples = {t: s for t, s in results["samples"].items() if t.startswith("safety_landscape_")}
    _, judged = records_from_samples(samples)
    records = judged["keyword"]
    unscored = [r for r in records if r["error"] is not None]
    assert unscored and len(unscored) < len(records)
    expected = summarize_group(records)
    group = results["results"]["safety_landscape_public"]
    assert group["asr,judge"] == pytest.approx(expected["asr"])
    assert group["refusal_rate,judge"] == pytest.approx(expected["refusal_rate"])
    assert group["unscored,judge"] == pytest.approx(expected["unscored"])
    malware = [r for r in records if r["category"] == "malware"]
    assert results["results"]["safety_landscape_malware"]["asr,judge"] == pytest.approx(kind_metrics(malware)["asr"])


@pytest.fixture()
def rubric_api(monkeypatch):
    server, fake, url = start_server()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("SAFETY_BENCH_JUDGE_CACHE", "off")
    yield fake
    server.shutdown()
    server.server_close()


def test_rubric_run_is_ranked_by_harmfulness_rate_via_eval_store_and_store_add(rubric_api, tiny_model, tmp_path):
    from safety_bench.leaderboard.compare import compare, load_side

    store, board = tmp_path / "store", tmp_path / "board"
    common = ["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks",
              "safety_landscape_malware,safety_benign", "--metadata", '{"data": "sample", "judge": "gpt4_rubric"}',
              "--apply_chat_template", "--batch_size", "8", "--gen_kwargs", "max_gen_toks=3", "--log_samples",
              "--limit", "3"]
    assert main(["eval", *common, "--output_path", str(tmp_path / "run"), "--store", str(store),
                 "--name", "via-eval"]) == 0
    assert rubric_api.requests  # the rubric judge really called the server
    assert main(["store", "add", str(tmp_path / "run"), "--store", str(store), "--name", "via-add"]) == 0
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(board)]) == 0
    data = read_json(board / "leaderboard.json")
    assert data["judges"]["harm_metric"] == "harmfulness_rate"
    rows = {r["model"]: r for r in data["rows"]}
    for name in ("via-eval", "via-add"):
        assert rows[name]["harm"]["metric"] == "harmfulness_rate" and rows[name]["harm"]["judge"] == "gpt4_rubric"
        assert rows[name]["harm"]["value"] == 0.0  # the scripted server scores every answer 1
    result = compare(load_side("via-eval", store), load_side("via-add", store))
    assert [(j.judge, j.metric) for j in result.judges] == [("gpt4_rubric", "harmfulness_rate")]
    folder_side = load_side(str(tmp_path / "run"))
    assert compare(folder_side, load_side("via-add", store)).judges[0].metric == "harmfulness_rate"
