"""The one retry policy of the API judges: exponential backoff with full jitter, honouring Retry-After.

The `openai` client retries on its own by default; two stacked policies multiply the waits and hide
which one gave up, so the judge builds its client with `max_retries=0` and retries here. Retried:
HTTP 408/409/429 and 5xx, timeouts and connection errors. Anything else (a bad request, a wrong key,
an unknown model) fails at once: waiting would not change the answer. After `max_attempts` the caller
marks the record as an error; a score is never guessed.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6          # total tries, the first included
    base_delay: float = 1.0        # seconds; attempt k waits up to base * 2**k
    max_delay: float = 60.0        # cap on one computed backoff wait
    max_retry_after: float = 300.0  # cap on a server-requested wait

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform(0, min(max_delay, base * 2**attempt)), attempt counted from 0."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass  # malformed: fall back to the standard Retry-After header
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def classify_error(exc: BaseException) -> tuple[bool, float | None, str]:
    """(retryable, server-requested wait, short description) for an exception from the openai client."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return True, None, "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return True, None, f"connection error: {exc}"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = getattr(exc.response, "headers", None)
        retryable = status in RETRYABLE_STATUS or status >= 500
        return retryable, parse_retry_after(headers), f"HTTP {status}: {_short(exc)}"
    if isinstance(exc, asyncio.TimeoutError):
        return True, None, "timeout"
    return False, None, f"{type(exc).__name__}: {exc}"


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


class RetryExhausted(Exception):
    """The call failed for good; `attempts` tries were made and `last` says why."""

    def __init__(self, last: str, attempts: int, retryable: bool) -> None:
        kind = "gave up after" if retryable else "not retryable, failed after"
        super().__init__(f"{kind} {attempts} attempt(s): {last}")
        self.last, self.attempts, self.retryable = last, attempts, retryable


async def call_with_retry(call: Callable[[], Awaitable[T]], policy: RetryPolicy,
                          sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                          on_retry: Callable[[int, float, str], None] | None = None,
                          rng: random.Random | None = None) -> tuple[T, int]:
    """Run `call` under the policy; returns (result, attempts) or raises RetryExhausted."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except Exception as exc:  # noqa: BLE001 - classified below; non-API errors are not retried
            retryable, retry_after, why = classify_error(exc)
            if not retryable or attempt >= policy.max_attempts:
                raise RetryExhausted(why, attempt, retryable) from exc
            wait = policy.backoff(attempt - 1, rng)
            if retry_after is not None:  # the server knows best, within reason
                wait = max(wait, min(retry_after, policy.max_retry_after))
            if on_retry is not None:
                on_retry(attempt, wait, why)
            await sleep(wait)
