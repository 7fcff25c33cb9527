"""Every place safety-bench depends on lm-eval behaviour that is not public API, in one module.

Each entry names what it touches and the lm-eval versions it was checked against (`CHECKED_VERSIONS`);
`check()` (run by the tests) fails with a clear message when a patched or privately read name no longer
exists, so an lm-eval upgrade breaks loudly here instead of silently elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def check() -> list[str]:
    """What this module relies on and can no longer find (empty when all is there)."""
    problems = []
    try:
        import lm_eval.models as models

        if not hasattr(models, "MODEL_MAPPING"):
            problems.append("lm_eval.models.MODEL_MAPPING")
    except ImportError as exc:
        problems.append(f"lm_eval.models: {exc}")
    try:
        from lm_eval.api.group import Group
    except ImportError as exc:
        return [f"lm_eval.api.group.Group: {exc}"]
    for name in ("aggregate", "get_all_tasks", "aggregate_metric_list"):
        if not hasattr(Group, name) and name not in getattr(Group, "__dataclass_fields__", {}):
            problems.append(f"lm_eval.api.group.Group.{name}")
    return problems
