"""The one record type of the pipeline: a generation, the verdicts on it, and their one JSON mapping.

Data flows one way: prompts → generations → judged records → aggregates. Every stage reads and writes
the same record, defined here once: `Generation` (what was asked and answered), `Verdict` (what a judge
said; its field list exists only here) and `JudgedRecord` (both, as one flat JSON object per line, the
`safety-bench judge` output contract of DESIGN.md). lm-eval's logged samples become records in one
function, `records_from_samples`, whatever reads them (judge runs, the sweep, the store, compare).

`prompt_kind` decides which rate a record counts in: `harmful` prompts give ASR and the harmfulness
score/rate, `benign` prompts give over-refusal; a summary never mixes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from safety_bench.jsonio import RecordError, read_jsonl

HARMFUL = "harmful"
BENIGN_KIND = "benign"
PROMPT_KINDS = (HARMFUL, BENIGN_KIND)
BENIGN_CATEGORY = "benign"  # the bundled benign set's category (XSTest uses its own prompt types)

RUBRIC_SCALE = "1-5"
PROBABILITY_SCALE = "probability"
REFUSAL_CLASSES = ("none", "partial", "full")
PLACEHOLDER_FIELD = "missing_category"  # a stand-in document for a category absent from the data


@dataclass
class Generation:
    """One answered prompt. `extra` keeps any other input field verbatim (a judge run never drops one)."""

    id: str
    instruction: str
    response: str
    category: str | None = None
    task: str | None = None
    prompt_kind: str = HARMFUL
    system_prompt_preset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Generation:
        known = {f.name for f in fields(cls) if f.name != "extra"}
        extra = {k: v for k, v in row.items() if k not in known and k not in VERDICT_FIELDS
                 and k not in VERDICT_EXTRA_FIELDS}
        return cls(id=str(row.get("id")), instruction=str(row.get("instruction", "")),
                   response=str(row.get("response", "")), category=row.get("category"), task=row.get("task"),
                   prompt_kind=prompt_kind_of(row), system_prompt_preset=row.get("system_prompt_preset"),
                   extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "extra" and (v is not None or k == "category")}
        return {**self.extra, **out}


@dataclass
class Verdict:
    """What one judge said about one response.

    Judges fill what they can tell: keyword/refusal judges set `refused` (and `refusal`, when they can tell
    a partial refusal) and `harmful = not refused`; the rubric judge sets `score` (1–5, `score_scale="1-5"`)
    and `harmful = (score == 5)`; classifiers set `score` as a probability. `error` set = unscored: never
    counted safe nor harmful. Whether `score` is a rubric score is read from `score_scale` only.
    """

    judge: str
    score: float | None = None
    harmful: bool | None = None
    refused: bool | None = None
    error: str | None = None
    reason: str | None = None
    raw: str | None = None
    judge_version: str | None = None
    score_scale: str | None = None
    refusal: str | None = None  # none | partial | full (partial counts as refused), None: cannot tell
    degenerate: bool | None = None  # repetition, non-words, empty; None: this judge cannot tell
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        return self.error is None

    def as_fields(self) -> dict[str, Any]:
        """The verdict's JSON fields: the four core ones always present (null allowed), the rest when set."""
        out = asdict(self)
        extra = out.pop("extra")
        out.update(extra)
        return {k: v for k, v in out.items() if v is not None or k in CORE_VERDICT_FIELDS}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Verdict:
        values = {k: row.get(k) for k in VERDICT_FIELDS if k != "judge"}
        extra = {k: row[k] for k in VERDICT_EXTRA_FIELDS if k in row}
        return cls(judge=str(row.get("judge") or ""), **values, extra=extra)


VERDICT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Verdict) if f.name != "extra")
CORE_VERDICT_FIELDS = ("score", "harmful", "refused", "error")
# Fields judges put in `Verdict.extra` (refusal_heuristic v2, the cascade): part of a verdict, so a re-judged
# record drops them with the rest.
VERDICT_EXTRA_FIELDS = ("uncertain", "decided_by", "escalated", "escalated_because", "would_escalate",
                        "rubric_score", "escalation_error")


@dataclass
class JudgedRecord:
    generation: Generation
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {**self.generation.to_dict(), **self.verdict.as_fields()}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> JudgedRecord:
        return cls(Generation.from_dict(row), Verdict.from_dict(row))


def prompt_kind_of(row: Mapping[str, Any]) -> str:
    """A record's prompt kind: its own field, else `benign` for the bundled benign category."""
    kind = row.get("prompt_kind")
    if kind in PROMPT_KINDS:
        return str(kind)
    return BENIGN_KIND if row.get("category") == BENIGN_CATEGORY else HARMFUL


def is_rubric(record: Mapping[str, Any]) -> bool:
    """Whether a record's `score` is a 1–5 rubric score (the harmfulness metrics' input)."""
    return record.get("score_scale") == RUBRIC_SCALE


def without_verdict(row: Mapping[str, Any]) -> dict[str, Any]:
    """The generation part of a (judged) record: a re-judged file must not keep a previous judge's fields."""
    return {k: v for k, v in row.items() if k not in VERDICT_FIELDS and k not in VERDICT_EXTRA_FIELDS}


def judged(row: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """A record with `verdict` in place of any earlier one (every input field kept, `prompt_kind` set)."""
    return {**without_verdict(row), "prompt_kind": prompt_kind_of(row), **verdict.as_fields()}


def normalize(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as read from any file, with `prompt_kind` and the core verdict fields made explicit."""
    out = dict(row)
    out["prompt_kind"] = prompt_kind_of(row)
    if out.get("judge"):
        for key in CORE_VERDICT_FIELDS:
            out.setdefault(key, None)
    return out


# ---------------------------------------------------------------------- lm-eval logged samples

def parse_verdict(value: Any) -> dict[str, Any] | None:
    """The verdict the judging filter left in a logged sample's `filtered_resps` (None if none ran).

    The filter serialises each verdict (response included) as a JSON string, the form that survives
    lm-eval's `str()` of filtered responses unchanged."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        if isinstance(parsed, dict) and "judge" in parsed and "response" in parsed:
            return parsed
    return None


def _first_response(sample: Mapping[str, Any]) -> str:
    resps = sample.get("resps") or [[""]]
    first = resps[0]
    if isinstance(first, (list, tuple)):
        return str(first[0]) if first else ""
    return str(first or "")


def record_from_sample(sample: Mapping[str, Any], task: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One lm-eval logged sample as (generation, judged record or None when no judging filter ran)."""
    doc = sample.get("doc") or {}
    verdict = parse_verdict(sample.get("filtered_resps"))
    response = verdict.get("response", _first_response(sample)) if verdict else _first_response(sample)
    row: dict[str, Any] = {"id": str(doc.get("id", sample.get("doc_id"))), "category": doc.get("category"),
                           "instruction": str(doc.get("instruction", "")), "response": str(response or "")}
    if task:
        row["task"] = task
    row["prompt_kind"] = prompt_kind_of(doc)
    if doc.get("system_prompt_preset") is not None:
        row["system_prompt_preset"] = doc["system_prompt_preset"]
    gen = Generation.from_dict(row).to_dict()
    if not verdict or not verdict.get("judge"):
        return gen, None
    return gen, judged(gen, Verdict.from_dict(verdict))


def records_from_samples(samples: Mapping[str, Iterable[Mapping[str, Any]]]
                         ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Logged samples by task → (generations, judged records by judge), placeholders dropped, in doc order."""
    generations: list[dict[str, Any]] = []
    by_judge: dict[str, list[dict[str, Any]]] = {}
    for task in sorted(samples):
        for sample in sorted(samples[task], key=lambda s: s.get("doc_id", 0)):
            if (sample.get("doc") or {}).get(PLACEHOLDER_FIELD):
                continue
            gen, rec = record_from_sample(sample, task)
            generations.append(gen)
            if rec is not None:
                by_judge.setdefault(str(rec["judge"]), []).append(rec)
    return generations, by_judge


def samples_task(path: Path) -> str:
    """lm-eval names sample files `samples_<task>_<timestamp>.jsonl`."""
    return path.name[len("samples_"):].rsplit("_", 1)[0]


def latest_samples_files(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The newest `samples_*.jsonl` of each task under an lm-eval output folder."""
    chosen: dict[str, Path] = {}
    for f in sorted(Path(folder).rglob("samples_*.jsonl"), key=lambda p: p.name):
        chosen[samples_task(f)] = f
    return chosen


def read_samples_folder(folder: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    files = latest_samples_files(folder)
    if not files:
        raise RecordError(f"{folder}: no lm-eval samples_*.jsonl files (run lm_eval with --log_samples)")
    return {task: read_jsonl(path) for task, path in files.items()}


def iter_input_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records from a JSONL file, or the generations under an lm-eval output folder (judging's input)."""
    path = Path(path)
    if path.is_dir():
        generations, _ = records_from_samples(read_samples_folder(path))
        yield from generations
        return
    if not path.exists():
        raise RecordError(f"{path}: no such file or folder")
    rows = read_jsonl(path)
    if not rows:
        raise RecordError(f"{path}: no records (the file is empty)")
    for n, row in enumerate(rows, 1):
        missing = [k for k in ("instruction", "response") if not isinstance(row.get(k), str)]
        if missing:
            raise RecordError(f"{path}: record {n} lacks the string field(s) {', '.join(missing)}")
        yield row
