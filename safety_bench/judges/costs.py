"""Token usage and cost accounting for API judges.

Prices live in the judge spec (USD per million tokens) because they change more often than code does;
without prices the cost is reported as unknown rather than as a wrong number. Dry-run token counts are
estimates (about four characters per token for English text, plus a small per-message overhead).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

CHARS_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    """A cheap, dependency-free token estimate (no tokenizer of the remote model is available)."""
    return int(math.ceil(len(text) / CHARS_PER_TOKEN)) + MESSAGE_OVERHEAD_TOKENS


def estimate_cost(input_tokens: int, output_tokens: int, price_input_per_1m: float | None,
                  price_output_per_1m: float | None) -> float | None:
    if price_input_per_1m is None or price_output_per_1m is None:
        return None
    return input_tokens * float(price_input_per_1m) / 1e6 + output_tokens * float(price_output_per_1m) / 1e6


@dataclass
class Usage:
    """What one judge instance spent: requests (retries included), answers, tokens, estimated cost."""

    requests: int = 0
    answers: int = 0
    failed: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    wall_s: float = 0.0

    def add_tokens(self, usage: Any) -> None:
        if usage is None:
            return
        self.input_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.output_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def report(self, price_input_per_1m: float | None, price_output_per_1m: float | None) -> dict[str, Any]:
        out = asdict(self)
        out["wall_s"] = round(self.wall_s, 3)
        out["estimated_cost_usd"] = estimate_cost(self.input_tokens, self.output_tokens,
                                                  price_input_per_1m, price_output_per_1m)
        return out
