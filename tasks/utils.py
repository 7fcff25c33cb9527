"""Bridge from the task YAMLs to the installed package (lm-eval imports this file by path)."""

from safety_bench.harness.task_hooks import (  # noqa: F401
    JudgeFilter,
    SafetyTask,
    aggregate_mean_of_scored,
    load_advbench,
    load_benign,
    load_category,
    load_mini,
    process_results,
)
