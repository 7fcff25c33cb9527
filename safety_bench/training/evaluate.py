"""A quick, direct refusal check of a model (optionally with an adapter): greedy answers to the bundled
harmful sample prompts, benign prompts and borderline-safe validation prompts (harmless requests that only
sound harmful, reported per kind), judged by the keyword and refusal-heuristic judges.

This is the sanity check that `align` worked (and what docs/training.md reports); the full evaluation
goes through lm-eval (`safety-bench eval`, `safety-bench compare`).
"""

from __future__ import annotations

from pathlib import Path

from safety_bench.data import bundled_benign_prompts, sample_prompts
from safety_bench.harness.system_prompts import PRESETS
from safety_bench.judges.keyword import heuristic_is_refusal, paper_is_refusal
from safety_bench.training import core
from safety_bench.training.align import load_model, resolve_model_dir
from safety_bench.training.datasets import BORDERLINE_KINDS, borderline_validation_prompts


def refusal_check(model_dir: str | Path, adapter: str | Path | None = None, system: str = "default",
                  max_new_tokens: int = 48, batch_size: int = 16, harmful_limit: int | None = None,
                  benign_limit: int | None = None, device: str = "auto", progress: bool = True,
                  borderline: bool = True, borderline_limit: int | None = None) -> dict:
    """Keyword ASR and refusal rates (fractions) on the sample harmful prompts, refusal rates on the
    benign prompts and on the borderline-safe validation split (over-refusal, also per kind), with every
    answer in `records`."""

    if system not in core.SYSTEM_VARIANTS:
        if system not in PRESETS:
            raise ValueError(f"unknown system prompt preset {system!r}")
        system_text: str | None = PRESETS[system]
    else:
        system_text = core.SYSTEM_VARIANTS[system]
    folder, name = resolve_model_dir(model_dir)
    model, tokenizer = load_model(folder, adapter=adapter, device=device, merge=True)
    harmful = sample_prompts()[:harmful_limit] if harmful_limit else sample_prompts()
    benign = bundled_benign_prompts()[:benign_limit] if benign_limit else bundled_benign_prompts()
    edge = []
    if borderline:
        edge = borderline_validation_prompts()
        edge = edge[:borderline_limit] if borderline_limit else edge
    prompts = [{**p, "group": "harmful"} for p in harmful] + [{**p, "group": "benign"} for p in benign] + \
        [{**p, "group": "borderline"} for p in edge]
    texts = [core.prompt_text(tokenizer, p["instruction"], system_text) for p in prompts]
    answers = core.generate_greedy(model, tokenizer, texts, max_new_tokens, batch_size, progress, desc="answering")
    records = []
    for p, (text, finished) in zip(prompts, answers, strict=True):
        records.append({**p, "response": text, "finished": finished,
                        "refused_keyword": paper_is_refusal(text), "refused_heuristic": heuristic_is_refusal(text)})

    def rate(rows: list[dict], key: str) -> float:
        return round(sum(r[key] for r in rows) / len(rows), 4) if rows else float("nan")

    h = [r for r in records if r["group"] == "harmful"]
    b = [r for r in records if r["group"] == "benign"]
    e = [r for r in records if r["group"] == "borderline"]
    kinds = [k for k in BORDERLINE_KINDS if any(r.get("kind") == k for r in e)]
    kinds += sorted({r.get("kind", "other") for r in e} - set(kinds))

    def over(rows: list[dict]) -> dict:
        return {"n": len(rows), "refusal_rate_keyword": rate(rows, "refused_keyword"),
                "refusal_rate_heuristic": rate(rows, "refused_heuristic")}

    result = {
        "model": name, "adapter": str(adapter) if adapter else None, "system": system,
        "max_new_tokens": max_new_tokens,
        "harmful": {"n": len(h), "asr_keyword": round(1 - rate(h, "refused_keyword"), 4),
                    "asr_heuristic": round(1 - rate(h, "refused_heuristic"), 4)},
        "benign": {"n": len(b), "refusal_rate_keyword": rate(b, "refused_keyword"),
                   "refusal_rate_heuristic": rate(b, "refused_heuristic")},
    }
    if borderline:
        result["borderline"] = {**over(e), "by_kind": {k: over([r for r in e if r.get("kind", "other") == k])
                                                       for k in kinds}}
    result["records"] = records
    return result
