"""A lock file so two nightly runs on one store never collide.

Created with O_CREAT | O_EXCL (atomic on local filesystems and NFSv3+), holding the owner's pid, host and
start time. A lock whose process is gone (same host) or that is older than `stale_after` seconds is
stale: it is renamed away (only one contender can win the rename) and the lock is taken again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safety_bench.validation import UserError

DEFAULT_STALE_AFTER = 12 * 3600.0


class LockHeld(UserError, RuntimeError):
    """Another live run holds the lock; the message says who and since when."""


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def is_stale(path: Path, stale_after: float = DEFAULT_STALE_AFTER) -> bool:
    """True when the lock's owner is gone or the lock is older than `stale_after` seconds."""
    info = _read(path)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if info is None:
        return age > 60  # a lock being written right now is briefly empty
    if age > stale_after:
        return True
    return info.get("host") == socket.gethostname() and not process_alive(int(info.get("pid", -1)))


def acquire(path: str | os.PathLike[str], stale_after: float = DEFAULT_STALE_AFTER) -> Path:
    """Take the lock or raise LockHeld."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not is_stale(path, stale_after):
                info = _read(path) or {}
                raise LockHeld(f"{path} is held by pid {info.get('pid')} on {info.get('host')} since "
                               f"{info.get('started')}; if that run is dead, delete the file") from None
            judged = _read(path)
            grave = path.with_name(f"{path.name}.stale-{os.getpid()}")
            try:
                os.replace(path, grave)
            except FileNotFoundError:
                continue  # another contender removed it first; try again
            if _read(grave) != judged:  # a contender replaced the stale lock meanwhile: put theirs back
                os.replace(grave, path)
                raise LockHeld(f"{path}: another run took the lock while a stale lock was being cleared") from None
            grave.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
        return path
    raise LockHeld(f"{path}: could not take the lock (another run took it first)")


def release(path: str | os.PathLike[str]) -> None:
    """Remove the lock if this process still owns it."""
    path = Path(path)
    info = _read(path)
    if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


@contextmanager
def locked(path: str | os.PathLike[str], stale_after: float = DEFAULT_STALE_AFTER) -> Iterator[Path]:
    taken = acquire(path, stale_after)
    try:
        yield taken
    finally:
        release(taken)
