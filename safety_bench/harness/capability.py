"""A capability task at a landscape point: any lm-eval task (generative or multiple-choice) run through
the sweep's live, perturbed model, reduced to one score and the name of the metric it came from."""

from __future__ import annotations

from typing import Any

# The metric a task reports as its score, in order of preference (lm-eval's `metric,filter` keys).
PREFERRED_METRICS = ("exact_match", "acc", "acc_norm", "f1", "em", "mcc", "bleu")


def pick_metric(task_results: dict[str, Any]) -> tuple[str, float]:
    """(`metric,filter` key, value) of a task's results block: the first preferred metric present, else the
    first numeric one (stderr entries, aliases and sample counts never count)."""
    numeric = {k: float(v) for k, v in task_results.items()
               if "," in k and "_stderr" not in k and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not numeric:
        raise ValueError(f"the capability task reported no numeric metric (keys: {sorted(task_results)})")
    for name in PREFERRED_METRICS:
        for key, value in numeric.items():
            if key.split(",", 1)[0] == name:
                return key, value
    key = next(iter(numeric))
    return key, numeric[key]


def capability_task_manager(task: str, suite_tm: Any) -> Any:
    """The suite's TaskManager when it knows `task`, else one that also indexes lm-eval's built-in tasks
    (mmlu, arc_easy, gsm8k, ...; building it takes ~15 s, so a sweep does it once)."""
    if task in suite_tm.all_tasks:
        return suite_tm
    from safety_bench.harness import task_manager

    tm = task_manager(dict(getattr(suite_tm, "metadata", None) or {}), include_defaults=True)
    if task not in tm.all_tasks:
        raise ValueError(f"capability task {task!r} is neither a safety-bench task nor an lm-eval task")
    return tm


def evaluate_capability(lm: Any, tm: Any, task: str, limit: int | None = None) -> dict[str, Any]:
    """Run `task` on the live model as it stands (perturbed) and return {task, metric, value, n, results}.

    Greedy and seeded like the safety task; the task's own generation settings apply (no max_gen_toks
    override: an arithmetic answer needs few tokens, a gsm8k chain many)."""
    import lm_eval

    results = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=tm, log_samples=False, apply_chat_template=True,
        batch_size=lm.batch_size, limit=limit, bootstrap_iters=0, use_cache=None, random_seed=0,
        numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
    block = (results.get("results") or {}).get(task)
    if block is None:
        raise ValueError(f"capability task {task!r} returned no results")
    metric, value = pick_metric(block)
    n = (results.get("n-samples") or {}).get(task, {}).get("effective")
    return {"task": task, "metric": metric, "value": value, "n": n,
            "results": {"results": results.get("results"), "versions": results.get("versions"),
                        "n-samples": results.get("n-samples")}}
