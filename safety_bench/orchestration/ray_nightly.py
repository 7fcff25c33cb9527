"""`safety-bench nightly --executor ray`: tonight's evaluations and sweeps as parallel Ray tasks.

Built on top of nightly's own flow rather than beside it: the driver works out what is due with the same
keys (`base_job`, `sweep_job`), runs each due evaluation and each due sweep as one Ray task asking for
its GPUs (or CPUs), and collects the results. Nightly's ordinary sequential pass then files them: the
evaluator it is given returns the result computed remotely, and a remote sweep's points are unpacked into
the store's sweep folder, where `safety-bench landscape` finds every point done and only assembles the
landscape. So idempotence, the lock and per-model failures behave as without Ray, and only the driver
writes the store (workers need no access to it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from safety_bench.leaderboard.store import BASE, LANDSCAPE, Store
from safety_bench.orchestration.nightly import (
    Evaluator,
    ModelSpec,
    NightlyConfig,
    base_job,
    run_landscape_here,
    sweep_job,
)
from safety_bench.orchestration.ray_executor import (
    RayOptions,
    _reason,
    cluster_summary,
    connected,
    import_ray,
    resolve_layout,
    set_cpu_share,
)

log = logging.getLogger("safety_bench.nightly")

_EVALUATORS: dict[str, Evaluator] = {}  # per worker process: lm-eval's TaskManager is built once, not per task


def evaluate_task(cfg: NightlyConfig, spec: ModelSpec, settings: Mapping[str, Any], cpu_threads: int | None) -> Any:
    """One model's base evaluation on a Ray worker (the same `Evaluator` the local run uses)."""
    if cpu_threads:
        set_cpu_share(cpu_threads)
    key = repr((cfg.data, cfg.system_prompt, sorted(cfg.tasks)))
    evaluator = _EVALUATORS.setdefault(key, Evaluator(cfg))
    return evaluator(spec, settings)


def job_key(job: Mapping[str, Any]) -> str:
    return json.dumps(job, sort_keys=True, default=str)


def sweep_task(args: Mapping[str, Any], cpu_threads: int | None) -> dict[str, bytes]:
    """One landscape sweep on a Ray worker, in a private folder; returns its configuration and point files."""
    if cpu_threads:
        set_cpu_share(cpu_threads)
    out = Path(tempfile.mkdtemp(prefix="safety-bench-sweep-"))
    try:
        code = run_landscape_here(args, out)
        if code != 0:
            raise RuntimeError(f"landscape sweep exited {code}")
        files = [out / "config.json", *sorted(p for p in (out / "points").rglob("*") if p.is_file())]
        return {str(p.relative_to(out)): p.read_bytes() for p in files}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def unpack_sweep(files: Mapping[str, bytes], out: Path) -> None:
    """Write a remote sweep's files into `out`, each point folder renamed into place whole (as the sweep
    itself writes points), points already there kept."""
    points: dict[str, dict[str, bytes]] = {}
    for rel, data in files.items():
        parts = Path(rel).parts
        if parts[0] == "points" and len(parts) >= 3:
            points.setdefault(parts[1], {})[str(Path(*parts[2:]))] = data
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "config.json").exists():
        (out / "config.json").write_bytes(files["config.json"])
    for name, content in points.items():
        final = out / "points" / name
        if (final / "point.json").is_file():
            continue
        tmp = out / "points" / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for rel, data in content.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)


class Prefetched:
    """Results computed on the cluster, handed to nightly's sequential pass; work that was not
    prefetched (or could not be planned) falls through to the local path."""

    def __init__(self, local_evaluator: Callable[[ModelSpec, Mapping[str, Any]], dict[str, Any]]) -> None:
        self.local_evaluator = local_evaluator
        self.evaluations: dict[str, Any] = {}
        self.sweeps: dict[str, Any] = {}

    def evaluate(self, spec: ModelSpec, settings: Mapping[str, Any]) -> dict[str, Any]:
        if spec.name not in self.evaluations:
            return self.local_evaluator(spec, settings)
        result = self.evaluations.pop(spec.name)
        if isinstance(result, BaseException):
            raise result
        return result

    def run_landscape(self, args: Mapping[str, Any], out: Path) -> int:
        result = self.sweeps.pop(job_key(args), None)
        if isinstance(result, BaseException):
            raise result
        if result is not None:
            unpack_sweep(result, out)
        return run_landscape_here(args, out)  # resumes: every point is there, so it only assembles


class RemoteFailure(RuntimeError):
    """A Ray task's error, as one line for the board's log."""


def prefetch(store: Store, cfg: NightlyConfig, options: RayOptions | None,
             local_evaluator: Callable[[ModelSpec, Mapping[str, Any]], dict[str, Any]]
             ) -> tuple[Callable[[ModelSpec, Mapping[str, Any]], dict[str, Any]], Callable[[Mapping[str, Any], Path], int]]:
    """Run tonight's due evaluations and sweeps on Ray; returns (evaluator, run_landscape) for nightly."""
    options = options or RayOptions()
    ray = import_ray()
    done = Prefetched(local_evaluator)
    jobs: list[tuple[str, Any, tuple[Any, ...]]] = []  # (kind, function, args)
    for spec in cfg.models:
        try:
            wid, settings, key = base_job(cfg, spec)
            sweep = sweep_job(cfg, spec, wid)
        except Exception:  # noqa: BLE001 - the sequential pass meets the same error and reports it per model
            continue
        if store.find_run(spec.name, BASE, key) is None:
            jobs.append(("evaluation", evaluate_task, (spec.name, (cfg, spec, settings))))
        if sweep and not any(r.key == sweep[1] for r in store.runs(spec.name, LANDSCAPE)):
            jobs.append(("sweep", sweep_task, (job_key(sweep[0]), (sweep[0],))))
    if not jobs:
        return done.evaluate, done.run_landscape
    with connected(options.address):
        device = str(cfg.generation.get("device", "auto"))
        n, gpus, cpus = resolve_layout(options, cluster_summary(ray), len(jobs), None if device == "auto" else device)
        threads = None if gpus else max(1, int(cpus))
        log.info("nightly: %d evaluation(s)/sweep(s) due, on Ray, at most %d at a time (%g CPU / %g GPU each)",
                 len(jobs), n, cpus, gpus)
        queue, inflight = list(jobs), {}
        remote = {fn: ray.remote(fn) for fn in (evaluate_task, sweep_task)}
        while queue or inflight:
            while queue and len(inflight) < n:
                kind, fn, (name, args) = queue.pop(0)
                ref = remote[fn].options(num_cpus=cpus, num_gpus=gpus, max_retries=1).remote(*args, threads)
                inflight[ref] = (kind, name)
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            kind, name = inflight.pop(ref)
            try:
                result: Any = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = RemoteFailure(f"{kind} on Ray failed: {_reason(exc)}")
                log.error("nightly: %s %s", name, result)
            (done.evaluations if kind == "evaluation" else done.sweeps)[name] = result
    return done.evaluate, done.run_landscape
