"""The suite's one JSON and JSONL reader and writer.

Every file the suite writes goes through `atomic_write_text`: a temp file renamed into place, so a crash
never leaves half a file, created with the permissions the umask allows (a board served by a web server,
or a store shared with teammates, must be readable by others; `mkstemp` alone would make it 0600).
Reading errors name the file and the line, because a user with a 10 000-line JSONL needs to know where.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from safety_bench.validation import UserError


class RecordError(UserError, ValueError):
    """A record file is malformed, empty or unreadable; the message names the file (and line)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file; honours the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def read_text(path: str | os.PathLike[str]) -> str:
    """A UTF-8 text file; a non-UTF-8 byte is reported with its file and line, not as a codec traceback."""
    path = Path(path)
    if path.is_dir():
        raise RecordError(f"{path}: is a folder, expected a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RecordError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          "save the file as UTF-8") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return parse_jsonl(read_text(path), str(path))


def read_json(path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def dumps_jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    atomic_write_text(path, dumps_jsonl(rows))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n")
