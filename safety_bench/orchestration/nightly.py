"""`safety-bench nightly`: evaluate what is new or changed, then rebuild the board.

Work is keyed so that nothing is redone: a generation run by (weights id, tasks and their versions,
prompt source, system prompt, generation settings), a judgement by (that run, judge name, judge
version), a landscape by (weights id, sweep arguments). A second run with nothing new therefore makes no
generation and no judge call. One model failing does not stop the others: its error goes to the board's
log and the exit status is non-zero. A lock file in the store stops two runs from colliding.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from safety_bench.harness import register, task_manager
from safety_bench.judges.run import judge_records
from safety_bench.leaderboard.board_config import board_settings
from safety_bench.leaderboard.ingest import add_lm_eval_results
from safety_bench.leaderboard.lock import locked
from safety_bench.leaderboard.ranking import build_board
from safety_bench.leaderboard.remote import open_store
from safety_bench.leaderboard.render import write_board
from safety_bench.leaderboard.store import BASE, LANDSCAPE, RunInfo, Store, content_key
from safety_bench.orchestration.sweep import config_from_settings, run_sweep
from safety_bench.provenance import now_iso, software_versions, task_versions
from safety_bench.validation import UserError
from safety_bench.weights_id import weights_id

log = logging.getLogger("safety_bench.nightly")

LOCK_NAME = ".nightly.lock"
DEFAULT_TASKS = ("safety_landscape_mini", "safety_benign")


class ConfigError(UserError, ValueError):
    """The nightly config is invalid; the message names the field."""


@dataclass
class ModelSpec:
    name: str
    path: str | None = None
    hub: str | None = None
    revision: str | None = None
    model_args: str = ""
    landscape: str | None = None  # an existing landscape folder to publish with this model
    sweep: dict[str, Any] | None = None

    @property
    def pretrained(self) -> str:
        return str(self.path or self.hub)


@dataclass
class NightlyConfig:
    models: list[ModelSpec]
    store: Path
    out: Path
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    judges: list[str] = field(default_factory=lambda: ["keyword"])
    data: str = "hexphi"
    system_prompt: str = "default"
    generation: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)
    stale_lock_hours: float = 12.0
    board: dict[str, Any] = field(default_factory=dict)  # the `board:` section (leaderboard/board_config.py)


@dataclass
class NightlyReport:
    generations: int = 0  # lm-eval runs made
    judge_calls: int = 0  # judge batches run
    sweeps: int = 0
    skipped: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    board: dict[str, Path] = field(default_factory=dict)
    board_skipped: list[str] = field(default_factory=list)  # corrupt runs/models the board left out

    @property
    def exit_code(self) -> int:
        """1 when a model failed or the board skipped anything (nightly builds the board with --strict)."""
        return 1 if self.failures or self.board_skipped else 0


def load_config(path: str | os.PathLike[str]) -> NightlyConfig:
    """Read leaderboards/nightly.yaml; relative paths are relative to the config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not raw["models"]:
        raise ConfigError(f"{path}: needs a non-empty `models` list")
    base = path.parent

    def rel(value: Any) -> Path:
        p = Path(os.path.expandvars(str(value))).expanduser()
        return p if p.is_absolute() else (base / p)

    models = []
    for i, m in enumerate(raw["models"]):
        if not isinstance(m, dict) or not m.get("name") or not (m.get("path") or m.get("hub")):
            raise ConfigError(f"{path}: models[{i}] needs `name` and `path` (a checkpoint folder) or `hub` "
                              "(a hub id, with `revision`)")
        args = m.get("model_args") or ""
        if isinstance(args, dict):
            args = ",".join(f"{k}={v}" for k, v in args.items())
        models.append(ModelSpec(name=str(m["name"]), path=str(rel(m["path"])) if m.get("path") else None,
                                hub=m.get("hub"), revision=m.get("revision"), model_args=str(args),
                                landscape=str(rel(m["landscape"])) if m.get("landscape") else None,
                                sweep=m.get("sweep")))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: model names must be unique")
    if not isinstance(raw.get("board") or {}, dict):
        raise ConfigError(f"{path}: `board` must be a mapping, e.g. board: {{over_refusal_threshold: 0.2}}")
    board_settings(raw.get("board"), f"{path.name}: board")  # checked now, before any model runs
    return NightlyConfig(models=models, store=rel(raw.get("store", "store")), out=rel(raw.get("out", "board")),
                         tasks=list(raw.get("tasks") or DEFAULT_TASKS), judges=list(raw.get("judges") or ["keyword"]),
                         data=str(raw.get("data", "hexphi")), system_prompt=str(raw.get("system_prompt", "default")),
                         generation=dict(raw.get("generation") or {}), sweep=dict(raw.get("sweep") or {}),
                         stale_lock_hours=float(raw.get("stale_lock_hours", 12.0)),
                         board=dict(raw.get("board") or {}))


# ---------------------------------------------------------------------- keys

def model_weights_id(spec: ModelSpec) -> str:
    if spec.path:
        return weights_id(spec.path)
    if spec.revision and len(spec.revision) == 40 and all(c in "0123456789abcdef" for c in spec.revision):
        return f"hf:{spec.revision}"  # a pinned commit names the weights without asking the hub
    return weights_id(f"{spec.hub}@{spec.revision or 'main'}")


def generation_settings(cfg: NightlyConfig, spec: ModelSpec) -> dict[str, Any]:
    """Everything that changes the generated text, and so the generation key."""
    gen = cfg.generation
    return {"tasks": task_versions(cfg.tasks), "data": cfg.data, "system_prompt": cfg.system_prompt,
            "model_type": gen.get("model", "hf"), "model_args": spec.model_args,
            "max_gen_toks": int(gen.get("max_gen_toks", 512)),
            "apply_chat_template": bool(gen.get("apply_chat_template", True)), "limit": gen.get("limit")}


# ---------------------------------------------------------------------- the work

class Evaluator:
    """Runs lm-eval; the TaskManager is built on first use only, so an up-to-date night never pays for it."""

    def __init__(self, cfg: NightlyConfig) -> None:
        self.cfg = cfg
        self._tm: Any = None

    def __call__(self, spec: ModelSpec, settings: Mapping[str, Any]) -> dict[str, Any]:
        import lm_eval

        register()
        if self._tm is None:
            self._tm = task_manager({
                "data": self.cfg.data, "judge": self.cfg.judges[0], "system_prompt": self.cfg.system_prompt})
        gen = self.cfg.generation
        device = str(gen.get("device", "auto"))
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        args = [f"pretrained={spec.pretrained}"]
        if spec.hub and spec.revision:
            args.append(f"revision={spec.revision}")
        if spec.model_args:
            args.append(spec.model_args)
        return lm_eval.simple_evaluate(
            model=settings["model_type"], model_args=",".join(args), tasks=list(self.cfg.tasks),
            task_manager=self._tm, apply_chat_template=settings["apply_chat_template"],
            batch_size=gen.get("batch_size", 16), device=device, limit=settings.get("limit"),
            gen_kwargs=f"max_gen_toks={settings['max_gen_toks']}", log_samples=True)


def _judge_run(store: Store, run: RunInfo, judges: list[str], report: NightlyReport,
               get_judge: Callable[[str], Any]) -> None:
    generations: list[dict[str, Any]] | None = None
    for name in judges:
        judge = get_judge(name)
        if store.has_judgement(run, judge.name, str(judge.version)):
            continue
        if generations is None:
            generations = store.load_generations(run)
        rows = judge_records(generations, judge)
        report.judge_calls += 1
        run = store.add_judgement(run, judge.name, str(judge.version), rows)


def base_job(cfg: NightlyConfig, spec: ModelSpec) -> tuple[str, dict[str, Any], str]:
    """(weights id, generation settings, generation key) of a model's base evaluation."""
    wid = model_weights_id(spec)
    settings = generation_settings(cfg, spec)
    return wid, settings, content_key(wid, settings)


def sweep_job(cfg: NightlyConfig, spec: ModelSpec, wid: str) -> tuple[dict[str, Any], str] | None:
    """(the sweep's settings as data, with `model` and `name`; its key) for a model, None when none is set."""
    sweep = {**cfg.sweep, **(spec.sweep or {})}
    if not sweep.get("enabled", any(k != "enabled" for k in sweep)):
        return None
    settings = sweep_settings(sweep, cfg)
    key = content_key("sweep", wid, settings, task_versions([str(settings.get("task", "safety_landscape_mini"))]))
    return {"model": spec.pretrained, "name": spec.name, **settings}, key


def run_landscape_here(job: Mapping[str, Any], out: Path) -> int:
    """Run (or resume, or only assemble) a sweep job in this process through the sweep's Python API."""
    settings = {k: v for k, v in job.items() if k not in ("model", "name")}
    landscape = run_sweep(config_from_settings(str(job["model"]), settings, name=job.get("name")), out,
                          progress=False)
    return 0 if landscape is not None else 1


def _sweep(store: Store, cfg: NightlyConfig, spec: ModelSpec, wid: str, report: NightlyReport,
           run_landscape: Callable[[Mapping[str, Any], Path], int] = run_landscape_here) -> None:
    """Publish an existing landscape folder, and run the configured landscape sweep when it is new."""
    if spec.landscape:
        meta = {"model": {"weights_id": wid}, "source": spec.landscape}
        store.add_landscape(spec.name, spec.landscape, meta)
    job = sweep_job(cfg, spec, wid)
    if job is None:
        return
    settings, key = job
    if any(r.key == key for r in store.runs(spec.name, LANDSCAPE)):
        report.skipped.append(f"{spec.name}: landscape sweep up to date")
        return
    out = store.root / "sweeps" / key
    code = run_landscape(settings, out)
    if code != 0 or not (out / "landscape.json").exists():
        raise RuntimeError(f"landscape sweep finished without {out / 'landscape.json'}")
    report.sweeps += 1
    store.add_landscape(spec.name, out, {"model": {"weights_id": wid}, "key": key, "sweep": settings})


def sweep_settings(sweep: Mapping[str, Any], cfg: NightlyConfig) -> dict[str, Any]:
    """The sweep's settings as data: YAML keys, or (older configs) `args`, the landscape command's flags.
    The night's prompt source and system prompt apply unless the sweep sets its own."""
    settings = {k: v for k, v in sweep.items() if k not in ("enabled", "args")}
    args = [str(a) for a in sweep.get("args") or []]
    i = 0
    while i < len(args):
        flag = args[i]
        if not flag.startswith("--"):
            raise ValueError(f"sweep args: expected a --flag, got {flag!r}")
        key, _, value = flag[2:].partition("=")
        key = key.replace("-", "_")
        if not _:
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            value, i = (args[i + 1], i + 1) if has_value else ("true", i)
        if key in ("no_progress", "dry_run"):  # display-only flags of the command line: not sweep settings
            i += 1
            continue
        if key == "judge":
            settings.setdefault("judges", []).append(value)
        elif key not in ("model", "name", "out"):
            settings[key] = value
        i += 1
    settings.setdefault("data", cfg.data)
    settings.setdefault("system_prompt", cfg.system_prompt)
    return settings


def evaluate_model(store: Store, cfg: NightlyConfig, spec: ModelSpec, report: NightlyReport,
                   evaluator: Callable[[ModelSpec, Mapping[str, Any]], dict[str, Any]],
                   get_judge: Callable[[str], Any],
                   run_landscape: Callable[[Mapping[str, Any], Path], int] = run_landscape_here) -> None:
    """Bring one model up to date: generation if new, each judge if new, landscape if configured."""
    wid, settings, key = base_job(cfg, spec)
    run = store.find_run(spec.name, BASE, key)
    if run is None:
        log.info("nightly: evaluating %s (%s)", spec.name, wid)
        results = evaluator(spec, settings)
        report.generations += 1
        run = add_lm_eval_results(store, results, spec.name, weights_id=wid, key=key, extra_meta={
            "settings": settings, "software": software_versions(), "created": now_iso(),
            "dataset": {"source": cfg.data, "revision": cfg.data.partition("@")[2] or None},
            "source": f"nightly: {spec.pretrained}" + (f"@{spec.revision}" if spec.revision else "")})
    else:
        report.skipped.append(f"{spec.name}: generations up to date (run {run.run_id})")
    _judge_run(store, run, cfg.judges, report, get_judge)
    _sweep(store, cfg, spec, wid, report, run_landscape)


def run_nightly(cfg: NightlyConfig, evaluator: Callable[[ModelSpec, Mapping[str, Any]], dict[str, Any]] | None = None,
                get_judge: Callable[[str], Any] | None = None, executor: str = "local",
                ray_options: Any = None) -> NightlyReport:
    """The whole nightly job under the store's lock; returns what it did (exit code in `.exit_code`).

    With `executor="ray"` the evaluations and sweeps due tonight first run as parallel Ray tasks; the
    sequential pass below then files their results (this process is the store's only writer)."""
    if get_judge is None:
        from safety_bench.judges.registry import get_judge as registry_get_judge

        get_judge = registry_get_judge
    store = open_store(cfg.store)
    report = NightlyReport()
    with locked(store.root / LOCK_NAME, stale_after=cfg.stale_lock_hours * 3600):
        evaluator = evaluator or Evaluator(cfg)
        run_landscape = run_landscape_here
        if executor == "ray":
            from safety_bench.orchestration.ray_nightly import prefetch

            evaluator, run_landscape = prefetch(store, cfg, ray_options, evaluator)
        for spec in cfg.models:
            try:
                evaluate_model(store, cfg, spec, report, evaluator, get_judge, run_landscape)
            except Exception as exc:  # one model's failure must not stop the others being published
                report.failures[spec.name] = f"{type(exc).__name__}: {exc}"
                log.error("nightly: %s failed: %s\n%s", spec.name, exc, traceback.format_exc())
        board = build_board(store, over_refusal_threshold=board_settings(cfg.board).over_refusal_threshold)
        board.log = ([f"FAILED {name}: {err}" for name, err in report.failures.items()]
                     + [f"gap: {g}" for g in report.gaps] + board.log)
        report.board = write_board(board, cfg.out)
        report.board_skipped = list(board.skipped)  # strict: a corrupt entry must not pass a nightly silently
    return report
