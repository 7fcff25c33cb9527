"""End to end against a real OpenAI-compatible server: `transformers serve` with SmolLM2 on loopback.

The rubric judge sends real concurrent requests and reads real answers (a 135M model rarely writes the
rubric's format: those records must come back unscored, never safe); lm-eval's `local-chat-completions`
model type runs `safety_landscape_mini` through the same server, so an API-served model is evaluated too.
Answers are capped (max_tokens) and so are records: the CPU is slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.judges.registry import get_judge
from safety_bench.judges.run import judge_file

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


def test_rubric_judge_end_to_end_against_transformers_serve(transformers_server, tmp_path):
    rows = [json.loads(line) for line in (DATA / "judge_labels.jsonl").read_text().splitlines()]
    records = [min((r for r in rows if r["kind"] == k), key=lambda r: len(r["response"]))
               for k in ("plain_refusal", "plain_compliance")]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    # two records sent concurrently; one attempt each, so every request is accounted for below
    judge = get_judge("gpt4_rubric", cache=False, base_url=transformers_server.base_url,
                      model=transformers_server.model, concurrency=2, max_tokens=16, max_attempts=1, timeout=300)
    summary = judge_file(src, tmp_path / "out.jsonl", judge)["gpt4_rubric"]["overall"]
    judged = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    usage = judge.run_report()
    assert usage["requests"] == 2 and usage["answers"] + usage["failed"] == 2
    assert usage["answers"] >= 1, transformers_server.log_tail()  # the real server answered
    assert usage["input_tokens"] > 300 * usage["answers"]  # and counted the real rubric prompt's tokens
    errors = 0
    for r in judged:
        if r["error"] is None:
            assert r["score"] in (1.0, 2.0, 3.0, 4.0, 5.0) and r["harmful"] is (r["score"] == 5.0)
        else:  # an unreadable answer (its text kept) or a failed call: neither safe nor harmful
            errors += 1
            assert r["error"].startswith(("unparsable score", "api:"))
            assert r["harmful"] is None and r["score"] is None and r["refused"] is None
            if r["error"].startswith("unparsable"):
                assert r["raw"]
    assert summary["unscored"] == pytest.approx(errors / 2)


def test_lm_eval_local_chat_completions_runs_the_mini_task(transformers_server):
    import lm_eval

    from safety_bench.harness import task_manager

    # lm-eval 0.4.13's concurrent request path sends `stop: []` for tasks with `until: []` (it drops the EOS
    # string there), and transformers serve rejects an empty stop list; SmolLM2's end-of-turn token is the
    # natural stop, so it is named explicitly.
    args = (f"model={transformers_server.model},base_url={transformers_server.base_url}/chat/completions,"
            "num_concurrent=2,max_retries=1,tokenizer_backend=None,timeout=180")
    res = lm_eval.simple_evaluate(model="local-chat-completions", model_args=args, tasks=["safety_landscape_mini"],
                                  task_manager=task_manager({"data": "sample"}), apply_chat_template=True,
                                  gen_kwargs={"max_gen_toks": 8, "until": ["<|im_end|>"]}, log_samples=True, limit=2)
    metrics = res["results"]["safety_landscape_mini"]
    assert metrics["unscored,judge"] == 0.0 and 0.0 <= metrics["asr,judge"] <= 1.0
    samples = res["samples"]["safety_landscape_mini"]
    assert len(samples) == 2
    for s in samples:
        prompt = s["arguments"][0][0]
        messages = json.loads(prompt if isinstance(prompt, str) else prompt[0])  # a JSON chat string
        assert messages[-1]["role"] == "user" and messages[-1]["content"] == s["doc"]["instruction"]
        response = s["resps"][0][0]
        assert isinstance(response, str) and response.strip(), transformers_server.log_tail()
        verdict = json.loads(s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"])
        assert verdict["response"] == response and verdict["judge"] == "keyword"
