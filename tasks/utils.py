"""Bridge from the task YAMLs to the installed package (lm-eval imports this file by path)."""

from safety_bench.harness.capability_tasks import load_capability_arithmetic, load_capability_facts  # noqa: F401
from safety_bench.harness.task_hooks import (  # noqa: F401
    JudgeFilter,
    SafetyTask,
    aggregate_asr,
    aggregate_full_refusal_rate,
    aggregate_harmfulness_rate,
    aggregate_harmfulness_score,
    aggregate_partial_refusal_rate,
    aggregate_refusal_rate,
    aggregate_scored,
    aggregate_unscored,
    group_pooled,
    load_advbench,
    load_advbench_all,
    load_benign,
    load_category,
    load_mini,
    load_xstest,
    load_xstest_unsafe,
    process_results,
)
