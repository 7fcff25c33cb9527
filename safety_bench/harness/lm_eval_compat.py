"""Every place safety-bench depends on lm-eval behaviour that is not public API, in one module.

Each entry names what it touches and the lm-eval versions it was checked against (`CHECKED_VERSIONS`);
`check()` (run by the tests) fails with a clear message when a patched or privately read name no longer
exists, so an lm-eval upgrade breaks loudly here instead of silently elsewhere.
"""

from __future__ import annotations

import copy
import functools
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

CHECKED_VERSIONS = ("0.4.13",)


# ---------------------------------------------------------------------- model registry

def register_model_type(name: str, target: str) -> None:
    """Register a model type lazily (`module:Class`) without hiding lm-eval's own model types.

    lm-eval 0.4.13 imports `lm_eval.models` (which registers its built-in types) only while the registry
    is empty; a package that registers first would leave the registry holding only its own types, and
    `get_model("hf")` would fail. So lm-eval's registrations are made first."""
    import lm_eval.models  # noqa: F401  (registers the built-in model types, lazily)
    from lm_eval.api.registry import model_registry

    if name not in model_registry:
        model_registry.register(name, target=target)


# ---------------------------------------------------------------------- group aggregation

def pooled_over_scored(task_metrics: Mapping[str, Mapping[str, Any]], leaf_tasks: Sequence[str],
                       metric_key: str) -> float | None:
    """A group's rate pooled over the records its subtasks scored: Σ rate·scored / Σ scored.

    lm-eval weights a group's subtasks by their document counts, which differs from the rate over all
    records as soon as some records are unscored (their subtask's rate is over fewer records). Weighting
    each subtask's rate by its own scored count gives exactly `metrics.kind_metrics` over the union."""
    _, _, filter_name = metric_key.partition(",")
    num = den = 0.0
    for task in leaf_tasks:
        result = task_metrics.get(task) or {}
        value, weight = result.get(metric_key), result.get(f"scored,{filter_name}")
        if not isinstance(value, (int, float)) or not isinstance(weight, (int, float)) or value != value:
            continue
        num += float(value) * float(weight)
        den += float(weight)
    return num / den if den else None


_PATCHED_ATTR = "_safety_bench_pooled"


def honour_callable_group_aggregation() -> None:
    """lm-eval 0.4.13 accepts a callable `aggregation` in a group's `aggregate_metric_list`
    (`AggMetricConfig`) but always takes the size-weighted mean. Wrap `Group.aggregate` so a callable is
    used: it receives (task metrics, leaf task names, "metric,filter") and returns the group's value."""
    from lm_eval.api.group import Group

    if getattr(Group.aggregate, _PATCHED_ATTR, False):
        return
    original = Group.aggregate

    def aggregate(self: Any, task_metrics: dict[str, Any]) -> Any:
        out = original(self, task_metrics)
        leaves = [t.task_name for t in self.get_all_tasks()]
        for cfg in self.aggregate_metric_list or []:
            if not callable(cfg.aggregation):
                continue
            for key in [k for k in out if isinstance(k, str) and k.split(",")[0] == cfg.metric]:
                value = cfg.aggregation(task_metrics, leaves, key)
                out[key] = float("nan") if value is None else value
                out.pop(f"{cfg.metric}_stderr,{key.partition(',')[2]}", None)
        return out

    setattr(aggregate, _PATCHED_ATTR, True)
    Group.aggregate = aggregate  # type: ignore[method-assign]


# ---------------------------------------------------------------------- lm-eval in a loop (the sweep)
# lm-eval is built for one evaluation per process. Two of its per-call costs are pure overhead when a sweep
# calls it 21 or 441 times in one process: the environment report (`add_env_info` runs `pip list` and friends
# in subprocesses, ~0.3 s per call) and the git hash, which cannot change between points; and one progress
# bar per task per point while building requests. Inside `repeated_runs()` the first call computes the
# environment report and later ones reuse it; request building is silent. Results are otherwise exactly
# what a stock `simple_evaluate` returns.

def _once(add_info: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """`add_info(storage)` computed on the first call, its additions replayed on later calls."""
    added: dict[str, Any] = {}

    def replay(storage: dict[str, Any]) -> None:
        if not added:
            before = set(storage)
            add_info(storage)
            added.update({k: copy.deepcopy(v) for k, v in storage.items() if k not in before})
            return
        storage.update(copy.deepcopy(added))

    return replay


@contextmanager
def repeated_runs() -> Iterator[None]:
    """Make repeated `lm_eval.simple_evaluate` calls in this process cheap (see the module docstring)."""
    import lm_eval.api.task as task_module
    import lm_eval.evaluator as evaluator

    saved = (evaluator.add_env_info, evaluator.get_git_commit_hash, task_module.tqdm)
    git_hash = functools.lru_cache(maxsize=1)(saved[1])
    evaluator.add_env_info = _once(saved[0])
    evaluator.get_git_commit_hash = git_hash
    task_module.tqdm = functools.partial(saved[2], disable=True)
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash, task_module.tqdm = saved


class GenerationTimer:
    """Wraps an lm-eval model's `generate_until` to separate generation time from lm-eval's overhead, and
    silences its per-call progress bar (`disable_tqdm`, a keyword lm-eval's models accept)."""

    def __init__(self, lm: Any) -> None:
        self.seconds = 0.0
        inner = lm.generate_until

        def timed(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("disable_tqdm", True)  # the sweep has its own progress bar over points
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        lm.generate_until = timed


def set_batch_size(lm: Any, batch: int) -> None:
    """Change a loaded HFLM's batch size in place (its private `batch_size_per_gpu`; no public setter)."""
    lm.batch_size_per_gpu = int(batch)


# ---------------------------------------------------------------------- lm-eval's own CLI, in-process

def run_cli(argv: Sequence[str]) -> None:
    """Run `lm_eval run ARGV` in this process (lm-eval's CLI class reads `sys.argv`; restored afterwards)."""
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    setup_logging()
    saved = sys.argv
    sys.argv = ["lm_eval", "run", *argv]
    try:
        cli = HarnessCLI()
        cli.execute(cli.parse_args())
    finally:
        sys.argv = saved


# ---------------------------------------------------------------------- chat templates

def with_system_turn_kept(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`fewshot_context` keyword arguments whose chat template always receives a system turn.

    lm-eval drops an empty system message, so the template's default system prompt comes back; the
    `empty` system-prompt preset wraps the `chat_template` callable lm-eval passes (a private keyword of
    `ConfigurableTask.fewshot_context`) so that an explicit empty system turn reaches the template."""
    template = kwargs.get("chat_template")
    if kwargs.get("apply_chat_template") and template is not None:
        kwargs = {**kwargs, "chat_template": functools.partial(_with_empty_system_turn, template)}
    return kwargs


def _with_empty_system_turn(template: Any, messages: list[dict[str, str]], *args: Any, **kwargs: Any) -> str:
    if not messages or messages[0].get("role") != "system":
        messages = [{"role": "system", "content": ""}, *messages]
    return template(messages, *args, **kwargs)


# ---------------------------------------------------------------------- the check

REQUIRED: tuple[tuple[str, str], ...] = (
    ("lm_eval.models", "MODEL_MAPPING"),
    ("lm_eval.api.registry", "model_registry"),
    ("lm_eval.api.group", "Group.aggregate"),
    ("lm_eval.api.group", "Group.get_all_tasks"),
    ("lm_eval.config.group", "AggMetricConfig"),
    ("lm_eval.evaluator", "add_env_info"),
    ("lm_eval.evaluator", "get_git_commit_hash"),
    ("lm_eval.api.task", "tqdm"),
    ("lm_eval.api.task", "ConfigurableTask.fewshot_context"),
    ("lm_eval._cli", "HarnessCLI"),
    ("lm_eval.utils", "setup_logging"),
    ("lm_eval.models.huggingface", "HFLM"),
)


def check() -> list[str]:
    """What this module relies on and can no longer find in the installed lm-eval (empty when all is there)."""
    import importlib
    import inspect

    problems = []
    for module_name, dotted in REQUIRED:
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            problems.append(f"{module_name}: cannot import ({exc})")
            continue
        for part in dotted.split("."):
            if not hasattr(obj, part):
                problems.append(f"{module_name}.{dotted}")
                break
            obj = getattr(obj, part)
    try:
        from lm_eval.api.task import ConfigurableTask
        from lm_eval.models.huggingface import HFLM

        if "chat_template" not in inspect.signature(ConfigurableTask.fewshot_context).parameters:
            problems.append("lm_eval.api.task.ConfigurableTask.fewshot_context(chat_template=...)")
        if "batch_size_per_gpu" not in inspect.getsource(HFLM.__init__):
            problems.append("lm_eval.models.huggingface.HFLM.batch_size_per_gpu")
    except (ImportError, OSError, TypeError) as exc:
        problems.append(f"lm-eval introspection failed: {exc}")
    return problems


def assert_compatible() -> None:
    """Raise with every missing name, the installed lm-eval version and the versions this was checked with."""
    problems = check()
    if problems:
        from importlib.metadata import version

        raise RuntimeError(f"safety-bench relies on lm-eval internals that lm-eval {version('lm_eval')} lacks: "
                           f"{'; '.join(problems)} (checked against lm-eval {', '.join(CHECKED_VERSIONS)})")
