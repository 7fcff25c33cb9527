"""Reading and writing record files: JSONL of records, and lm-eval `--log_samples` output folders.

Generation and judging are separable: whatever produced the responses, judging starts from records
with at least `instruction` and `response` (and optionally `id`, `category`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


class RecordError(ValueError):
    """A record file is malformed; the message names the file and line."""


def parse_jsonl(text: str, source: str) -> list[dict[str, Any]]:
    """JSON objects, one per non-blank line; errors name the source and line."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{source}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise RecordError(f"{source}:{n}: expected a JSON object per line")
        rows.append(row)
    return rows


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return parse_jsonl(f.read(), str(path))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n")


def _samples_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("samples_*.jsonl"))


def records_from_lm_eval_sample(sample: Mapping[str, Any], task: str | None = None) -> dict[str, Any]:
    """One lm-eval logged sample as a record (instruction, response, id, category, task)."""
    doc = sample.get("doc") or {}
    resps = sample.get("resps") or [[""]]
    first = resps[0]
    response = first[0] if isinstance(first, list) and first else (first if isinstance(first, str) else "")
    record = {"id": doc.get("id", str(sample.get("doc_id"))), "category": doc.get("category"),
              "instruction": doc.get("instruction", ""), "response": response}
    if task:
        record["task"] = task
    for key in ("system_prompt_preset",):
        if key in doc:
            record[key] = doc[key]
    return record


def iter_input_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records from a JSONL file, or from every `samples_*.jsonl` under an lm-eval output folder."""
    path = Path(path)
    if path.is_dir():
        files = _samples_files(path)
        if not files:
            raise RecordError(f"{path}: no lm-eval samples_*.jsonl files (run lm_eval with --log_samples)")
        for file in files:
            task = file.name[len("samples_"):].rsplit("_", 1)[0]
            for sample in read_jsonl(file):
                doc = sample.get("doc") or {}
                if doc.get("missing_category"):
                    continue
                yield records_from_lm_eval_sample(sample, task)
        return
    if not path.is_file():
        raise RecordError(f"{path}: no such file or folder")
    for n, row in enumerate(read_jsonl(path), 1):
        missing = [k for k in ("instruction", "response") if not isinstance(row.get(k), str)]
        if missing:
            raise RecordError(f"{path}: record {n} lacks the string field(s) {', '.join(missing)}")
        yield row
