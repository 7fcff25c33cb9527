"""`safety-bench attack`: the fine-tuning attacks of Qi et al. 2023 (harmful examples, identity shifting,
benign fine-tuning), on the project's one trainer (`training.finetune.train_and_save` over `training.core`).

Settings come from a preset (`presets/attack-<recipe>[-mini].yaml`, the registry in `presets.py`) and
every explicit flag overrides them. A run writes, into OUT:

- `model/`: the attacked model (LoRA adapter on top of MODEL with ADAPTER merged, or a full HF folder),
  with `recipe.json` (which holds the `attack` provenance too) and `train_log.jsonl`;
- `eval/before/`, `eval/after/`: generations, judged records per judge, `summary.json`;
- `attack.json`, written last and atomically: provenance (recipe, preset, base weights id, every
  hyperparameter, data source and hash) and before/after numbers. Its presence means the run finished.

With `--store` the attacked model (and its baseline) are filed as base runs; the attacked run's meta has
an `attack` block with that provenance, which the board and `attack-report` read.
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safety_bench.harness.prompt_templates import apply_template, resolve_prompt_template
from safety_bench.harness.system_prompts import EMPTY_SYSTEM_SENTINEL, resolve_system_prompt
from safety_bench.jsonio import read_json, write_json
from safety_bench.judges.registry import load_specs
from safety_bench.leaderboard.ingest import add_lm_eval_results
from safety_bench.leaderboard.remote import open_store
from safety_bench.leaderboard.store import RunInfo, content_key
from safety_bench.orchestration import attack_data
from safety_bench.orchestration.attack_eval import EvalResult, EvalSettings, evaluate_loaded
from safety_bench.orchestration.presets import Preset, apply, get_preset
from safety_bench.provenance import now_iso, software_versions
from safety_bench.training import datasets
from safety_bench.training.align import LoraSettings, load_model, resolve_model_dir
from safety_bench.training.finetune import FinetuneConfig, train_and_save
from safety_bench.validation import UsageError, choice, number
from safety_bench.weights_id import weights_id

log = logging.getLogger("safety_bench.attack")

RECIPES = ("harmful", "identity-shift", "benign")
MODES = ("lora", "full")
ATTACK_FILE = "attack.json"
MODEL_DIR = "model"

# Every training setting, with the default a preset may override (presets set all of them).
DEFAULTS: dict[str, Any] = {
    "mode": "lora", "lr": 2e-4, "batch_size": 8, "micro_batch_size": None, "epochs": 3.0, "n_examples": 0,
    "seed": 0, "rank": 16, "max_length": 384, "max_steps": None, "train_data": None,
    "system_prompt": "default", "prompt_template": "none",
}
HYPERPARAMETERS = ("lr", "batch_size", "epochs", "n_examples")  # the ablation axes


def preset_name(recipe: str, mini: bool) -> str:
    return f"attack-{recipe}{'-mini' if mini else ''}"


def resolve_settings(recipe: str | None, mini: bool, preset: str | None, explicit: dict[str, Any]
                     ) -> tuple[Preset, dict[str, Any]]:
    """The preset (named, or the recipe's) with explicit settings on top, validated."""
    if preset:
        chosen = get_preset(preset, "attack")
        if recipe and chosen.settings.get("recipe") != recipe:
            raise UsageError("--preset", preset, f"is a {chosen.settings.get('recipe')} preset, not {recipe}")
    else:
        if recipe is None:
            raise UsageError("--recipe", None, "give a recipe or a --preset", RECIPES)
        choice("--recipe", recipe, RECIPES)
        chosen = get_preset(preset_name(recipe, mini), "attack")
    settings = apply(chosen, explicit, DEFAULTS)
    validate(settings)
    return chosen, settings


def validate(s: dict[str, Any]) -> None:
    """Every training setting checked before anything is loaded or written."""
    choice("--recipe", s.get("recipe"), RECIPES)
    choice("--mode", s["mode"], MODES)
    s["lr"] = number("--lr", s["lr"], minimum=0, exclusive_minimum=True)
    s["batch_size"] = number("--batch-size", s["batch_size"], minimum=1, integer=True)
    if s.get("micro_batch_size") is not None:
        s["micro_batch_size"] = min(s["batch_size"],
                                    number("--micro-batch-size", s["micro_batch_size"], minimum=1, integer=True))
    s["epochs"] = number("--epochs", s["epochs"], minimum=0, exclusive_minimum=True)
    s["n_examples"] = number("--n-examples", s["n_examples"], minimum=0, integer=True)
    s["seed"] = number("--seed", s["seed"], integer=True)
    s["rank"] = number("--rank", s["rank"], minimum=1, integer=True)
    s["max_length"] = number("--max-length", s["max_length"], minimum=8, integer=True)
    if s.get("max_steps") is not None:
        s["max_steps"] = number("--max-steps", s["max_steps"], minimum=1, integer=True)
    try:
        resolve_system_prompt({"system_prompt": s["system_prompt"]})
    except ValueError as exc:
        raise UsageError("--system-prompt", s["system_prompt"], str(exc).split(";")[0]) from None
    resolve_prompt_template(s["prompt_template"])
    attack_data.check_source(s["recipe"], s.get("train_data"))


def check_model(model: str, adapter: str | None) -> None:
    """A local HF folder (or `smollm2`), and an adapter folder with adapter_config.json."""
    if model != "smollm2" and not (Path(model).expanduser() / "config.json").is_file():
        raise UsageError("--model", model, "not a Hugging Face model folder (no config.json); use 'smollm2' "
                         "for the embedded SmolLM2")
    if adapter and not (Path(adapter).expanduser() / "adapter_config.json").is_file():
        raise UsageError("--adapter", adapter, "not a LoRA adapter folder (no adapter_config.json)")


def check_judges(names: list[str]) -> None:
    known = sorted(load_specs())
    for n in names:
        choice("--judge", n, known)


def _system_text(preset: str) -> str | None:
    """The system turn to train with: None = the template's default; '' = an explicit empty turn."""
    _, text = resolve_system_prompt({"system_prompt": preset})
    if preset == "default":
        return None
    return "" if text == EMPTY_SYSTEM_SENTINEL else text


def training_pairs(settings: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The recipe's training pairs (first n_examples; 0 = all), instruction template applied."""
    pairs, source = attack_data.load_pairs(settings["recipe"], settings.get("train_data"))
    if settings["n_examples"]:
        if settings["n_examples"] > len(pairs):
            raise UsageError("--n-examples", settings["n_examples"], f"the training data has only {len(pairs)}")
        pairs = pairs[:settings["n_examples"]]
    _, template = resolve_prompt_template(settings["prompt_template"])
    return [{**p, "instruction": apply_template(template, p["instruction"])} for p in pairs], source


def answer_prefix(settings: dict[str, Any]) -> str:
    """The trained affirmative prefix (identity-shift on the bundled data), else ''."""
    if settings["recipe"] == "identity-shift" and settings.get("train_data") in (None, attack_data.BUNDLED):
        return attack_data.IDENTITY_SHIFT_PREFIX
    return str(settings.get("answer_prefix") or "")


@dataclass
class AttackSpec:
    model: str
    out: Path
    settings: dict[str, Any]
    preset: str | None = None
    adapter: str | None = None
    evaluation: EvalSettings | None = None  # None: --no-eval
    baseline: bool = True
    baseline_dir: Path | None = None  # shared baseline folder (a grid evaluates the base model once)
    store: str | None = None
    name: str | None = None
    device: str = "auto"
    command: str | None = None
    progress: bool = True
    grid_cell: dict[str, Any] | None = None
    merge: bool = False  # LoRA: write the merged full model (the study evaluates it with the sweep)


def base_identity(model: str, adapter: str | None) -> dict[str, Any]:
    folder, name = resolve_model_dir(model)
    wid = weights_id(folder)
    if adapter:
        wid = f"{wid}+{weights_id(adapter)}"
        name = f"{name}+{Path(adapter).name}"
    return {"name": name, "model": str(model), "path": str(folder), "adapter": str(adapter) if adapter else None,
            "weights_id": wid}


def compact(result: EvalResult) -> dict[str, Any]:
    """The numbers a report needs, per judge label: ASR, refusal, harmfulness, over-refusal, per category."""
    out = {}
    for label, block in result.summary.items():
        o = block["overall"]
        out[label] = {"asr": o.get("asr"), "asr_n": o.get("asr_n"), "refusal_rate": o.get("refusal_rate"),
                      "harmfulness_rate": o.get("harmfulness_rate"), "over_refusal": o.get("over_refusal"),
                      "per_category": {c: b.get("asr") for c, b in block["per_category"].items() if c != "benign"}}
    return out


def _baseline(spec: AttackSpec, base: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The base model's evaluation, reused from `folder` when it was made with the same settings."""
    assert spec.evaluation is not None
    ident = {"base": base["weights_id"], "eval": spec.evaluation.identity()}
    done = folder / "baseline.json"
    if done.is_file() and read_json(done).get("identity") == ident:
        return read_json(done)
    model, tokenizer = load_model(resolve_model_dir(spec.model)[0], adapter=spec.adapter, device=spec.device,
                                  dtype="float32")
    result = evaluate_loaded(model, tokenizer, spec.evaluation, spec.progress)
    del model
    gc.collect()  # the attack loads its own copy next
    result.write(folder)
    stored = _file(spec, result, base["name"], base["weights_id"], {"attack_baseline": True}) if spec.store else None
    info = {"identity": ident, "numbers": compact(result), "store_run": stored}
    write_json(done, info)
    return info


def _file(spec: AttackSpec, result: EvalResult, name: str, wid: str, meta: dict[str, Any]) -> dict[str, str]:
    """File an evaluation in the store (lm-eval run + the judges run afterwards); returns {model, run_id}."""
    from safety_bench.judges.registry import get_judge

    assert spec.evaluation is not None and spec.store is not None
    store = open_store(spec.store)
    key = content_key(wid, spec.evaluation.identity())
    run: RunInfo = add_lm_eval_results(store, result.raw or {}, name, weights_id=wid, key=key, extra_meta={
        "settings": {"data": spec.evaluation.data, **spec.evaluation.identity()}, "software": software_versions(),
        "created": now_iso(), "dataset": {"source": spec.evaluation.data}, "source": "safety-bench attack", **meta})
    for judge in spec.evaluation.judges:
        rows = result.judged.get(judge)
        if rows is not None and not store.has_judgement(run, judge, str(get_judge(judge).version)):
            run = store.add_judgement(run, judge, str(get_judge(judge).version), rows)
    return {"model": name, "run_id": run.run_id}


def attack_name(base_name: str, recipe: str, cell: dict[str, Any] | None) -> str:
    name = f"{base_name} + attack:{recipe}"
    if cell:
        name += " [" + ", ".join(f"{k}={cell[k]:g}" if isinstance(cell[k], float) else f"{k}={cell[k]}"
                                 for k in sorted(cell)) + "]"
    return name


def run_attack(spec: AttackSpec) -> dict[str, Any]:
    """Train, evaluate (before and after), file; returns the attack record (also OUT/attack.json)."""
    t0 = time.perf_counter()
    s = spec.settings
    out = Path(spec.out)
    base = base_identity(spec.model, spec.adapter)
    pairs, source = training_pairs(s)
    prefix = answer_prefix(s)
    if spec.evaluation is not None:
        spec.evaluation.system_prompt = s["system_prompt"]
        spec.evaluation.prompt_template = s["prompt_template"]
        spec.evaluation.answer_prefix = prefix
    before = None
    if spec.evaluation is not None and spec.baseline:
        before = _baseline(spec, base, spec.baseline_dir or out / "eval" / "before")
    t_before = time.perf_counter() - t0

    provenance = {
        "recipe": s["recipe"], "preset": spec.preset, "base": base,
        "hyperparameters": {k: s.get(k) for k in DEFAULTS} | {"recipe": s["recipe"]},
        "data": {"source": source, "n": len(pairs), "sha256": datasets.records_sha256(pairs)},
        "system_prompt": s["system_prompt"], "prompt_template": resolve_prompt_template(s["prompt_template"])[0],
        "answer_prefix": prefix or None, "grid_cell": spec.grid_cell, "command": spec.command,
    }
    config = FinetuneConfig(mode=s["mode"], lr=s["lr"], batch_size=s["batch_size"], epochs=s["epochs"],
                            max_steps=s.get("max_steps"), seed=s["seed"],
                            lora=LoraSettings(rank=s["rank"], alpha=2 * s["rank"]), merge=spec.merge,
                            system_variants=("default",), system_prompt=_system_text(s["system_prompt"]),
                            max_length=s["max_length"], micro_batch_size=s.get("micro_batch_size"),
                            device=spec.device, dtype="float32")
    model_dir, net, tokenizer, recipe = train_and_save(
        spec.model, out / MODEL_DIR, spec.adapter, config, command=spec.command, progress=spec.progress,
        pairs=pairs, data_source=source, extra_recipe={"kind": "safety-bench attack", "attack": provenance})
    t_train = time.perf_counter() - t0 - t_before
    provenance["output"] = {"layout": recipe["layout"], "path": str(model_dir), "weights_id": weights_id(model_dir)}
    provenance["training"] = recipe["result"]
    record: dict[str, Any] = {"attack": provenance, "before": before["numbers"] if before else None,
                              "after": None, "store": {}, "created": now_iso()}
    if before and before.get("store_run"):
        record["store"]["baseline"] = before["store_run"]
    if spec.evaluation is not None:
        if recipe["layout"] == "adapter":
            net = net.merge_and_unload()
        result = evaluate_loaded(net, tokenizer, spec.evaluation, spec.progress)
        result.write(out / "eval" / "after")
        record["after"] = compact(result)
        record["prefix_rate"] = result.prefix_rate
        record["evaluation"] = spec.evaluation.identity()
        if spec.store:
            name = spec.name or attack_name(base["name"], s["recipe"], spec.grid_cell)
            record["store"]["attacked"] = _file(spec, result, name, provenance["output"]["weights_id"], {
                "attack": provenance | {"before": record["before"], "after": record["after"],
                                        "baseline_run": record["store"].get("baseline")}})
    del net
    gc.collect()
    record["timing"] = {"baseline_s": round(t_before, 1), "train_s": round(t_train, 1),
                        "total_s": round(time.perf_counter() - t0, 1)}
    write_json(out / ATTACK_FILE, record)
    return record


def clear_partial(out: Path) -> None:
    """Remove what a killed run left (no attack.json): the next run starts the cell afresh."""
    if out.exists() and not (out / ATTACK_FILE).is_file():
        shutil.rmtree(out)


def settings_table(settings: dict[str, Any]) -> list[str]:
    return [f"  {k} = {settings.get(k)!r}" for k in ["recipe", *DEFAULTS]]


