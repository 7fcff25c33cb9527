"""The Judge protocol. The verdict a judge returns is the pipeline's one record type (`records.Verdict`).

Judges score batches, never single records, so an API judge can run its calls concurrently and a
classifier can batch on the GPU. A record the judge could not score carries `error` and counts
neither as safe nor as harmful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from safety_bench.records import PROBABILITY_SCALE, RUBRIC_SCALE, Verdict

__all__ = ["PROBABILITY_SCALE", "RUBRIC_SCALE", "Judge", "JudgeInput", "Verdict"]


@dataclass(frozen=True)
class JudgeInput:
    instruction: str
    response: str
    category: str | None = None
    id: str | None = None


@runtime_checkable
class Judge(Protocol):
    """Anything with a name, a version and a batch `judge` method."""

    name: str
    version: str

    def judge(self, items: list[JudgeInput]) -> list[Verdict]: ...
