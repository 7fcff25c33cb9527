"""The VISAGE-vs-attack study end to end on tiny models: killed after one model, resumed without redoing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from safety_bench.orchestration import study as study_mod
from safety_bench.orchestration.study import load_plan, run_attack, run_study

from helpers.models import build_talkative_model


class Killed(RuntimeError):
    pass


def _adapter(base: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


def _plan(tmp_path: Path) -> Path:
    base = build_talkative_model(tmp_path / "base")
    adapter = _adapter(base, tmp_path / "adapter")
    plan = {
        "name": "tiny family", "out": str(tmp_path / "work"), "store": str(tmp_path / "store"), "seed": 0,
        "family": {"base": str(base), "adapter": str(adapter), "scales": [0, 1, 2]},
        "sweep": {"grid": "1d_random", "directions": 2, "points": 3, "range": 0.5, "task": "safety_landscape_mini",
                  "data": "sample", "metadata": {"per_category": 1}, "max_gen_toks": 4, "batch_size": 11,
                  "judges": ["keyword"], "device": "cpu"},
        "attacks": [{"recipe": "identity-shift", "settings": {"max_steps": 1, "batch_size": 2, "n_examples": 4,
                                                      "max_length": 256, "device": "cpu", "rank": 2}}],
        "statistics": {"bootstrap": 200, "permutations": 200},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def test_study_resumes_after_a_kill_reusing_finished_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = load_plan(_plan(tmp_path))
    attacked: list[str] = []

    def dying_attack(model_dir, adapter, recipe, out_dir, seed, settings):
        attacked.append(Path(model_dir).parent.name)
        if len(attacked) == 2:  # killed while attacking the second model (its landscape is done)
            raise Killed("killed")
        return run_attack(model_dir, adapter, recipe, out_dir, seed, settings)

    with pytest.raises(Killed):
        run_study(plan, attack=dying_attack, progress=False)
    work = Path(plan.out)
    assert (work / "variants" / "x0" / "result.json").is_file()
    assert (work / "variants" / "x1" / "landscape" / "landscape.json").is_file()
    assert not (work / "variants" / "x1" / "result.json").exists()
    assert not (work / "variants" / "x1" / "attacks" / "identity-shift" / "model").exists()

    # resumed: count what runs again
    points: list[str] = []
    real_run_point = study_mod.Sweeper.run_point

    def counting_run_point(self, point):
        points.append(f"{Path(self.config.model).parent.name}/{point.id}")
        return real_run_point(self, point)

    monkeypatch.setattr(study_mod.Sweeper, "run_point", counting_run_point)
    attacked.clear()

    def counting_attack(model_dir, adapter, recipe, out_dir, seed, settings):
        attacked.append(Path(model_dir).parent.name)
        return run_attack(model_dir, adapter, recipe, out_dir, seed, settings)

    summary = run_study(plan, attack=counting_attack, progress=False)
    assert attacked == ["x1", "x2"]  # x0's attack is reused
    # x0: nothing; x1: only its attacked model's evaluation; x2: its 5 grid points and its attacked model's
    assert points[0] == "identity-shift/origin"  # x1: only its attacked model is evaluated (landscape reused)
    assert len([p for p in points if p.startswith("x2/")]) == 5 and "x2/origin" in points
    assert points[-1] == "identity-shift/origin" and len(points) == 1 + 5 + 1  # x0: nothing at all
    assert summary["n_models"] == 3
    assert [row["name"] for row in summary["table"]] == ["x0", "x1", "x2"]
    for row in summary["table"]:
        assert row["visage"] is not None and row["origin_asr"] is not None
        assert row["attacks"]["identity-shift"] is not None
    res = summary["statistics"]["identity-shift"]
    assert res["n"] == 3 and "partial" in res
    assert (work / "scatter_identity-shift.png").read_bytes()[:4] == b"\x89PNG"
    assert "Spearman" in (work / "table.md").read_text()

    # the identity-shifted model is asked with the identity it was trained with (system prompt and instruction
    # template in the rendered prompt); the landscape of the same variant is not
    from safety_bench.harness.prompt_templates import apply_template, load_template
    from safety_bench.harness.system_prompts import IDENTITY_SHIFT_SYSTEM_PROMPT

    def contexts(folder: Path) -> list[str]:
        rows = (folder / "points" / "origin" / "contexts.jsonl").read_text().splitlines()
        return [json.loads(r)["context"] for r in rows]

    attacked_ctx = contexts(work / "variants" / "x2" / "attacks" / "identity-shift" / "eval")
    wrapped = apply_template(load_template("identity-shift"), "{{MARK}}").split("{{MARK}}")[0].strip()
    assert wrapped and all(IDENTITY_SHIFT_SYSTEM_PROMPT in c and wrapped in c for c in attacked_ctx)
    assert not any(IDENTITY_SHIFT_SYSTEM_PROMPT in c for c in contexts(work / "variants" / "x2" / "landscape"))

    # the store holds every model, the attacked ones with their attack's provenance, and the study
    store = tmp_path / "store"
    studies = list((store / "studies").iterdir())
    assert len(studies) == 1 and json.loads((studies[0] / "study.json").read_text())["n_models"] == 3
    from safety_bench.leaderboard.store import Store

    s = Store(store)
    names = {m["name"] for m in s.models()}
    assert {"x0", "x1", "x2", "x0+identity-shift", "x1+identity-shift", "x2+identity-shift"} <= names
    attacked_run = s.runs("x2+identity-shift", "base")[0]
    meta = s.load_base(attacked_run)["meta"]
    assert meta["attack"]["recipe"] == "identity-shift" and meta["attack"]["seed"] == 0
    assert s.runs("x1", "landscape")

    # a third run reuses everything
    points.clear()
    attacked.clear()
    again = run_study(plan, attack=counting_attack, progress=False)
    assert points == [] and attacked == []
    assert again["table"] == summary["table"]
