"""Landscape sweeps spread over a Ray cluster (`safety-bench landscape --executor ray`).

Why this shape: in-process data parallelism inside one engine is fragile across lm-eval/vLLM versions;
what scales is an external scheduler over independent engines, each result persisted as soon as it
exists. So the driver keeps a pool of Ray actors; each actor loads the model once and runs points with
`Sweeper.run_point`, the very code the in-process sweep runs (moved in place, evaluated, judged,
restored), and returns the point's files. Only the driver writes, through the sweep's own atomic
`write_point`, so workers need no shared filesystem and resume works exactly as in-process: the driver
hands out the points that are still missing.

Faults: a worker lost mid-point (killed, out of host memory, node gone) is restarted by Ray and its point
runs again, preferably on another worker; the log names the worker and the point. A point that fails
twice (an exception, or a lost worker each time) stops the sweep with one message naming it; every
finished point stays on disk, so re-running the command resumes.

Each worker reserves its resources as one placement-group bundle ({CPU: c, GPU: g}): a vLLM worker with
g > 1 GPUs runs one tensor-parallel engine over exactly the GPUs of its bundle.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safety_bench.landscape.grid import Point
from safety_bench.orchestration.sweep import (
    SweepConfig,
    finish_if_complete,
    plan_sweep,
    score_missing_coherence,
    write_point,
)

log = logging.getLogger("safety_bench.landscape")

INSTALL_HINT = 'pip install "safety-bench[ray]"'
EXECUTORS = ("local", "ray")
MAX_ATTEMPTS = 2  # a point failing this many times stops the sweep
MAX_RESTARTS = 3  # Ray restarts a lost worker this many times before it leaves the pool
READY_TIMEOUT_S = float(os.environ.get("SAFETY_BENCH_RAY_READY_TIMEOUT", "600"))


class RayNotInstalled(RuntimeError):
    """`--executor ray` without the `ray` extra."""


class ClusterError(RuntimeError):
    """The cluster cannot host the requested workers (too small, busy, or the workers cannot start)."""


class PointFailed(RuntimeError):
    """A point failed MAX_ATTEMPTS times; the sweep stopped with every finished point kept."""


def import_ray() -> Any:
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalled(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@dataclass
class RayOptions:
    """Where to run and how to cut the cluster into workers (execution only: never part of a result)."""

    address: str | None = None  # None: start a local cluster for this command; "auto": join the running one
    workers: int | None = None  # default: one per GPU, or one per CPU on a cluster without GPUs
    gpus_per_worker: float | None = None  # default: 1 where the cluster has GPUs, else 0
    cpus_per_worker: float = 1.0

    def problems(self) -> list[str]:
        """Bad settings as `<setting> <value!r>: <problem> (valid: ...)`, checked before anything runs."""
        out = []
        if self.workers is not None and self.workers < 1:
            out.append(f"--workers {self.workers!r}: must be at least 1 (valid: a positive integer)")
        if self.gpus_per_worker is not None and (self.gpus_per_worker < 0 or not math.isfinite(self.gpus_per_worker)):
            out.append(f"--gpus-per-worker {self.gpus_per_worker!r}: must not be negative (valid: 0, 0.5, 1, 2, ...)")
        if not self.cpus_per_worker > 0 or not math.isfinite(self.cpus_per_worker):
            out.append(f"--cpus-per-worker {self.cpus_per_worker!r}: must be positive (valid: 0.5, 1, 2, ...)")
        if self.address is not None and not self.address.strip():
            out.append(f"--ray-address {self.address!r}: empty (valid: auto, HOST:PORT, ray://HOST:PORT)")
        return out


def add_arguments(parser: Any, what: str = "worker") -> None:
    """The executor flags, shared by `landscape` and `nightly`."""
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local (default): this process; ray: spread the work over a Ray cluster "
                        f"(needs {INSTALL_HINT})")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join: auto (the running one, e.g. inside a Slurm job), HOST:PORT or "
                        "ray://HOST:PORT (default: start a local cluster for this command)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"Ray {what}s (default: one per GPU, or one per CPU without GPUs)")
    parser.add_argument("--gpus-per-worker", type=float, default=None,
                        help=f"GPUs each Ray {what} reserves (default 1 where GPUs exist, else 0; > 1 for a "
                        "tensor-parallel vLLM engine)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0,
                        help=f"CPUs each Ray {what} reserves (default 1); a CPU {what} runs torch with that "
                        "many threads")


def options_from_args(args: Any) -> RayOptions:
    return RayOptions(address=args.ray_address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                      cpus_per_worker=args.cpus_per_worker)


@contextmanager
def connected(address: str | None) -> Iterator[Any]:
    """Ray, initialised for this command: joins `address`, or starts a local cluster that ends with it.
    A process that already called `ray.init` keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"cannot join the Ray cluster at {address!r}: {_reason(exc)}") from None
    else:
        ray.init(address="local", include_dashboard=False, **quiet)  # a new cluster, never a stale one
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_summary(ray: Any) -> dict[str, float]:
    resources = ray.cluster_resources()
    return {"CPU": float(resources.get("CPU", 0.0)), "GPU": float(resources.get("GPU", 0.0))}


def resolve_layout(options: RayOptions, cluster: dict[str, float], n_jobs: int,
                   device: str | None = None) -> tuple[int, float, float]:
    """(workers, GPUs per worker, CPUs per worker) for this cluster; ClusterError when they do not fit."""
    cpus = options.cpus_per_worker
    if options.gpus_per_worker is not None:
        gpus = options.gpus_per_worker
    else:
        gpus = 1.0 if cluster["GPU"] >= 1 and not str(device or "").startswith("cpu") else 0.0
    if options.workers is not None:
        workers = options.workers
    else:
        workers = int(cluster["GPU"] // gpus) if gpus else int(cluster["CPU"] // cpus)
        workers = max(1, min(workers, n_jobs))
    need_cpu, need_gpu = workers * cpus, workers * gpus
    if need_cpu > cluster["CPU"] + 1e-9 or need_gpu > cluster["GPU"] + 1e-9:
        raise ClusterError(f"{workers} worker(s) x ({cpus:g} CPU, {gpus:g} GPU) need {need_cpu:g} CPUs and "
                           f"{need_gpu:g} GPUs; the cluster has {cluster['CPU']:g} CPUs and {cluster['GPU']:g} GPUs "
                           "(lower --workers, --cpus-per-worker or --gpus-per-worker)")
    return workers, gpus, cpus


def set_cpu_share(cpus: float) -> int:
    """A CPU worker computes with as many torch threads as CPUs it reserved (not every core of its node)."""
    import torch

    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


# ---------------------------------------------------------------------- the worker (a Ray actor)

class PointWorker:
    """One loaded model on a Ray worker: runs points through `Sweeper.run_point` and returns their files."""

    def __init__(self, config: SweepConfig, cpu_threads: int | None = None,
                 engine_args: dict[str, Any] | None = None) -> None:
        if cpu_threads:
            set_cpu_share(cpu_threads)
        from safety_bench.orchestration.sweep import Sweeper, load_model, point_session

        self._session = ExitStack()
        self._session.enter_context(point_session())  # once per worker, as once per in-process sweep
        self.sweeper = Sweeper(config, lm=load_model(config, engine_args) if engine_args else None)

    def whoami(self) -> dict[str, Any]:
        import torch

        try:
            import ray

            node = ray.util.get_node_ip_address()
        except Exception:  # outside Ray (tests of the class itself)
            node = "local"
        return {"pid": os.getpid(), "node": node, "threads": torch.get_num_threads()}

    def run(self, point: Point) -> dict[str, Any]:
        return {"files": self.sweeper.run_point(point), "worker": self.whoami()}


def _worker_name(index: int, info: dict[str, Any] | None) -> str:
    if not info:
        return f"worker {index}"
    return f"worker {index} (pid {info['pid']} on {info['node']})"


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


@dataclass
class Worker:
    handle: Any
    placement_group: Any
    info: dict[str, Any] | None = None
    losses: int = 0


def start_workers(ray: Any, actor_cls: type, args: Sequence[Any], n: int, gpus: float, cpus: float) -> list[Worker]:
    """`n` actors of `actor_cls(*args)`, each in its own placement-group bundle, ready (model loaded)."""
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    groups = [placement_group([bundle], strategy="STRICT_PACK") for _ in range(n)]
    try:
        ray.get([g.ready() for g in groups], timeout=READY_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        for g in groups:
            remove_placement_group(g)
        raise ClusterError(f"{n} bundle(s) of {bundle} were not free within {READY_TIMEOUT_S:.0f} s (is the "
                           "cluster busy with other jobs?)") from None
    remote = ray.remote(actor_cls)
    workers = [Worker(remote.options(
        num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS, max_task_retries=0,
        scheduling_strategy=PlacementGroupSchedulingStrategy(g, placement_group_bundle_index=0)).remote(*args), g)
        for g in groups]
    try:
        infos = ray.get([w.handle.whoami.remote() for w in workers], timeout=READY_TIMEOUT_S)
    except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as exc:
        stop_workers(ray, workers)
        raise ClusterError(f"the Ray workers could not start: {_reason(exc)}") from None
    for i, (w, info) in enumerate(zip(workers, infos, strict=True)):
        w.info = info
        log.info("landscape: %s ready, %d torch thread(s)", _worker_name(i, info), info["threads"])
    return workers


def stop_workers(ray: Any, workers: Sequence[Worker]) -> None:
    from ray.util.placement_group import remove_placement_group

    for w in workers:
        try:
            ray.kill(w.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone (with its job, or its node)
            pass
        try:
            remove_placement_group(w.placement_group)
        except Exception:  # noqa: BLE001 - likewise
            pass


def run_jobs(ray: Any, workers: list[Worker], jobs: Sequence[Point],
             on_done: Callable[[Point, dict[str, Any]], None], max_attempts: int = MAX_ATTEMPTS) -> None:
    """Hand `jobs` to the workers, one at a time each, until all are done.

    A lost worker's job goes back to the front of the queue and, where another worker is alive, runs
    there; a job failing `max_attempts` times raises PointFailed. Results are handed to `on_done` (in the
    driver) as they arrive."""
    queue: deque[Point] = deque(jobs)
    avoid: dict[str, int] = {}  # job id -> the worker that lost it
    failures: dict[str, list[str]] = {}
    inflight: dict[Any, tuple[int, Point]] = {}
    alive = set(range(len(workers)))

    def dispatch() -> None:
        for i in sorted(alive - {i for i, _ in inflight.values()}):
            others = bool(alive - {i})
            pick = next((p for p in queue if avoid.get(p.id) != i or not others), None)
            if pick is None:
                continue
            queue.remove(pick)
            inflight[workers[i].handle.run.remote(pick)] = (i, pick)

    def failed(point: Point, why: str) -> None:
        failures.setdefault(point.id, []).append(why)
        if len(failures[point.id]) >= max_attempts:
            raise PointFailed(f"point {point.id} failed {len(failures[point.id])} times "
                              f"({'; '.join(failures[point.id])}); the sweep stopped, its finished points are "
                              "kept: fix the cause and re-run the same command to resume")

    dispatch()
    while inflight:
        (ref,), _ = ray.wait(list(inflight), num_returns=1)
        i, point = inflight.pop(ref)
        w = workers[i]
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            w.losses += 1
            log.warning("landscape: %s was lost while running point %s (%s); the point runs again",
                        _worker_name(i, w.info), point.id, _reason(exc))
            if w.losses > MAX_RESTARTS:
                alive.discard(i)
                log.warning("landscape: %s was lost %d times and leaves the pool", _worker_name(i, w.info), w.losses)
            failed(point, f"{_worker_name(i, w.info)} lost")
            avoid[point.id] = i
            queue.appendleft(point)
            w.info = None
            if not alive:
                raise ClusterError("every Ray worker was lost; the finished points are kept: re-run the same "
                                   "command to resume") from None
        except ray.exceptions.RayTaskError as exc:
            log.warning("landscape: point %s failed on %s (%s)", point.id, _worker_name(i, w.info), _reason(exc))
            failed(point, _reason(exc))
            queue.appendleft(point)
        else:
            w.info = result.get("worker") or w.info
            log.debug("landscape: point %s done on %s", point.id, _worker_name(i, w.info))
            on_done(point, result["files"])
        dispatch()
        if queue and not inflight:  # every worker avoided; cannot happen with a live worker, but never spin
            raise ClusterError("no Ray worker can take the remaining points")


# ---------------------------------------------------------------------- the sweep

def run_sweep_ray(config: SweepConfig, out: str | os.PathLike[str], options: RayOptions,
                  shard: tuple[int, int] = (1, 1), progress: bool = True,
                  on_point: Callable[[Point], None] | None = None,
                  worker_cls: type = PointWorker) -> dict[str, Any] | None:
    """`run_sweep` with the points computed by a pool of Ray workers; same folder, same landscape.json."""
    out = Path(out)
    ray = import_ray()
    with connected(options.address):
        cluster = cluster_summary(ray)
        # the pool must fit before anything is written
        n, gpus, cpus = resolve_layout(options, cluster, len(config.grid.shard(*shard)), config.device)
        plan = plan_sweep(config, out, shard)
        if plan.pending:
            n = min(n, len(plan.pending))
            worker_config = dataclasses.replace(config, device="cuda" if gpus else "cpu")
            engine_args = ({"tensor_parallel_size": int(gpus), "distributed_executor_backend": "mp"}
                           if config.backend == "vllm" and gpus > 1 else None)
            log.info("landscape: %d point(s) to run on %d Ray worker(s) of %g CPU / %g GPU (cluster: %g CPUs, "
                     "%g GPUs)", len(plan.pending), n, cpus, gpus, cluster["CPU"], cluster["GPU"])
            threads = None if gpus else max(1, int(cpus))
            workers = start_workers(ray, worker_cls, (worker_config, threads, engine_args), n, gpus, cpus)
            from tqdm.auto import tqdm

            bar = tqdm(total=len(plan.points), initial=len(plan.points) - len(plan.pending), unit="point",
                       desc="landscape", disable=not progress)

            def done(point: Point, files: dict[str, Any]) -> None:
                write_point(out, point.id, files)
                bar.update(1)
                if on_point:
                    on_point(point)

            try:
                run_jobs(ray, workers, plan.pending, done)
            finally:
                bar.close()
                stop_workers(ray, workers)
    score_missing_coherence(config, Path(out), plan.points)  # in the driver, at the origin (one model load)
    return finish_if_complete(out, config, plan)

