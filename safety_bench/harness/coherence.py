"""Score answers under a loaded lm-eval model: each answer's mean per-token log-likelihood given its prompt.

The sweep calls this once, at the origin, for every point's answers together, rather than restoring the
model per point. Every point answers the same prompts, so a prompt is scored once and its answers share
it: on a Hugging Face causal model the prompt's KV cache is computed once and each batch of its answers
runs on a copy of it (only the answers' tokens go through the model again). Other backends (vLLM) use
lm-eval's public `loglikelihood`, one request per pair. Both split prompt and answer into tokens the way
lm-eval does (`_encode_pair`), so they give the same numbers up to float rounding (tested). The
arithmetic on the scores is `landscape/coherence.py`.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from typing import Any


def score_answers(lm: Any, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    """Mean per-token log-likelihood (nats) of each (context, answer) pair; None for an empty answer."""
    todo = [i for i, (_, answer) in enumerate(pairs) if answer.strip()]
    out: list[float | None] = [None] * len(pairs)
    if not todo:
        return out
    fast = _hf_causal(lm) and all(pairs[i][0].strip() for i in todo)
    scores = _score_shared_prompts(lm, [pairs[i] for i in todo]) if fast else _score_with_lm_eval(
        lm, [pairs[i] for i in todo])
    for i, score in zip(todo, scores, strict=True):
        out[i] = score
    return out


def _hf_causal(lm: Any) -> bool:
    import torch

    return (getattr(lm, "backend", None) == "causal" and isinstance(getattr(lm, "model", None), torch.nn.Module)
            and callable(getattr(lm, "_encode_pair", None)))


def _score_with_lm_eval(lm: Any, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    from lm_eval.api.instance import Instance

    requests = [Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=k) for k, pair in enumerate(pairs)]
    results = lm.loglikelihood(requests, disable_tqdm=True)
    out: list[float | None] = []
    for (context, answer), (logprob, _greedy) in zip(pairs, results, strict=True):
        n = _answer_tokens(lm, context, answer)
        out.append(float(logprob) / n if n else None)
    return out


def _score_shared_prompts(lm: Any, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
    """One forward pass per distinct prompt (its KV cache kept), then the answers in batches on copies of it."""
    import torch

    model, device = lm.model, getattr(lm, "device", None) or next(lm.model.parameters()).device
    batch = lm.batch_size if isinstance(getattr(lm, "batch_size", None), int) else 16
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    cache_argument = _cache_argument(model)
    by_context: dict[tuple[int, ...], list[tuple[int, list[int]]]] = defaultdict(list)
    for k, (context, answer) in enumerate(pairs):
        context_enc, answer_enc = lm._encode_pair(context, answer)
        if answer_enc:  # an answer of spaces only has no token to score (None)
            by_context[tuple(context_enc)].append((k, list(answer_enc)))
    out: list[float | None] = [None] * len(pairs)
    with torch.no_grad():
        for context_enc, answers in by_context.items():
            longest = max(len(a) for _, a in answers)
            if limit and len(context_enc) + longest > limit:  # lm-eval's left truncation: its own path
                for k, _ in answers:
                    out[k] = _score_with_lm_eval(lm, [pairs[k]])[0]
                continue
            prompt = model(input_ids=torch.tensor([context_enc], device=device), use_cache=True)
            cache = getattr(prompt, "cache", None)
            cache = prompt.past_key_values if cache is None else cache
            first = torch.log_softmax(prompt.logits[0, -1].float(), dim=-1)  # predicts each answer's 1st token
            for start in range(0, len(answers), batch):
                chunk = answers[start:start + batch]
                for (k, answer), logprob in zip(chunk, _answer_logprobs(model, cache_argument, cache, first,
                                                                          len(context_enc), chunk, device),
                                                strict=True):
                    out[k] = logprob / len(answer)
    return out


def _answer_logprobs(model: Any, cache_argument: str, cache: Any, first: Any, context_len: int,
                     chunk: list[tuple[int, list[int]]], device: Any) -> list[float]:
    """Summed log-probability of each answer of `chunk` after the cached prompt (answers right-padded)."""
    import torch

    n, width = len(chunk), max(len(a) for _, a in chunk)
    ids = torch.zeros((n, width), dtype=torch.long, device=device)
    mask = torch.zeros((n, context_len + width), dtype=torch.long, device=device)
    mask[:, :context_len] = 1
    for row, (_, answer) in enumerate(chunk):
        ids[row, :len(answer)] = torch.tensor(answer, device=device)
        mask[row, context_len:context_len + len(answer)] = 1
    totals = first[ids[:, 0]].clone()
    if width > 1:
        shared = copy.deepcopy(cache)
        shared.batch_repeat_interleave(n)
        logits = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], use_cache=True,
                       **{cache_argument: shared}).logits
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        valid = mask[:, context_len + 1:].to(logp.dtype)
        totals = totals + (logp * valid).sum(dim=1)
    return [float(t) for t in totals]


def _cache_argument(model: Any) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name still works, with a warning)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


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
