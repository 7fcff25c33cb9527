"""Bridge from the task YAMLs to the installed package (lm-eval imports this file by path)."""

from safety_bench.harness.task_hooks import (  # noqa: F401
    JudgeFilter,
    SafetyTask,
    aggregate_asr,
    aggregate_harmfulness_rate,
    aggregate_harmfulness_score,
    aggregate_refusal_rate,
    aggregate_scored,
    aggregate_unscored,
    group_pooled,
    load_advbench,
    load_advbench_all,
    load_benign,
    load_category,
    load_mini,
    process_results,
)
