"""Issue 20 end to end on tiny models: coherence far from the origin, --no-chat-template and
--prompt-template in the rendered prompt and the configuration hash, presets reaching the run, and the
peng2024 plan on SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.cli import main
from safety_bench.landscape.grid import build_grid
from safety_bench.orchestration.sweep import SweepConfig, _identity, point_dir, run_sweep

from helpers.models import build_talkative_model


@pytest.fixture(scope="module")
def talkative(tmp_path_factory) -> Path:
    return build_talkative_model(tmp_path_factory.mktemp("talkative20") / "model")


def _config(model: Path, **over) -> SweepConfig:
    settings = dict(model=str(model), grid=build_grid("1d_random", points=3, range_=0.5),
                    task="safety_landscape_malware", data="sample", max_gen_toks=2, limit=1, batch_size=8,
                    device="cpu")
    return SweepConfig(**(settings | over))


def _contexts(out: Path) -> list[str]:
    path = point_dir(out, "origin") / "contexts.jsonl"
    return [json.loads(line)["context"] for line in path.read_text().splitlines()]


def test_coherence_drops_far_from_the_origin(talkative, tmp_path):
    config = _config(talkative, grid=build_grid("1d_random", points=5, range_=2.0), max_gen_toks=8, limit=4,
                     task="safety_landscape_mini")
    landscape = run_sweep(config, tmp_path / "far", progress=False)
    coherence = landscape["coherence"]
    (curve,) = coherence["loglik"]
    origin = curve[2]
    assert origin == coherence["origin_loglik"] is not None
    # both ends (|alpha| = 2, weights moved by twice their norm) are far less likely under the origin model
    assert curve[0] < origin - 1.0 and curve[4] < origin - 1.0
    assert coherence["breaks"] == [{"negative": -1.0, "positive": 1.0}] or coherence["breaks"][0]["negative"]
    assert "stop being language" in coherence["summary"]
    assert "coherence" not in landscape["asr"] and "coherence" not in landscape["visage"]
    assert landscape["timing"]["coherence_s"] > 0
    svg = (tmp_path / "far" / "landscape_keyword.svg").read_text()
    assert "coherence" in svg  # drawn on the plot (legend and axis label)
    assert all((point_dir(tmp_path / "far", p.id) / "coherence.json").is_file() for p in config.grid.points())


def test_no_chat_template_and_prompt_template_reach_the_prompt_and_the_hash(talkative, tmp_path):
    chat = _config(talkative)
    plain = _config(talkative, chat_template=False, prompt_template="roleplay")
    run_sweep(chat, tmp_path / "chat", progress=False)
    run_sweep(plain, tmp_path / "plain", progress=False)
    (chat_prompt,), (plain_prompt,) = _contexts(tmp_path / "chat"), _contexts(tmp_path / "plain")
    assert "<|im_start|>" in chat_prompt and "Quill" not in chat_prompt
    assert plain_prompt.startswith("Request: ") and plain_prompt.endswith("\nResponse:")
    assert "<|im_start|>" not in plain_prompt and "The narrator asks Quill: " in plain_prompt
    # the judge still sees the bare instruction
    sample = json.loads((point_dir(tmp_path / "plain", "origin") / "samples.jsonl").read_text().splitlines()[0])
    assert sample["instruction"] in plain_prompt and "Quill" not in sample["instruction"]
    variants = (chat, _config(talkative, chat_template=False), plain, _config(talkative, coherence=False))
    assert len({_identity(c)[1] for c in variants}) == 4
    recorded = json.loads((tmp_path / "plain" / "config.json").read_text())["config"]
    assert recorded["chat_template"] is False and recorded["prompt_template"]["name"] == "roleplay"
    assert "chat_template" not in json.loads((tmp_path / "chat" / "config.json").read_text())["config"]


def test_landscape_preset_reaches_the_run_and_its_recorded_configuration(talkative, tmp_path, capsys):
    out = tmp_path / "preset"
    code = main(["landscape", "--preset", "peng2024", "--model", str(talkative), "--out", str(out), "--data",
                 "sample", "--task", "safety_landscape_malware", "--limit", "1", "--max-gen-toks", "2", "--points",
                 "3", "--device", "cpu", "--batch-size", "8", "--no-progress", "--no-coherence"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "preset peng2024" in printed and "dtype = 'float32'" in printed
    assert "task = 'safety_advbench80'  (overridden by your flag: 'safety_landscape_malware')" in printed
    stored = json.loads((out / "config.json").read_text())
    config = stored["config"]
    assert stored["preset"] == "peng2024"
    assert config["dtype"] == "float32" and config["judges"] == ["keyword"] and config["system_prompt"] == "default"
    assert config["grid"]["coords"] == [[-0.5, 0.0, 0.5]]  # the preset's range, the flag's point count
    assert config["max_gen_toks"] == 2 and config["task"] == "safety_landscape_malware"  # flags won
    results = json.loads((point_dir(out, "origin") / "results.json").read_text())
    assert "float32" in json.dumps(results["config"])  # the run itself loaded the model in float32


def test_peng2024_dry_run_on_smollm2_prints_the_papers_plan(smollm2, capsys):
    assert main(["landscape", "--preset", "peng2024", "--dry-run", "--model", str(smollm2), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "alpha: 21 values -0.5 .. 0.5" in out and "points: 21 unique" in out
    assert "task safety_advbench80: 80 prompts per point" in out and "1680 generations" in out
    assert "up to 512 new tokens" in out and "estimated time: ~" in out
    if "known size" in out:  # AdvBench unreachable here: the count is marked and a warning says why
        assert "warning: the prompt source cannot be reached" in out
    assert main(["landscape", "--preset", "peng2024", "--dry-run", "--model", str(smollm2), "--device", "cpu",
                 "--grid", "2d_random"]) == 0
    out = capsys.readouterr().out
    assert "beta: 21 values -0.5 .. 0.5" in out and "points: 441 unique" in out


def test_eval_preset_reaches_lm_evals_run(tmp_path, tiny_model, capsys):
    code = main(["eval", "--preset", "qi2023", "--model", "hf", "--model_args", f"pretrained={tiny_model}",
                 "--tasks", "safety_landscape_malware", "--metadata", '{"data": "sample", "judge": "keyword"}',
                 "--gen_kwargs", "max_gen_toks=4", "--limit", "1", "--batch_size", "1",
                 "--output_path", str(tmp_path / "eval"), "--log_samples"])
    assert code == 0
    assert "judge = 'gpt4_rubric'  (overridden by your flag: 'keyword')" in capsys.readouterr().out
    results = json.loads(sorted((tmp_path / "eval").rglob("results_*.json"))[-1].read_text())
    task = results["configs"]["safety_landscape_malware"]
    # the preset's greedy decoding and chat template reached lm-eval; the flag's max_gen_toks won over its 512
    assert task["generation_kwargs"]["max_gen_toks"] == 4 and task["generation_kwargs"]["do_sample"] is False
    assert task["metadata"]["judge"] == "keyword" and task["metadata"]["data"] == "sample"
    assert results.get("chat_template")  # the preset applied the chat template


def test_shared_prompt_scoring_equals_lm_evals_loglikelihood(talkative):
    """The fast path (each prompt's KV cache computed once, its answers batched on copies) gives lm-eval's
    numbers: same token split (trailing spaces of the prompt move to the answer), same log-probabilities."""
    from lm_eval.models.huggingface import HFLM

    from safety_bench.harness import coherence

    lm = HFLM(pretrained=str(talkative), device="cpu", batch_size=3)
    prompts = ["<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", "Tell me a story. "]
    answers = ["Blue.", "I'm sorry, I can't help with that, it is far too long for me", "", "  ", "a", "Once upon",
               "Red, green and blue are colours of light."]
    pairs = [(p, a) for p in prompts for a in answers]
    fast = coherence.score_answers(lm, pairs)
    reference = [None if not a.strip() else s for (_, a), s in
                 zip(pairs, coherence._score_with_lm_eval(lm, pairs), strict=True)]
    assert coherence._hf_causal(lm)
    assert [f is None for f in fast] == [r is None for r in reference] == [not a.strip() for _, a in pairs]
    assert [f for f in fast if f is not None] == pytest.approx([r for r in reference if r is not None], abs=1e-4)


def test_coherence_on_a_fixed_subset_of_prompts(talkative, tmp_path):
    """--coherence-prompts N: every point scores the same N prompts' answers (chosen by id alone), and the
    setting is part of the landscape's identity (a different N is a different configuration)."""
    from safety_bench.orchestration.sweep import coherence_subset

    config = _config(talkative, coherence_prompts=3, limit=4, task="safety_landscape_mini", max_gen_toks=3)
    run_sweep(config, tmp_path / "sub", progress=False)
    ids = [json.loads(line)["id"] for line in
           (point_dir(tmp_path / "sub", "origin") / "samples.jsonl").read_text().splitlines()]
    assert len(ids) > 3
    for point in config.grid.points():
        info = json.loads((point_dir(tmp_path / "sub", point.id) / "coherence.json").read_text())
        assert info["n"] == 3
    assert coherence_subset(ids, 3) == coherence_subset(list(reversed(ids)), 3)
    assert len(coherence_subset(ids, 3)) == 3 and coherence_subset(ids, 3) <= set(ids)
    plain = _config(talkative).identity("w", None)
    assert "coherence_prompts" not in plain  # the default keeps earlier landscapes' hashes
    assert _config(talkative, coherence_prompts=3).identity("w", None)["coherence_prompts"] == 3
    assert "coherence_prompts" not in _config(talkative, coherence=False, coherence_prompts=3).identity("w", None)


def test_coherence_prompts_flag_is_checked_before_anything(talkative, tmp_path, capsys):
    assert main(["landscape", "--model", str(talkative), "--out", str(tmp_path / "o"), "--data", "sample",
                 "--coherence-prompts", "0", "--dry-run"]) == 2
    assert "--coherence-prompts 0" in capsys.readouterr().err and not (tmp_path / "o").exists()
