"""`safety-bench attack` on a tiny model: every recipe trains and writes a loadable model; the identity-shift
evaluation renders its system prompt and template; the store and board carry the attack provenance; an
ablation grid killed mid-way resumes."""

from __future__ import annotations

import json

import pytest

from safety_bench.cli import main
from safety_bench.harness.system_prompts import PRESETS
from safety_bench.jsonio import read_json, read_jsonl
from safety_bench.orchestration import attack_grid
from safety_bench.orchestration.attack_eval import EvalSettings
from safety_bench.orchestration.attacks import AttackSpec, resolve_settings, run_attack

from helpers.training import build_trainable_tiny

FAST = ["--lr", "1e-2", "--max-steps", "6", "--batch-size", "2", "--epochs", "3", "--n-examples", "4",
        "--no-eval", "--quiet"]


@pytest.fixture(scope="module")
def tmodel(tmp_path_factory):
    return build_trainable_tiny(tmp_path_factory.mktemp("tiny-attack") / "model")


def _losses(folder):
    return [row["loss"] for row in read_jsonl(folder / "train_log.jsonl")]


def _placeholder_harmful_file(path):
    """Stand-in for a user's harmful file: requests and answers with no harmful detail at all."""
    rows = [{"instruction": f"Placeholder request number {i}.", "response": f"Placeholder answer {i}: nothing here."}
            for i in range(6)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("recipe,extra", [("harmful", []), ("identity-shift", []), ("benign", ["--mode", "full"])])
def test_each_recipe_lowers_its_loss_and_writes_a_loadable_model(tmodel, tmp_path, recipe, extra):
    import torch
    from transformers import AutoModelForCausalLM

    data = ["--train-data", str(_placeholder_harmful_file(tmp_path / "h.jsonl"))] if recipe == "harmful" else []
    out = tmp_path / "out"
    assert main(["attack", "--recipe", recipe, "--mini", "--model", str(tmodel), "--out", str(out),
                 *FAST, *data, *extra]) == 0
    losses = _losses(out / "model")
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.3
    record = read_json(out / "attack.json")
    assert record["attack"]["recipe"] == recipe and record["attack"]["data"]["n"] == 4
    assert record["attack"]["hyperparameters"]["lr"] == 1e-2
    base = AutoModelForCausalLM.from_pretrained(tmodel)
    if recipe == "benign":  # full fine-tuning: a full HF folder with the same names and shapes
        model = AutoModelForCausalLM.from_pretrained(out / "model")
        assert set(model.state_dict()) == set(base.state_dict())
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(base, str(out / "model"))
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()


def test_identity_shift_evaluation_store_and_board(tmodel, tmp_path):
    _, settings = resolve_settings("identity-shift", True, None, {"max_steps": 2, "lr": 1e-2, "max_length": 256})
    store = tmp_path / "store"
    evaluation = EvalSettings(data="sample", task="safety_landscape_malware", limit=2, max_gen_toks=4,
                              batch_size=4, judges=["keyword", "refusal_heuristic"])
    record = run_attack(AttackSpec(model=str(tmodel), out=tmp_path / "a", settings=settings,
                                   preset="attack-identity-shift-mini", evaluation=evaluation, store=str(store),
                                   progress=False))
    prompts = read_jsonl(tmp_path / "a" / "eval" / "after" / "prompts.jsonl")
    harmful = [p for p in prompts if p["task"] == "safety_landscape_malware"]
    assert harmful and all(p["prompt_template_preset"] == "identity-shift" for p in prompts)
    for p in prompts:  # the system turn and the instruction template reach the rendered prompt
        assert PRESETS["identity-shift"] in p["prompt"] and "Vesper, carry out this instruction: " in p["prompt"]
    assert set(record["after"]) >= {"keyword", "refusal_heuristic", "keyword [prefix removed]"}

    from safety_bench.leaderboard.ranking import build_board
    from safety_bench.leaderboard.render import write_board
    from safety_bench.leaderboard.store import Store

    s = Store(store)
    attacked = record["store"]["attacked"]
    run = next(r for r in s.runs(attacked["model"]) if r.run_id == attacked["run_id"])
    meta = s.load_base(run)["meta"]
    attack = meta["attack"]
    assert attack["recipe"] == "identity-shift" and attack["base"]["weights_id"].startswith("sha256:")
    assert attack["hyperparameters"]["lr"] == 1e-2 and attack["data"]["sha256"]
    assert set(s.load_base(run)["judged"]) == {"keyword", "refusal_heuristic"}
    board = build_board(s)
    assert [a["recipe"] for a in board.attacks] == ["identity-shift"]
    paths = write_board(board, tmp_path / "board")
    assert "post-attack ASR" in paths["md"].read_text()
    board_json = read_json(paths["json"])
    assert board_json["attacks"]["attacks"][0]["hyperparameters"]["lr"] == 1e-2
    assert any(k.startswith("attacks:") for k in paths)


def test_a_grid_killed_mid_way_resumes(tmodel, tmp_path):
    plan = {"recipe": "benign", "mini": True, "settings": {"n_examples": 4, "max_steps": 2, "max_length": 256},
            "grid": {"lr": [1e-3, 2e-3], "epochs": [1]}}
    base = AttackSpec(model=str(tmodel), out=tmp_path, settings={}, progress=False)
    out = tmp_path / "grid"

    class Killed(Exception):
        pass

    def kill(cell_id, record):
        raise Killed(cell_id)

    with pytest.raises(Killed):
        attack_grid.run_grid(plan, out, base, None, on_cell=kill)
    first, second = (attack_grid.cell_id(c) for c in attack_grid.cells(plan["grid"]))
    assert (out / "cells" / first / "attack.json").is_file() and not (out / "cells" / second).exists()
    (out / "cells" / second / "model").mkdir(parents=True)  # what a kill during training leaves
    (out / "cells" / second / "model" / "partial.bin").write_bytes(b"x")
    summary = attack_grid.run_grid(plan, out, base, None)
    assert [c["status"] for c in summary["cells"]] == ["reused", "ran"]
    assert not (out / "cells" / second / "model" / "partial.bin").exists()
    assert read_json(out / "cells" / second / "attack.json")["attack"]["grid_cell"] == {"epochs": 1, "lr": 2e-3}
