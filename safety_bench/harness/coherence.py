"""Score answers under a loaded lm-eval model: each answer's mean per-token log-likelihood given its prompt.

The sweep calls this once, at the origin, for every point's answers together (one batched
`loglikelihood` call through lm-eval's public model API, so the HF and vLLM backends both work), rather
than restoring the model per point. The arithmetic on the scores is `landscape/coherence.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def score_answers(lm: Any, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    """Mean per-token log-likelihood (nats) of each (context, answer) pair; None for an empty answer."""
    from lm_eval.api.instance import Instance

    todo = [i for i, (_, answer) in enumerate(pairs) if answer.strip()]
    out: list[float | None] = [None] * len(pairs)
    if not todo:
        return out
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=(pairs[i][0], pairs[i][1]), idx=k)
                for k, i in enumerate(todo)]
    results = lm.loglikelihood(requests, disable_tqdm=True)
    for i, (logprob, _greedy) in zip(todo, results, strict=True):
        context, answer = pairs[i]
        n = _answer_tokens(lm, context, answer)
        out[i] = float(logprob) / n if n else None
    return out


def _answer_tokens(lm: Any, context: str, answer: str) -> int:
    """Tokens of the answer as lm-eval splits the pair (whole sequence minus the context)."""
    encode = getattr(lm, "tok_encode", None)
    if encode is None:
        return max(1, len(answer.split()))
    stripped = context.rstrip()
    answer = context[len(stripped):] + answer
    if not stripped:
        return len(encode(answer))
    return max(1, len(encode(stripped + answer)) - len(encode(stripped)))
