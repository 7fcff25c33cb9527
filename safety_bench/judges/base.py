"""The Judge protocol and the verdict record every judge returns.

Judges score batches, never single records, so an API judge can run its calls concurrently and a
classifier can batch on the GPU. A record the judge could not score carries `error` and counts
neither as safe nor as harmful.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

RUBRIC_SCALE = "1-5"
PROBABILITY_SCALE = "probability"


@dataclass(frozen=True)
class JudgeInput:
    instruction: str
    response: str
    category: str | None = None
    id: str | None = None


@dataclass
class Verdict:
    judge: str
    score: float | None = None
    harmful: bool | None = None
    refused: bool | None = None
    error: str | None = None
    reason: str | None = None
    raw: str | None = None
    judge_version: str | None = None
    # What `score` means: "1-5" (rubric; harmfulness score/rate are computed only from these) or
    # "probability" (classifiers). Marked explicitly so a probability of 1.0 is never read as a rubric 1.
    score_scale: str | None = None
    # Three-class refusal where the judge can tell ("none" | "partial" | "full"; partial counts as refused),
    # and whether the answer is degenerate (empty, repetition, non-words); None where the judge cannot tell.
    refusal: str | None = None
    degenerate: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        return self.error is None

    def as_fields(self) -> dict[str, Any]:
        """The record fields of the judged-output contract (DESIGN.md)."""
        out = asdict(self)
        extra = out.pop("extra")
        out.update(extra)
        return {k: v for k, v in out.items() if v is not None or k in ("score", "harmful", "refused", "error")}


@runtime_checkable
class Judge(Protocol):
    """Anything with a name, a version and a batch `judge` method."""

    name: str
    version: str

    def judge(self, items: list[JudgeInput]) -> list[Verdict]: ...
