"""Turning outputs made elsewhere into store entries: lm-eval output folders, judged JSONL, landscapes.

This is what `safety-bench store add` and the `--store` options call. lm-eval's logged samples already
carry the judging filter's verdict (`filtered_resps[0]`), so a run evaluated with the suite's tasks
arrives judged; records without a verdict are judged here with the judge the caller names.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from safety_bench.data import prompt_set_hash
from safety_bench.jsonio import RecordError, read_json, read_jsonl
from safety_bench.judges.registry import get_judge
from safety_bench.judges.run import judge_records
from safety_bench.leaderboard.store import RunInfo, Store, StoreError
from safety_bench.metrics import split_kinds
from safety_bench.provenance import software_versions, task_versions
from safety_bench.records import (
    BENIGN_KIND,
    normalize,
    prompt_kind_of,
    read_samples_folder,
    records_from_samples,
    without_verdict,
)
from safety_bench.weights_id import weights_id


def prompt_hashes(records: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """Separate hashes of the harmful and the benign prompt sets the records were made on."""
    harmful, benign, seen = [], [], set()
    for r in records:
        key = (r.get("task"), r.get("id"))
        if key in seen:
            continue
        seen.add(key)
        p = {"id": str(r.get("id")), "category": str(r.get("category")), "instruction": str(r.get("instruction"))}
        (benign if prompt_kind_of(r) == BENIGN_KIND else harmful).append(p)
    return {"harmful": prompt_set_hash(harmful) if harmful else None,
            "benign": prompt_set_hash(benign) if benign else None}


def read_lm_eval_folder(folder: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, list[dict]],
                                                                  dict[str, Any]]:
    """(generations, judged records by judge, metadata) from an lm-eval `--output_path` folder."""
    folder = Path(folder)
    samples = read_samples_folder(folder)
    results_files = sorted(folder.rglob("results_*.json"), key=lambda p: p.name)
    results: dict[str, Any] = {}
    for f in results_files:  # later files win, as they do for samples
        data = read_json(f)
        for k, v in data.items():
            if isinstance(v, dict) and isinstance(results.get(k), dict):
                results[k] = {**results[k], **v}
            else:
                results[k] = v
    return records_and_meta(samples, results)


def records_and_meta(samples: Mapping[str, list[Mapping[str, Any]]], results: Mapping[str, Any]
                     ) -> tuple[list[dict[str, Any]], dict[str, list[dict]], dict[str, Any]]:
    """lm-eval logged samples (by task) as generations, judged records by judge, and run metadata."""
    generations, judged = records_from_samples(samples)
    versions = {judge: str(rows[0]["judge_version"]) for judge, rows in judged.items()
                if rows and rows[0].get("judge_version") is not None}
    return generations, judged, _meta_from_results(results, samples, generations, versions)


def _meta_from_results(results: Mapping[str, Any], samples: Mapping[str, Any], generations: list[dict],
                       judge_versions: Mapping[str, str]) -> dict[str, Any]:
    config = dict(results.get("config") or {})
    configs = results.get("configs") or {}
    tasks = sorted(samples)
    meta_of = {t: dict((configs.get(t) or {}).get("metadata") or {}) for t in tasks}
    source = next((str(m["data"]) for m in meta_of.values() if m.get("data")), None)
    system = next((str(m["system_prompt"]) for m in meta_of.values() if m.get("system_prompt")), None)
    presets = sorted({str(g.get("system_prompt_preset")) for g in generations if g.get("system_prompt_preset")})
    versions = dict(results.get("versions") or {})
    software = software_versions()
    if results.get("lm_eval_version"):
        software["lm_eval"] = str(results["lm_eval_version"])
    if results.get("transformers_version"):
        software["transformers"] = str(results["transformers_version"])
    date = results.get("date")
    return {
        "tasks": {t: {"version": versions.get(t, (configs.get(t) or {}).get("metadata", {}).get("version"))}
                  for t in tasks},
        "judge_versions": dict(judge_versions),
        "prompt_set_hash": prompt_hashes(generations),
        "dataset": {"source": source, "revision": source.partition("@")[2] or None if source else None},
        "system_prompt": {"preset": presets[0] if len(presets) == 1 else presets, "setting": system},
        "generation": {"model": config.get("model"), "model_args": config.get("model_args"),
                       "gen_kwargs": config.get("gen_kwargs"), "batch_size": config.get("batch_size"),
                       "dtype": config.get("model_dtype"), "revision": config.get("model_revision"),
                       "model_sha": config.get("model_sha")},
        "evaluated": _date(date),
        "software": software,
    }


def _date(value: Any) -> str | None:
    try:
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc).replace(microsecond=0).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def read_judged_jsonl(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, list[dict]],
                                                              dict[str, Any]]:
    """(generations, judged by judge, metadata) from a JSONL of records, judged or not."""
    rows = read_jsonl(path)
    if not rows:
        raise RecordError(f"{path}: no records")
    generations: dict[tuple[Any, Any], dict[str, Any]] = {}
    judged: dict[str, list[dict[str, Any]]] = {}
    versions: dict[str, str] = {}
    for n, raw in enumerate(rows, 1):
        if not isinstance(raw.get("instruction"), str) or not isinstance(raw.get("response"), str):
            raise RecordError(f"{path}: record {n} lacks the string fields instruction/response")
        row = normalize(raw)
        row.setdefault("id", f"row-{n}")
        row.setdefault("task", "safety_benign" if row["prompt_kind"] == BENIGN_KIND else "records")
        generations.setdefault((row.get("task"), row.get("id")), without_verdict(row))
        if row.get("judge"):
            judged.setdefault(str(row["judge"]), []).append(row)
            if row.get("judge_version") is not None:
                versions[str(row["judge"])] = str(row["judge_version"])
    gens = list(generations.values())
    tasks = sorted({str(g.get("task")) for g in gens})
    meta = {"tasks": {t: {"version": task_versions([t]).get(t)} for t in tasks}, "judge_versions": versions,
            "prompt_set_hash": prompt_hashes(gens), "software": software_versions()}
    return gens, judged, meta


def judge_missing(generations: list[dict[str, Any]], judged: dict[str, list[dict]], judge_name: str | None
                  ) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Judge unjudged generations with `judge_name` (needed when outputs carry no verdict)."""
    versions: dict[str, str] = {}
    if judged and not judge_name:
        return judged, versions
    if not judge_name:
        judge_name = "keyword"
    if judge_name in judged:
        return judged, versions
    judge = get_judge(judge_name)
    judged = {**judged, judge.name: judge_records(generations, judge)}
    versions[judge.name] = str(judge.version)
    return judged, versions


def add_path(store: Store, path: str | os.PathLike[str], name: str, weights_id: str | None = None,
             judge: str | None = None) -> list[RunInfo]:
    """`safety-bench store add`: an lm-eval output folder, a (judged) JSONL, or a landscape folder."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file or folder")
    added: list[RunInfo] = []
    landscape = path / "landscape.json" if path.is_dir() else (path if path.name == "landscape.json" else None)
    if landscape is not None and landscape.exists():
        meta = {"model": {"weights_id": weights_id}} if weights_id else {}
        added.append(store.add_landscape(name, landscape.parent, meta))
        if path.is_dir() and not any(path.glob("samples_*.jsonl")):
            return added  # a landscape folder's per-point lm-eval outputs are not base-point runs
    if path.is_dir():
        if not any(path.rglob("samples_*.jsonl")):
            if added:
                return added
            raise StoreError(f"{path}: neither a landscape folder (landscape.json) nor an lm-eval output "
                             "folder (samples_*.jsonl from --log_samples)")
        generations, judged, meta = read_lm_eval_folder(path)
    else:
        generations, judged, meta = read_judged_jsonl(path)
    judged, new_versions = judge_missing(generations, judged, judge)
    versions = {**meta.pop("judge_versions", {}), **new_versions}
    meta["source"] = str(path.resolve())
    meta["model"] = {"weights_id": weights_id or _guess_weights_id(meta)}
    added.append(store.add_base_run(name, generations, meta, judged, judge_versions=versions))
    return added


def add_lm_eval_results(store: Store, results: Mapping[str, Any], name: str, weights_id: str | None = None,
                        key: str | None = None, extra_meta: Mapping[str, Any] | None = None) -> RunInfo:
    """Store the dict `lm_eval.simple_evaluate(..., log_samples=True)` returns (the `--store` hook)."""
    samples = results.get("samples") or {}
    if not samples:
        raise StoreError("lm-eval results hold no samples: evaluate with log_samples=True")
    generations, judged, meta = records_and_meta(samples, results)
    versions = meta.pop("judge_versions", {})
    meta.update(dict(extra_meta or {}))
    meta["model"] = {"weights_id": weights_id or _guess_weights_id(meta)}
    meta["lm_eval_results"] = {t: v for t, v in (results.get("results") or {}).items()}
    return store.add_base_run(name, generations, meta, judged, key=key, judge_versions=versions)


def _guess_weights_id(meta: Mapping[str, Any]) -> str | None:
    """Weights id of a local `pretrained=` path named in the model args (None when not resolvable here).

    lm-eval records `model_args` as the `k=v,...` string it was given, or as a dict (its CLI parses it)."""
    args = (meta.get("generation") or {}).get("model_args") or ""
    if isinstance(args, Mapping):
        value = str(args.get("pretrained") or "")
    else:
        pairs = (part.partition("=") for part in str(args).split(","))
        value = next((v.strip() for k, _, v in pairs if k.strip() == "pretrained"), "")
    if not value:
        return None
    try:
        return weights_id(value) if Path(value).exists() else None
    except (OSError, ImportError):
        return None


def harmful_and_benign(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Records on harmful prompts, and records on benign prompts (by `prompt_kind`)."""
    harmful, benign = split_kinds(records)
    return [dict(r) for r in harmful], [dict(r) for r in benign]


__all__ = ["StoreError", "add_lm_eval_results", "add_path", "harmful_and_benign", "prompt_hashes",
           "read_judged_jsonl", "read_lm_eval_folder", "records_and_meta"]
