"""Shared machinery of `align` and `finetune`: chat-template encoding with assistant-only labels, batched
greedy generation, a small deterministic training loop, and atomic output folders.

Kept deliberately small (a recipe, not a general trainer): one optimiser (AdamW), linear warm-up and
decay, gradient clipping, loss averaged over assistant tokens only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
# System-turn variants a training example can be rendered with. `default` sends no system turn, so the
# chat template's own default applies (SmolLM2's names itself); `empty` sends an explicit empty one.
SYSTEM_VARIANTS: dict[str, str | None] = {"default": None, "empty": ""}


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


def messages_for(instruction: str, system: str | None, response: str | None = None) -> list[dict[str, str]]:
    msgs = [] if system is None else [{"role": "system", "content": system}]
    msgs.append({"role": "user", "content": instruction})
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return msgs


def prompt_text(tokenizer, instruction: str, system: str | None) -> str:
    """The chat-templated prompt up to and including the assistant header."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; align/finetune train chat models only")
    return tokenizer.apply_chat_template(messages_for(instruction, system), tokenize=False,
                                         add_generation_prompt=True)


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that close an assistant turn: the EOS token (`<|im_end|>` for ChatML templates)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token, so a training answer could not be closed")
    return [int(tokenizer.eos_token_id)]


def encode_example(tokenizer, instruction: str, response: str, system: str | None = None,
                   finished: bool = True, max_length: int = 384) -> Example:
    """Prompt (chat template applied) + answer; labels cover the answer tokens only (and the end-of-turn
    token when the answer is complete: a truncated answer must not teach the model to stop mid-way)."""
    prompt_ids = tokenizer(prompt_text(tokenizer, instruction, system), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if finished:
        answer_ids = answer_ids + end_of_turn_ids(tokenizer)
    input_ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + answer_ids)[:max_length]
    return Example(list(map(int, input_ids)), list(map(int, labels)))


# ------------------------------------------------------------------ devices, seeds, versions

def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def model_fingerprint(model_dir: str | Path) -> str:
    """A cheap identity of a model folder: its config and the names and sizes of its weight files."""
    root = Path(model_dir)
    h = hashlib.sha256()
    config = root / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    for f in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------ generation

def generate_greedy(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 64, batch_size: int = 16,
                    progress: bool = True, desc: str = "generating") -> list[tuple[str, bool]]:
    """Greedy answers to already-templated prompts, batched with left padding.

    Returns (text, finished) per prompt; `finished` says the model ended its turn before the limit.
    Prompts are processed longest first, which keeps padding (and the time spent on it) small.
    """
    import torch
    from tqdm.auto import tqdm

    eos = end_of_turn_ids(tokenizer)
    saved_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: dict[int, tuple[str, bool]] = {}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt") as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                with torch.no_grad():
                    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=pad_id, eos_token_id=eos)
                new = out[:, enc["input_ids"].shape[1]:]
                for row, i in zip(new.tolist(), idx, strict=True):
                    finished = any(t in eos for t in row)
                    if finished:
                        row = row[:min(row.index(t) for t in eos if t in row)]
                    results[i] = (tokenizer.decode(row, skip_special_tokens=True).strip(), finished)
                bar.update(len(idx))
    finally:
        tokenizer.padding_side = saved_side
        model.train(was_training)
    return [results[i] for i in range(len(prompts))]


# ------------------------------------------------------------------ training loop

@dataclass
class TrainSettings:
    epochs: float = 3.0
    lr: float = 2e-4
    batch_size: int = 8
    max_steps: int | None = None
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    # Examples per forward/backward pass; None: the whole batch at once. A smaller value accumulates
    # gradients over micro-batches, so an effective batch of 128 (Qi et al.'s benign setting) fits in
    # memory; the loss is still the mean over the whole batch's answer tokens (the same optimiser step).
    micro_batch_size: int | None = None


def _collate(batch: Sequence[Example], pad_id: int, device):
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):  # right padding: positions stay 0..n-1 for every example
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def _batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, pool: int = 8) -> list[list[int]]:
    """Shuffled batches of similar lengths (less padding): shuffle, sort within pools of `pool` batches,
    cut into batches, shuffle the batches."""
    rng = random.Random(f"{seed}:{epoch}")  # str seeds hash with sha512: stable across runs and platforms
    order = list(range(len(lengths)))
    rng.shuffle(order)
    size = batch_size * pool
    grouped = []
    for i in range(0, len(order), size):
        grouped += sorted(order[i:i + size], key=lambda j: lengths[j])
    batches = [grouped[i:i + batch_size] for i in range(0, len(grouped), batch_size)]
    rng.shuffle(batches)
    return batches


def _accumulate(model, batch: Sequence[Example], pad_id: int, device, micro_batch_size: int | None):
    """Forward and backward over `batch` in micro-batches; gradients equal one pass over the whole batch
    (each micro-batch's summed token loss is divided by the batch's answer-token count).
    Returns (mean loss over the batch's answer tokens, that token count)."""
    import torch

    size = micro_batch_size or len(batch)
    n_tokens = sum(sum(t != IGNORE_INDEX for t in e.labels[1:]) for e in batch)
    total = 0.0
    for start in range(0, len(batch), size):
        ids, mask, labels = _collate(batch[start:start + size], pad_id, device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1, :].float()
        target = labels[:, 1:]
        loss_sum = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
        (loss_sum / max(1, n_tokens)).backward()
        total += float(loss_sum.item())
    return torch.tensor(total / max(1, n_tokens)), int(n_tokens)


def train(model, examples: Sequence[Example], settings: TrainSettings, pad_id: int,
          log_path: Path | None = None, progress: bool = True,
          on_step: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the model's trainable parameters; returns the per-step log (also written to `log_path`).

    The loss of a batch is the mean cross-entropy over its assistant tokens (labels != -100).
    """
    import torch
    from tqdm.auto import tqdm

    if not examples:
        raise ValueError("no training examples")
    if not any(any(t != IGNORE_INDEX for t in e.labels) for e in examples):
        raise ValueError("no example has an answer token to learn (all labels masked: prompts too long?)")
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    steps_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = max(1, math.ceil(settings.epochs * steps_per_epoch))
    if settings.max_steps:
        total = min(total, settings.max_steps)
    warmup = int(settings.warmup_ratio * total)
    optimiser = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    entries: list[dict] = []
    log_file = open(log_path, "w", encoding="utf-8") if log_path else None
    lengths = [len(e.input_ids) for e in examples]
    model.train()
    start = time.perf_counter()
    step = 0
    try:
        with tqdm(total=total, desc="training", disable=not progress, unit="step") as bar:
            epoch = 0
            while step < total:
                for batch_idx in _batches(lengths, settings.batch_size, settings.seed, epoch):
                    if step >= total:
                        break
                    optimiser.zero_grad(set_to_none=True)
                    loss, n_tokens = _accumulate(model, [examples[i] for i in batch_idx], pad_id, device,
                                                 settings.micro_batch_size)
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                    lr = schedule.get_last_lr()[0]
                    optimiser.step()
                    schedule.step()
                    step += 1
                    entry = {"step": step, "epoch": round(epoch + (step - epoch * steps_per_epoch) /
                                                          steps_per_epoch, 4),
                             "loss": round(float(loss.item()), 6), "lr": lr,
                             "grad_norm": round(float(grad_norm), 6),
                             "tokens": n_tokens,
                             "elapsed_s": round(time.perf_counter() - start, 2)}
                    entries.append(entry)
                    if log_file:
                        log_file.write(json.dumps(entry) + "\n")
                        log_file.flush()
                    if on_step:
                        on_step(entry)
                    bar.set_postfix(loss=f"{entry['loss']:.3f}")
                    bar.update(1)
                epoch += 1
    finally:
        if log_file:
            log_file.close()
    model.eval()
    return entries


# ------------------------------------------------------------------ files

@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` (a failed or killed run
    leaves any previous `target` untouched)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def loss_summary(entries: Sequence[dict], window: int = 5) -> dict[str, float]:
    """Mean loss of the first and last `window` steps (what the tests and recipe.json report)."""
    if not entries:
        return {}
    w = max(1, min(window, len(entries) // 2 or 1))
    first = sum(e["loss"] for e in entries[:w]) / w
    last = sum(e["loss"] for e in entries[-w:]) / w
    return {"first_loss": round(first, 4), "last_loss": round(last, 4), "steps": len(entries)}
