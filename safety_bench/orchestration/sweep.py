"""The landscape sweep: one loaded model, moved in place from grid point to grid point.

Per point: perturb in place → `lm_eval.simple_evaluate` with the live model object and a TaskManager
built once → judge the logged responses with every requested judge (generated once, judged many
times) → restore. Each finished point is written atomically under `OUT/points/<point-id>/` (a folder
is renamed into place only when all its files are complete), so a sweep killed at any moment resumes
by running only the missing points. `OUT/config.json` holds the configuration and its hash: a
different configuration in the same folder is refused rather than mixed. `landscape.json` is built
from the point files only, so a resumed or merged sweep gives the same file as an uninterrupted one
(timing fields, kept under `timing`, aside).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from safety_bench.data import prompt_set_hash
from safety_bench.harness import task_manager
from safety_bench.harness.capability import capability_task_manager, evaluate_capability
from safety_bench.harness.coherence import score_answers
from safety_bench.harness.lm_eval_compat import GenerationTimer, repeated_runs, set_batch_size
from safety_bench.jsonio import read_jsonl, write_json, write_jsonl
from safety_bench.judges.registry import get_judge, spec_versions
from safety_bench.judges.run import judge_records
from safety_bench.landscape.capability import TOLERANCE as BASIN_TOLERANCE
from safety_bench.landscape.capability import basins
from safety_bench.landscape.capability_plots import plot_capability
from safety_bench.landscape.coherence import coherence_section, point_coherence
from safety_bench.landscape.directions import DEFAULT_EXCLUDE, parse_patterns
from safety_bench.landscape.grid import Grid, Point, build_grid
from safety_bench.landscape.plots import plot_landscape
from safety_bench.landscape.visage import summarize_visage
from safety_bench.metrics import percent, summarize_group
from safety_bench.orchestration.generation import auto_batch_size, kv_cache_kwargs, per_sequence_bytes
from safety_bench.provenance import model_identity, software_versions
from safety_bench.records import records_from_samples
from safety_bench.validation import UserError
from safety_bench.weights_id import weights_id

log = logging.getLogger("safety_bench.landscape")

FORMAT = "safety-bench/landscape/v1"
# task metadata keys the sweep sets from its own settings (key -> the CLI flag that sets it)
RESERVED_METADATA = {"data": "--data", "system_prompt": "--system-prompt", "judge": "--judge",
                     "prompt_template": "--prompt-template", "prompt_format": "--no-chat-template"}


class ConfigMismatch(UserError, RuntimeError):
    """An output folder holds a sweep of a different configuration."""


@dataclass
class SweepConfig:
    """Everything that determines a landscape's numbers (hashed), plus execution settings (not hashed)."""

    model: str
    grid: Grid
    task: str = "safety_landscape_mini"
    judges: list[str] = field(default_factory=lambda: ["keyword"])
    data: str = "hexphi"  # the real benchmark, as everywhere; the demo and tests pass "sample"
    system_prompt: str = "default"
    max_gen_toks: int = 64
    dtype: str = "auto"
    limit: int | None = None
    towards: str | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=lambda: ["norm"])
    name: str | None = None
    # capability landscape: an lm-eval task run at every point on the same perturbed weights (hashed when set)
    capability_task: str | None = None
    capability_limit: int | None = None
    coherence: bool = True  # score every point's answers at the origin (landscape.json `coherence`)
    coherence_prompts: int | None = None  # score only this many prompts' answers per point (a fixed subset)
    chat_template: bool = True  # False: plain text completion (task_hooks.COMPLETION_FORMAT)
    prompt_template: str | None = None  # jailbreak wrapper: bundled name or file (harness/prompt_templates.py)
    # execution only (not part of the hash)
    batch_size: int | str = "auto"  # see orchestration/generation.py
    kv_cache: str = "auto"  # auto | static | dynamic (see orchestration/generation.py)
    device: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    backend: str = "hf"  # "vllm": perturbed inside the engine (same directions); execution only
    preset: str | None = None  # the preset the settings came from (recorded in config.json, not hashed)

    def __post_init__(self) -> None:
        taken = [f"{key!r} (set {flag} instead)" for key, flag in RESERVED_METADATA.items() if key in self.metadata]
        if taken:
            raise ValueError(f"task metadata may not set {', '.join(taken)}: the landscape records those "
                             "settings in its configuration, and metadata would override them unrecorded")

    def identity(self, weights: str, towards_weights: str | None) -> dict[str, Any]:
        """The hashed part: a changed value here means a different landscape."""
        return {
            "format": FORMAT, "model_weights": weights, "grid": self.grid.as_dict(), "task": self.task,
            "judges": list(self.judges), "data": self.data, "system_prompt": self.system_prompt,
            "max_gen_toks": self.max_gen_toks, "dtype": self.dtype, "limit": self.limit,
            "towards_weights": towards_weights, "include": list(self.include), "exclude": list(self.exclude),
            "metadata": dict(sorted(self.metadata.items())),
            # only when set, so the hash of a safety-only sweep is what it always was
            **({"capability_task": self.capability_task, "capability_limit": self.capability_limit}
               if self.capability_task else {}),
            **self._optional_identity(),
        }

    def _optional_identity(self) -> dict[str, Any]:
        """Settings hashed only when they differ from their default, so earlier sweeps keep their hash."""
        extra: dict[str, Any] = {}
        if not self.coherence:
            extra["coherence"] = False
        elif self.coherence_prompts:
            extra["coherence_prompts"] = self.coherence_prompts
        if not self.chat_template:
            extra["chat_template"] = False
        if self.system_prompt.startswith("file:"):  # the file's text, so an edited file is another landscape
            from safety_bench.harness.prompt_templates import template_hash
            from safety_bench.harness.system_prompts import read_prompt_file

            extra["system_prompt_sha256"] = template_hash(read_prompt_file(self.system_prompt[len("file:"):]))
        if self.prompt_template:
            from safety_bench.harness.prompt_templates import load_template, template_hash

            extra["prompt_template"] = {"name": self.prompt_template,
                                        "sha256": template_hash(load_template(self.prompt_template))}
        return extra

    def task_metadata(self) -> dict[str, Any]:
        """The lm-eval task metadata of this sweep: what its own settings imply, plus the user's `metadata`
        (which may not set those; __post_init__ checks)."""
        meta: dict[str, Any] = {"data": self.data, "system_prompt": self.system_prompt, "judge": self.judges[0]}
        if self.prompt_template:
            meta["prompt_template"] = self.prompt_template
        if not self.chat_template:
            meta["prompt_format"] = "completion"
        return {**meta, **self.metadata}


GRID_KEYS = ("grid", "directions", "seed", "range", "points", "steps", "extra", "beta_range", "beta_points")
CONFIG_KEYS = ("task", "judges", "data", "system_prompt", "max_gen_toks", "dtype", "limit", "towards", "include",
               "exclude", "batch_size", "kv_cache", "device", "metadata", "backend", "capability_task",
               "capability_limit", "coherence", "coherence_prompts", "chat_template", "prompt_template", "preset")


def config_from_settings(model: str, settings: Mapping[str, Any], name: str | None = None) -> SweepConfig:
    """A sweep configured by plain data (the `sweep:` block of a nightly YAML): the keys are the landscape
    command's flags without dashes (`grid`, `directions`, `points`, `task`, `judges`, `max_gen_toks`, ...)."""
    if settings.get("preset"):  # a landscape preset's settings under the block's own (which win)
        from safety_bench.orchestration.presets import get_preset

        settings = {**get_preset(str(settings["preset"]), "landscape", "preset").settings, **settings}
    unknown = sorted(set(settings) - set(GRID_KEYS) - set(CONFIG_KEYS) - {"enabled"})
    if unknown:
        raise ValueError(f"unknown sweep setting(s) {', '.join(unknown)} "
                         f"(valid: {', '.join(GRID_KEYS + CONFIG_KEYS)})")
    g = {k: settings[k] for k in GRID_KEYS if settings.get(k) is not None}
    grid = build_grid(str(g.pop("grid", "1d_random")), range_=float(g.pop("range", 0.5)),
                      **{k: (float(v) if k == "beta_range" else int(v)) for k, v in g.items()})
    judges = settings.get("judges") or ["keyword"]
    fields = {k: settings[k] for k in CONFIG_KEYS if settings.get(k) is not None and k != "judges"}
    for key in ("max_gen_toks", "limit", "capability_limit", "coherence_prompts"):
        if key in fields:
            fields[key] = int(fields[key])
    if str(fields.get("batch_size", "auto")).isdigit():
        fields["batch_size"] = int(fields["batch_size"])
    if isinstance(fields.get("metadata"), str):
        fields["metadata"] = json.loads(fields["metadata"])
    fields["include"] = list(parse_patterns(fields.get("include")))
    fields["exclude"] = list(parse_patterns(fields.get("exclude"), DEFAULT_EXCLUDE))
    return SweepConfig(model=model, grid=grid, judges=[str(j) for j in ([judges] if isinstance(judges, str)
                                                                         else judges)], name=name, **fields)


def config_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------- output folder

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def point_dir(out: Path, point_id: str) -> Path:
    return out / "points" / _safe(point_id)


def is_done(out: Path, point_id: str) -> bool:
    return (point_dir(out, point_id) / "point.json").is_file()


def check_or_write_config(out: Path, identity: dict[str, Any], digest: str, extra: dict[str, Any]) -> None:
    """Refuse a folder holding another configuration; record ours otherwise."""
    path = out / "config.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("config_hash") != digest:
            old = stored.get("config", {})
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise ConfigMismatch(
                f"{out} holds a sweep of a different configuration (differs in: {', '.join(diff) or '?'}); "
                "use another --out folder, or delete this one to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"config_hash": digest, "config": identity, **extra})


def clean_partial(out: Path) -> None:
    """Remove temp folders a killed run left behind (finished points are complete folders)."""
    points = out / "points"
    if points.is_dir():
        for tmp in points.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def write_point(out: Path, point_id: str, files: dict[str, Any]) -> None:
    """Write a point's files into a temp folder and rename it into place: complete or absent."""
    final = point_dir(out, point_id)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, content in files.items():
        if name.endswith(".jsonl"):
            write_jsonl(tmp / name, content)
        else:
            write_json(tmp / name, content)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


# ---------------------------------------------------------------------- one point

def prompt_hash(records: Sequence[dict[str, Any]]) -> str:
    return prompt_set_hash([{"id": str(r["id"]), "category": str(r["category"]),
                             "instruction": str(r["instruction"])} for r in records])


class Sweeper:
    """Holds the live model, the task index and the judges; runs points."""

    def __init__(self, config: SweepConfig, lm: Any | None = None, task_manager: Any | None = None) -> None:
        self.config = config
        self.lm = lm if lm is not None else load_model(config)
        self.tm = task_manager if task_manager is not None else build_task_manager(config)
        self.judges = {name: get_judge(name) for name in config.judges}
        self.capability_tm = (capability_task_manager(config.capability_task, self.tm)
                              if config.capability_task else None)
        self.timer = GenerationTimer(self.lm)
        self.gen_kwargs: dict[str, Any] = {"max_gen_toks": config.max_gen_toks}
        if config.backend == "hf":
            self._fit_generation_to_device()
        self.warm_directions()

    def _fit_generation_to_device(self) -> None:
        """Resolve `auto` batch size and KV cache for the HF backend, and keep the batch's KV cache out of
        the perturber's direction cache."""
        cfg, model = self.config, self.lm.model
        self.gen_kwargs.update(kv_cache_kwargs(model, cfg.kv_cache))
        batch = cfg.batch_size
        if batch == "auto":
            batch = min(auto_batch_size(model, cfg.max_gen_toks), max(1, count_prompts(cfg)))
        set_batch_size(self.lm, int(batch))
        if next(model.parameters()).device.type == "cuda":
            self.lm.perturber.reserve_bytes = int(batch) * per_sequence_bytes(model, cfg.max_gen_toks)
        log.info("landscape: batch %d, %s KV cache", int(batch),
                 self.gen_kwargs.get("cache_implementation", "dynamic"))

    def warm_directions(self) -> None:
        """Generate (and cache, where memory allows) every direction of the grid now, once: otherwise the
        first point of each direction pays for it and its timing misleads."""
        warm = getattr(getattr(self.lm, "perturber", None), "warm", None)
        seeds = self.config.grid.seeds()
        if callable(warm) and seeds:
            start = time.perf_counter()
            warm(seeds)
            log.info("landscape: %d direction(s) ready in %.1f s", len(seeds), time.perf_counter() - start)

    def run_point(self, point: Point) -> dict[str, Any]:
        """Evaluate one point and return its files (not yet written)."""
        import lm_eval

        cfg = self.config
        t0 = time.perf_counter()
        self.lm.move_to(point.coefficients)
        t1 = time.perf_counter()
        self.timer.seconds = 0.0
        results = lm_eval.simple_evaluate(
            model=self.lm, tasks=[cfg.task], task_manager=self.tm, log_samples=True,
            apply_chat_template=cfg.chat_template, batch_size=self.lm.batch_size, limit=cfg.limit,
            gen_kwargs=dict(self.gen_kwargs), bootstrap_iters=0, use_cache=None,
            random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
        t2 = time.perf_counter()
        generate_s = self.timer.seconds
        records, by_filter = records_from_samples(results.get("samples") or {})
        contexts = _contexts(results.get("samples") or {})
        judged: dict[str, list[dict[str, Any]]] = {}
        asr: dict[str, float | None] = {}
        for name, judge in self.judges.items():
            # lm-eval's judging filter already ran the first judge: its verdicts are reused, not redone
            judged[name] = by_filter.get(name) or judge_records(records, judge)
            asr[name] = percent(summarize_group(judged[name])["asr"])
        t3 = time.perf_counter()
        capability = (evaluate_capability(self.lm, self.capability_tm, cfg.capability_task, cfg.capability_limit)
                      if cfg.capability_task else None)
        t3c = time.perf_counter()
        self.lm.restore()
        t4 = time.perf_counter()
        results.pop("samples", None)
        point_info = {
            "id": point.id, "coords": list(point.coords),
            "coefficients": {str(k): v for k, v in point.coefficients.items()},
            "asr": asr, "n": len(records), "prompt_set_hash": prompt_hash(records),
            "judge_versions": {name: str(getattr(judge, "version", "")) for name, judge in self.judges.items()},
            "timing": {"perturb_s": t1 - t0, "evaluate_s": t2 - t1, "generate_s": generate_s,
                       "judge_s": t3 - t2, "capability_s": t3c - t3, "restore_s": t4 - t3c},
        }
        files: dict[str, Any] = {"results.json": json.loads(json.dumps(results, default=str))}
        if capability is not None:
            point_info["capability"] = {k: capability[k] for k in ("task", "metric", "value", "n")}
            files["capability_results.json"] = json.loads(json.dumps(capability["results"], default=str))
        files["samples.jsonl"] = records
        if cfg.coherence:  # the rendered prompts, for scoring the answers at the origin later
            files["contexts.jsonl"] = [{"id": r["id"], "context": contexts.get(str(r["id"]), "")} for r in records]
        for name, rows in judged.items():
            files[f"judged_{_safe(name)}.jsonl"] = rows
        files["point.json"] = point_info  # written last in dict order; completeness comes from the rename
        return files

    def _scoring_batch_cap(self, contexts: set[str]) -> int | None:
        """A batch size for scoring whose logits (batch x sequence x vocabulary, fp32) fit SCORING_LOGITS_BYTES
        (None: not an HF model, no cap). Generation's batch can be far larger: it keeps one position's logits."""
        vocab = getattr(getattr(getattr(self.lm, "model", None), "config", None), "vocab_size", None)
        if self.config.backend != "hf" or not isinstance(vocab, int):
            return None
        encode = getattr(self.lm, "tok_encode", None)
        longest = max((len(encode(c)) for c in contexts), default=0) if callable(encode) else 512
        sequence = self.config.max_gen_toks + longest  # the longest prompt and a full-length answer
        return max(1, SCORING_LOGITS_BYTES // (2 * 4 * sequence * vocab))

    def score_coherence(self, out: Path, points: Sequence[Point]) -> None:
        """Score the answers of every point lacking `coherence.json`, at the origin, in one batched call."""
        todo = [p for p in points if is_done(out, p.id) and not (point_dir(out, p.id) / COHERENCE_FILE).is_file()]
        if not todo:
            return
        start = time.perf_counter()
        self.lm.move_to({})  # the unperturbed model (a no-op after a point's restore)
        pairs: list[tuple[str, str]] = []
        spans: list[tuple[Point, list[str], int, int]] = []
        chosen: set[str] | None = None
        for point in todo:
            folder = point_dir(out, point.id)
            answers = [(str(r["id"]), str(r.get("response", ""))) for r in read_jsonl(folder / "samples.jsonl")]
            if self.config.coherence_prompts:
                chosen = chosen or coherence_subset([pid for pid, _ in answers], self.config.coherence_prompts)
                answers = [(pid, text) for pid, text in answers if pid in chosen]
            ctx_path = folder / "contexts.jsonl"
            contexts = {str(r["id"]): str(r["context"]) for r in read_jsonl(ctx_path)} if ctx_path.is_file() else {}
            first = len(pairs)
            pairs += [(contexts.get(pid) or "", text) for pid, text in answers]
            spans.append((point, [text for _, text in answers], first, len(pairs)))
        batch = getattr(self.lm, "batch_size", None)
        cap = self._scoring_batch_cap({ctx for ctx, _ in pairs})
        if isinstance(batch, int) and cap and cap < batch:
            set_batch_size(self.lm, cap)  # a forward returns logits for every position: bound their memory
        try:
            scores = score_answers(self.lm, pairs)
        finally:
            if isinstance(batch, int) and cap and cap < batch:
                set_batch_size(self.lm, batch)
        seconds = time.perf_counter() - start
        for point, texts, lo, hi in spans:
            info = point_coherence(scores[lo:hi], texts)
            info["score_s"] = seconds / len(todo)  # the batched call's time, shared equally
            write_json(point_dir(out, point.id) / COHERENCE_FILE, info)
        log.info("landscape: coherence of %d point(s) scored at the origin in %.1f s", len(todo), seconds)


COHERENCE_FILE = "coherence.json"
SCORING_LOGITS_BYTES = 2 * 2**30  # fp32 logits (and their log-softmax) of one scoring batch stay under this


def coherence_subset(ids: Sequence[str], n: int) -> set[str]:
    """The `n` prompts whose answers coherence scores at every point: fixed by the ids alone (the smallest
    sha256), so every point, a resumed run and another machine pick the same ones, spread over categories."""
    return set(sorted(set(ids), key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())[:n])


def _contexts(samples: Mapping[str, Any]) -> dict[str, str]:
    """Each document's rendered prompt (the context lm-eval generated from), by document id."""
    out: dict[str, str] = {}
    for rows in samples.values():
        for sample in rows:
            doc = sample.get("doc") or {}
            args = sample.get("arguments") or []
            first = args[0] if args else None
            if isinstance(first, dict):  # serialised form {"arg_0": ..., "arg_1": ...}
                first = list(first.values())
            if first:
                out[str(doc.get("id", sample.get("doc_id")))] = str(first[0])
    return out


def load_model(config: SweepConfig, engine_args: dict[str, Any] | None = None) -> Any:
    """The live model: a `perturbed` lm-eval model at the origin that knows every seed of the grid.
    `engine_args` go to the vLLM engine (e.g. tensor_parallel_size for a Ray worker holding several GPUs)."""
    import torch

    from safety_bench.harness.perturbed_hf import PerturbedHFLM

    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    seeds = config.grid.seeds()
    if config.backend == "vllm":
        from safety_bench.harness.perturbed_vllm import PerturbedVLLM

        return PerturbedVLLM(pretrained=config.model, dtype=config.dtype, batch_size="auto",
                             seed=seeds[0] if seeds else 0, seed2=seeds[1] if len(seeds) > 1 else None,
                             extra_seeds=seeds, towards=config.towards,
                             include="|".join(config.include) or None, exclude="|".join(config.exclude) or "none",
                             **(engine_args or {}))
    return PerturbedHFLM(pretrained=config.model, device=device, dtype=config.dtype,
                         batch_size=1 if config.batch_size == "auto" else config.batch_size,  # auto: in Sweeper
                         seed=seeds[0] if seeds else 0,
                         seed2=seeds[1] if len(seeds) > 1 else None, extra_seeds=seeds,
                         towards=config.towards, include="|".join(config.include) or None,
                         exclude="|".join(config.exclude) or "none")


def count_prompts(config: SweepConfig) -> int:
    """Prompts answered at every point (placeholders of missing categories not counted)."""
    loaded = build_task_manager(config).load([config.task])
    n = 0
    for task in loaded["tasks"].values():
        docs = [d for d in task.eval_docs if not d.get("missing_category")]
        n += min(len(docs), config.limit) if config.limit else len(docs)
    return n


def build_task_manager(config: SweepConfig) -> Any:
    # lm-eval's judging filter runs the first requested judge; the sweep reuses its verdicts
    return task_manager(config.task_metadata())


# ---------------------------------------------------------------------- whole sweeps

def _identity(config: SweepConfig) -> tuple[dict[str, Any], str, dict[str, Any]]:
    model = model_identity(config.model, config.name, config.dtype)
    tid = weights_id(config.towards) if config.towards else None
    identity = config.identity(model["weights_id"], tid)
    identity["judge_versions"] = spec_versions(config.judges)  # v1 and v2 points never mix on resume
    return identity, config_hash(identity), model


@dataclass
class SweepPlan:
    """A sweep's folder checked and prepared: its identity, this share's points and the ones still to run."""

    identity: dict[str, Any]
    digest: str
    model: dict[str, Any]
    points: list[Point]
    pending: list[Point]


def plan_sweep(config: SweepConfig, out: Path, shard: tuple[int, int] = (1, 1)) -> SweepPlan:
    """Check (or record) the folder's configuration, drop partial points, list the missing ones. Shared by
    every executor, so resume means the same thing whoever runs the points."""
    identity, digest, model = _identity(config)
    check_or_write_config(out, identity, digest, {"model": model, "towards": config.towards,
                                                  **({"preset": config.preset} if config.preset else {})})
    clean_partial(out)
    points = config.grid.shard(*shard)
    pending = [p for p in points if not is_done(out, p.id)]
    log.info("landscape: %d points in this share, %d done, %d to run", len(points), len(points) - len(pending),
             len(pending))
    return SweepPlan(identity, digest, model, points, pending)


def finish_if_complete(out: Path, config: SweepConfig, plan: SweepPlan) -> dict[str, Any] | None:
    """The landscape when every grid point is in `out` (else None: other shards still to come)."""
    missing = [p.id for p in config.grid.points() if not is_done(out, p.id)]
    if missing:
        log.info("landscape: %d points of the grid are not in %s yet (other shards?)", len(missing), out)
        return None
    return finish(out, config, plan.identity, plan.digest, plan.model)


@contextmanager
def point_session() -> Iterator[None]:
    """The process-wide settings under which points run (in this process or on a Ray worker): lm-eval's
    once-per-process costs paid once, and its per-point warnings silenced."""
    lm_log = logging.getLogger("lm_eval")
    level = lm_log.level
    lm_log.setLevel(logging.ERROR)  # lm-eval repeats the same warnings at every point
    try:
        with repeated_runs():
            yield
    finally:
        lm_log.setLevel(level)


def run_sweep(config: SweepConfig, out: str | os.PathLike[str], shard: tuple[int, int] = (1, 1),
              sweeper: Sweeper | None = None, progress: bool = True,
              on_point: Callable[[Point], None] | None = None) -> dict[str, Any] | None:
    """Run (or resume) a sweep into `out`; returns the landscape when every point is done."""
    out = Path(out)
    plan = plan_sweep(config, out, shard)
    points, pending = plan.points, plan.pending
    if pending:
        sweeper = sweeper or Sweeper(config)
        bar = tqdm(total=len(points), initial=len(points) - len(pending), unit="point",
                   desc="landscape", disable=not progress)
        try:
            with point_session():
                for point in pending:
                    write_point(out, point.id, sweeper.run_point(point))
                    bar.update(1)
                    if on_point:
                        on_point(point)
        finally:
            bar.close()
    score_missing_coherence(config, out, points, sweeper)
    return finish_if_complete(out, config, plan)


def score_missing_coherence(config: SweepConfig, out: Path, points: Sequence[Point],
                            sweeper: Sweeper | None = None) -> None:
    """Coherence of every finished point that lacks it: once, at the origin, batched (a resumed run scores what
    is left). Whatever executor generated the points, this runs in the driver's process."""
    if not config.coherence:
        return
    unscored = [p for p in points if is_done(out, p.id) and not (point_dir(out, p.id) / COHERENCE_FILE).is_file()]
    if unscored:
        (sweeper or Sweeper(config)).score_coherence(out, unscored)


def finish(out: Path, config: SweepConfig, identity: dict[str, Any], digest: str,
           model: dict[str, Any]) -> dict[str, Any]:
    """Build landscape.json and the plots from the point files."""
    landscape = assemble(out, config.grid, identity, digest, model, config)
    write_json(out / "landscape.json", landscape)
    plot_landscape(landscape, out)
    plot_capability(landscape, out)
    return landscape


def assemble(out: Path, grid: Grid, identity: dict[str, Any], digest: str, model: dict[str, Any],
             config: SweepConfig | None = None) -> dict[str, Any]:
    infos = {p.id: json.loads((point_dir(out, p.id) / "point.json").read_text(encoding="utf-8"))
             for p in grid.points()}
    hashes = sorted({i["prompt_set_hash"] for i in infos.values()})
    if len(hashes) != 1:
        raise ConfigMismatch(f"{out}: points were generated from different prompt sets ({len(hashes)} hashes)")
    judges = list(identity["judges"])
    asr = {j: grid.curves_from({pid: info["asr"].get(j) for pid, info in infos.items()}) for j in judges}
    visage = {j: summarize_visage(asr[j], two_d=grid.two_d) for j in judges}
    timing_keys = ("perturb_s", "evaluate_s", "generate_s", "judge_s", "capability_s", "restore_s")
    totals = {k: sum(i["timing"].get(k, 0.0) for i in infos.values()) for k in timing_keys}
    n_points = len(infos)
    coherence = _coherence(out, grid, identity)
    if coherence is not None:
        totals["coherence_s"] = sum(c.get("score_s", 0.0) for c in coherence.pop("_points").values())
    landscape = {
        "format": FORMAT,
        "kind": grid.kind,
        "axes": grid.axes,
        "coords": grid.coords,
        "directions": grid.directions,
        "judges": judges,
        "judge_versions": _judge_versions(infos.values(), judges),
        "task": identity["task"],
        "data": identity["data"],
        "system_prompt": identity["system_prompt"],
        "max_gen_toks": identity["max_gen_toks"],
        "note": (f"answers truncated to {identity['max_gen_toks']} new tokens"
                 if identity["max_gen_toks"] < 512 else "answers up to 512 new tokens (the papers' setting)"),
        "asr": asr,
        "visage": visage,
        "model": model,
        "towards": ({"path": config.towards if config else None, "weights_id": identity["towards_weights"]}
                    if identity.get("towards_weights") else None),
        "selection": {"include": identity["include"], "exclude": identity["exclude"]},
        "prompt_set_hash": hashes[0],
        "n_prompts": next(iter(infos.values()))["n"],
        "n_points": n_points,
        "config_hash": digest,
        "software": software_versions(),
        # generate_s is the part of evaluate_s spent generating: not added twice
        "timing": {**totals, "points": n_points,
                   "seconds_per_point": (sum(v for k, v in totals.items() if k != "generate_s") / n_points
                                         if n_points else None)},
    }
    if identity.get("capability_task"):
        landscape["capability"] = capability_section(grid, infos, asr, identity["capability_task"])
    if coherence is not None:
        landscape["coherence"] = coherence
    return landscape


def capability_section(grid: Grid, infos: Mapping[str, Any], asr: Mapping[str, Any], task: str) -> dict[str, Any]:
    """landscape.json's `capability`: the task's score in percent per point (curves shaped like `asr`), the
    metric it came from, and per judge the safety and capability basin widths (1D grids) and which is wider."""
    metrics = sorted({(i.get("capability") or {}).get("metric") for i in infos.values()} - {None})
    values = {pid: (None if (i.get("capability") or {}).get("value") is None else 100.0 * i["capability"]["value"])
              for pid, i in infos.items()}
    curves = grid.curves_from(values)
    section: dict[str, Any] = {
        "task": task, "metric": metrics[0] if len(metrics) == 1 else ("mixed" if metrics else None),
        "unit": "percent (100 x the metric)", "curves": curves,
        "n": next(iter(infos.values())).get("capability", {}).get("n"), "tolerance": BASIN_TOLERANCE}
    if grid.two_d:
        section["basins"] = None
        section["basins_note"] = "basin widths are defined on 1D landscapes"
    else:
        section["basins"] = {judge: basins(grid.coords[0], asr[judge], curves, BASIN_TOLERANCE) for judge in asr}
    return section


def _coherence(out: Path, grid: Grid, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `coherence` section from the points' coherence files (None when the sweep turned it off)."""
    if identity.get("coherence") is False:
        return None
    per_point = {}
    for p in grid.points():
        path = point_dir(out, p.id) / COHERENCE_FILE
        if path.is_file():
            per_point[p.id] = json.loads(path.read_text(encoding="utf-8"))
    section = coherence_section(grid, per_point)
    section["n_points_scored"] = len(per_point)
    section["_points"] = per_point
    return section


def _judge_versions(infos: Any, judges: Sequence[str]) -> dict[str, str | None]:
    """Each judge's version as its points recorded it (None for points written before versions were kept;
    "mixed" when points disagree, e.g. a judge updated between a sweep's shards)."""
    out: dict[str, str | None] = {}
    for judge in judges:
        seen = {(info.get("judge_versions") or {}).get(judge) for info in infos}
        out[judge] = seen.pop() if len(seen) == 1 else "mixed"
    return out


def merge_shards(shard_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Join shard folders into `out` (configurations must match) and build the landscape."""
    out = Path(out)
    stored = []
    for d in shard_dirs:
        path = Path(d) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{d}: no config.json (not a landscape output folder)")
        stored.append((Path(d), json.loads(path.read_text(encoding="utf-8"))))
    digest = stored[0][1]["config_hash"]
    for d, s in stored[1:]:
        if s["config_hash"] != digest:
            old, new = stored[0][1]["config"], s["config"]
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ConfigMismatch(f"{d} holds a different configuration than {stored[0][0]} "
                                 f"(differs in: {', '.join(diff)}); refusing to merge")
    first = stored[0][1]
    identity = first["config"]
    check_or_write_config(out, identity, digest, {"model": first.get("model"), "towards": first.get("towards")})
    for d, _ in stored:
        for src in sorted((d / "points").glob("*")):
            if src.name.startswith(".tmp-") or not (src / "point.json").is_file():
                continue
            dst = out / "points" / src.name
            if src.resolve() != dst.resolve() and not (dst / "point.json").is_file():
                tmp = out / "points" / f".tmp-{src.name}-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(src, tmp)
                if dst.exists():
                    shutil.rmtree(dst)
                os.replace(tmp, dst)
    g = identity["grid"]
    grid = Grid(g["kind"], g["coords"], g["directions"])
    missing = [p.id for p in grid.points() if not is_done(out, p.id)]
    if missing:
        raise FileNotFoundError(f"the shards lack {len(missing)} of {len(grid.points())} points "
                                f"(first: {missing[0]}); run the missing shards first")
    landscape = assemble(out, grid, identity, digest, first["model"], None)
    if first.get("towards") and landscape.get("towards"):
        landscape["towards"]["path"] = first["towards"]
    write_json(out / "landscape.json", landscape)
    plot_landscape(landscape, out)
    plot_capability(landscape, out)
    return landscape

