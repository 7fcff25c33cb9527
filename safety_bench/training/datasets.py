"""Training data for `align` and `finetune`: the bundled sets, user JSONL files, and disjointness checks.

Bundled files (all written for this project, in `safety_bench/prompts/`):

- `align_harmful.jsonl`: 20 short, non-operational harmful *requests* per category (220), each paired
  with a short refusal (`response`), worded in many ways. Disjoint from the evaluation prompts.
- `align_benign.jsonl`: harmless prompts (many with alarming words such as "kill a process", or on the
  harmful categories' topics asked safely). Their answers come from the base model itself at training
  time (self-distillation), so no answer is written by hand.
- `align_borderline.jsonl`: 160 harmless prompts that only *sound* harmful, 20 per `kind` (homonyms,
  figurative language, safe targets, safe contexts, definitions, history, public and fictional figures'
  privacy), the kinds over-refusal benchmarks probe. Self-distilled like the benign set.
- `borderline_val.jsonl`: the validation split of the same kinds (12 per kind), never trained or tuned
  on: `refusal-check` reports over-refusal on it per kind. Disjoint from every training prompt.
- `finetune_benign.jsonl`: ordinary helpful question/answer pairs for the benign fine-tuning attack.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from safety_bench.data import bundled_benign_prompts, sample_prompts
from safety_bench.jsonio import RecordError, parse_jsonl
from safety_bench.validation import UserError

ALIGN_HARMFUL_FILE = "align_harmful.jsonl"
ALIGN_BENIGN_FILE = "align_benign.jsonl"
FINETUNE_BENIGN_FILE = "finetune_benign.jsonl"
ALIGN_BORDERLINE_FILE = "align_borderline.jsonl"
BORDERLINE_VAL_FILE = "borderline_val.jsonl"
# The kinds of borderline-safe prompt (harmless requests that only sound harmful), in report order.
BORDERLINE_KINDS = ("homonym", "figurative", "safe_target", "safe_context", "definition", "history",
                    "privacy_public", "privacy_fictional")

Record = dict[str, str]


class TrainingDataError(UserError, ValueError):
    """A training data file is missing or malformed; the message says what is expected."""


def _bundled_text(name: str) -> str:
    return resources.files("safety_bench.prompts").joinpath(name).read_text(encoding="utf-8")


def _parse_jsonl(text: str, source: str) -> list[dict]:
    try:
        return parse_jsonl(text, source)
    except RecordError as exc:
        raise TrainingDataError(str(exc)) from None


def bundled_sha256(name: str) -> str:
    return hashlib.sha256(_bundled_text(name).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def records_sha256(records: Iterable[dict]) -> str:
    """sha256 of the records as canonical JSON lines (key order fixed)."""
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return h.hexdigest()


def align_harmful_pairs() -> list[Record]:
    """The 220 bundled harmful requests with refusals: `id`, `category`, `instruction`, `response`."""
    return _parse_jsonl(_bundled_text(ALIGN_HARMFUL_FILE), ALIGN_HARMFUL_FILE)


def align_benign_prompts() -> list[Record]:
    """The bundled harmless prompts whose answers the base model writes (self-distillation)."""
    return _parse_jsonl(_bundled_text(ALIGN_BENIGN_FILE), ALIGN_BENIGN_FILE)


def align_borderline_prompts() -> list[Record]:
    """The bundled borderline-safe training prompts (`id`, `category` 'borderline', `kind`, `instruction`);
    their answers are self-distilled from the base model, like the benign set's."""
    return _parse_jsonl(_bundled_text(ALIGN_BORDERLINE_FILE), ALIGN_BORDERLINE_FILE)


def borderline_validation_prompts() -> list[Record]:
    """The borderline-safe validation split (12 per kind): never trained or tuned on; `refusal-check`
    measures over-refusal on it."""
    return _parse_jsonl(_bundled_text(BORDERLINE_VAL_FILE), BORDERLINE_VAL_FILE)


def finetune_benign_pairs() -> list[Record]:
    """The bundled benign instruction/response pairs for the fine-tuning attack."""
    return _parse_jsonl(_bundled_text(FINETUNE_BENIGN_FILE), FINETUNE_BENIGN_FILE)


def read_pairs(path: str | Path) -> list[Record]:
    """A user's instruction data: JSONL with `instruction` (or `prompt`) and `response` (or `output`,
    `completion`); an Alpaca-style `input` field is appended to the instruction."""
    p = Path(path)
    if not p.is_file():
        raise TrainingDataError(f"training data file {str(p)!r} does not exist (JSONL, one object per line "
                                "with 'instruction' and 'response')")
    rows = _parse_jsonl(p.read_text(encoding="utf-8"), str(p))
    pairs = []
    for number, row in enumerate(rows, 1):
        instruction = row.get("instruction") or row.get("prompt")
        response = row.get("response") or row.get("output") or row.get("completion")
        if not instruction or response is None:
            raise TrainingDataError(f"{p}: record {number} needs 'instruction' (or 'prompt') and 'response' "
                                    "(or 'output'/'completion')")
        extra = row.get("input")
        if extra:
            instruction = f"{instruction}\n\n{extra}"
        pairs.append({"id": str(row.get("id") or f"{p.stem}-{number:05d}"), "instruction": str(instruction),
                      "response": str(response)})
    if not pairs:
        raise TrainingDataError(f"{p}: no records")
    return pairs


def read_prompts(path: str | Path) -> list[Record]:
    """A user's prompt list (JSONL with `instruction` or `prompt`), e.g. extra benign prompts to distil."""
    p = Path(path)
    if not p.is_file():
        raise TrainingDataError(f"prompt file {str(p)!r} does not exist (JSONL with an 'instruction' field)")
    out = []
    for number, row in enumerate(_parse_jsonl(p.read_text(encoding="utf-8"), str(p)), 1):
        text = row.get("instruction") or row.get("prompt")
        if not text:
            raise TrainingDataError(f"{p}: record {number} has no 'instruction' or 'prompt' field")
        out.append({"id": str(row.get("id") or f"{p.stem}-{number:05d}"), "category": str(row.get("category") or
                    "benign"), "instruction": str(text)})
    return out


# ------------------------------------------------------------------ disjointness from evaluation prompts

def normalise_text(text: str) -> str:
    """Fold case, typography, punctuation and spacing, so near-identical copies compare equal."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _words(text: str) -> set[str]:
    return set(normalise_text(text).split())


def word_jaccard(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa or wb else 1.0


def evaluation_prompts() -> list[Record]:
    """Every prompt the suite evaluates with: the 88 harmful sample prompts, the 40 benign ones and the
    borderline-safe validation split."""
    return sample_prompts() + bundled_benign_prompts() + borderline_validation_prompts()


def eval_overlap(train_texts: Iterable[str], max_jaccard: float = 0.75) -> list[tuple[str, str, str]]:
    """(kind, training text, evaluation text) for every training prompt that equals an evaluation prompt
    exactly, after normalisation, or shares more than `max_jaccard` of its words with one."""
    evals = [p["instruction"] for p in evaluation_prompts()]
    exact = set(evals)
    normal = {normalise_text(e): e for e in evals}
    found = []
    for text in train_texts:
        if text in exact:
            found.append(("exact", text, text))
        elif normalise_text(text) in normal:
            found.append(("normalised", text, normal[normalise_text(text)]))
        else:
            best = max(evals, key=lambda e: word_jaccard(text, e))
            if word_jaccard(text, best) > max_jaccard:
                found.append(("near", text, best))
    return found
