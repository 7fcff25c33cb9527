"""Presets registry, eval preset translation, prompt templates, system prompt files, coherence arithmetic,
known source sizes: the parts that need no model."""

from __future__ import annotations

import argparse
import json

import pytest

from safety_bench.commands.eval_options import translate
from safety_bench.commands.landscape import DEFAULTS, apply_preset
from safety_bench.data import ADVBENCH_FULL_SIZE, known_prompt_count
from safety_bench.harness.prompt_templates import apply_template, bundled_templates, load_template
from safety_bench.harness.system_prompts import PRESETS, resolve_system_prompt
from safety_bench.landscape.coherence import coherence_section, point_coherence, repetition_rate
from safety_bench.landscape.grid import build_grid
from safety_bench.orchestration.presets import get_preset, load_presets
from safety_bench.validation import UsageError


def _landscape_args(**given) -> argparse.Namespace:
    base = {k: None for k in DEFAULTS} | {"preset": "peng2024", "beta_range": None, "beta_points": None,
                                          "limit": None, "no_coherence": False, "no_chat_template": False}
    return argparse.Namespace(**(base | given))


def test_registry_holds_both_papers_presets_with_their_kinds():
    presets = load_presets()
    assert presets["peng2024"].kind == "landscape" and presets["qi2023"].kind == "eval"
    peng = presets["peng2024"].settings
    assert (peng["task"], peng["max_gen_toks"], peng["dtype"], peng["points"], peng["range"]) == (
        "safety_advbench80", 512, "float32", 21, 0.5)
    with pytest.raises(UsageError, match="not a landscape preset"):
        get_preset("qi2023", "landscape")
    with pytest.raises(UsageError, match="unknown preset"):
        get_preset("peng2042", "landscape")


def test_landscape_preset_fills_unset_flags_and_an_explicit_flag_wins():
    args = _landscape_args(max_gen_toks=32, judge=["refusal_heuristic"])
    lines = apply_preset(args)
    assert (args.task, args.dtype, args.points, args.range, args.grid) == ("safety_advbench80", "float32", 21, 0.5,
                                                                             "1d_random")
    assert args.max_gen_toks == 32 and args.judge == ["refusal_heuristic"]
    text = "\n".join(lines)
    # every setting the preset sets is printed, with the overridden ones marked
    for key in load_presets()["peng2024"].settings:
        assert f"  {key} = " in text
    assert "max_gen_toks = 512  (overridden by your flag: 32)" in text


def test_a_nightly_sweep_block_can_name_a_preset():
    from safety_bench.orchestration.sweep import config_from_settings

    config = config_from_settings("m", {"preset": "peng2024", "max_gen_toks": 16})
    assert (config.task, config.dtype, config.max_gen_toks, config.preset) == ("safety_advbench80", "float32", 16,
                                                                               "peng2024")
    assert len(config.grid.coords[0]) == 21 and config.grid.coords[0][0] == -0.5


def test_eval_preset_becomes_lm_eval_arguments_under_the_users_own():
    argv, lines = translate(["--model", "hf", "--preset", "qi2023", "--metadata", '{"judge": "keyword"}',
                             "--gen_kwargs", "max_gen_toks=8"])
    assert argv[argv.index("--tasks") + 1] == "safety_landscape" and "--apply_chat_template" in argv
    metadata = json.loads(argv[argv.index("--metadata") + 1])
    assert metadata == {"judge": "keyword", "data": "hexphi"}
    assert argv[argv.index("--gen_kwargs") + 1] == "max_gen_toks=8,do_sample=False"
    assert "--preset" not in argv and any("overridden by your flag: 'keyword'" in line for line in lines)
    plain, _ = translate(["--model", "hf", "--preset", "qi2023"])
    assert json.loads(plain[plain.index("--metadata") + 1])["judge"] == "gpt4_rubric"
    assert "max_gen_toks=512" in plain[plain.index("--gen_kwargs") + 1]


def test_eval_no_chat_template_and_prompt_template_go_to_task_metadata():
    argv, _ = translate(["--model", "hf", "--no-chat-template", "--prompt-template", "roleplay"])
    assert json.loads(argv[argv.index("--metadata") + 1]) == {"prompt_template": "roleplay",
                                                             "prompt_format": "completion"}
    with pytest.raises(UsageError, match="contradicts"):
        translate(["--no-chat-template", "--apply_chat_template"])
    # the preset's chat template gives way to --no-chat-template
    argv, lines = translate(["--preset", "qi2023", "--no-chat-template"])
    assert "--apply_chat_template" not in argv and any("--no-chat-template" in line for line in lines)


def test_prompt_templates_wrap_literally_and_refuse_files_without_placeholder(tmp_path):
    assert "roleplay" in bundled_templates()
    wrapped = apply_template(load_template("roleplay"), "INSTR")
    assert "INSTR" in wrapped and "{instruction}" not in wrapped
    own = tmp_path / "mine.txt"
    own.write_text('Keep {braces} {"json": 1}: {instruction}\n', encoding="utf-8")
    assert apply_template(load_template(str(own)), "x") == 'Keep {braces} {"json": 1}: x'
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholder", encoding="utf-8")
    with pytest.raises(UsageError, match="placeholder"):
        load_template(str(bad))
    with pytest.raises(UsageError, match=r"valid: .*roleplay"):
        load_template("rolepaly")


def test_system_prompt_roleplay_preset_and_file(tmp_path):
    assert resolve_system_prompt({"system_prompt": "roleplay"}) == ("roleplay", PRESETS["roleplay"])
    path = tmp_path / "published.txt"
    path.write_text("You are a helpful model.\n", encoding="utf-8")
    assert resolve_system_prompt({"system_prompt": f"file:{path}"}) == ("custom", "You are a helpful model.")
    with pytest.raises(ValueError, match="cannot be read"):
        resolve_system_prompt({"system_prompt": f"file:{tmp_path / 'missing.txt'}"})


def test_known_sizes_of_the_prompt_sources():
    assert known_prompt_count("safety_advbench80", "hexphi") == 80
    assert known_prompt_count("safety_advbench", "hexphi") == ADVBENCH_FULL_SIZE == 520
    assert known_prompt_count("safety_landscape", "hexphi") == 330
    assert known_prompt_count("safety_landscape_public", "hexphi") == 300
    assert known_prompt_count("safety_landscape_mini", "sample", per_category=2) == 22
    assert known_prompt_count("safety_landscape", "/some/folder") is None


def test_repetition_rate_tells_loops_from_prose():
    assert repetition_rate("the cat sat on the mat while the dog slept") == 0.0
    assert repetition_rate("go go go go go go go go go go") > 0.8
    assert repetition_rate("!!!!!!!!!!!!") > 0.8  # no words: character n-grams
    assert point_coherence([-1.0, None, -3.0], ["a b", "", "c"])["loglik"] == -2.0


def test_coherence_section_finds_where_answers_stop_being_language():
    grid = build_grid("1d_random", points=5, range_=1.0)
    values = {"s0-1.000000": -9.0, "s0-0.500000": -2.0, "origin": -1.0, "s0+0.500000": -3.5, "s0+1.000000": -8.0}
    section = coherence_section(grid, {pid: {"loglik": v, "repetition": 0.0} for pid, v in values.items()})
    assert section["loglik"] == [[-9.0, -2.0, -1.0, -3.5, -8.0]]
    assert section["threshold"] == -3.0
    assert section["breaks"] == [{"negative": -1.0, "positive": 0.5}]
    assert "alpha = -1 and alpha = 0.5" in section["summary"]
    grid2 = build_grid("2d_random", points=3, range_=1.0)
    per_point = {p.id: {"loglik": -1.0 if max(abs(c) for c in p.coords) < 1 else -9.0} for p in grid2.points()}
    section2 = coherence_section(grid2, per_point)
    assert section2["breaks"][0]["radius"] == 1.0 and "radius 1" in section2["summary"]
