"""Dataset loaders of the bundled capability tasks (`safety_capability_sample`, `..._mc`).

They give a capability landscape (`safety-bench landscape --capability-task`) something to measure with
no hub: short arithmetic answered in free text (exact match on the last number of the answer), and
short facts scored by log-likelihood over the choices (the multiple-choice path of the perturbed model).
The items are this suite's own (safety_bench/prompts/capability_*.jsonl).
"""

from __future__ import annotations

from typing import Any

import datasets

from safety_bench import data


def _limited(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    n = metadata.get("capability_items")
    return rows[: int(n)] if n else rows


def load_capability_arithmetic(**metadata: Any) -> datasets.DatasetDict:
    """`safety_capability_sample`: 40 one- and two-digit sums and differences (metadata
    `capability_items: N` keeps the first N)."""
    rows = [dict(r) for r in data.capability_items("arithmetic")]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(_limited(rows, metadata))})


def load_capability_facts(**metadata: Any) -> datasets.DatasetDict:
    """`safety_capability_sample_mc`: 24 four-way multiple-choice facts."""
    rows = [dict(r) for r in data.capability_items("facts")]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(_limited(rows, metadata))})
