"""A shared judge cache: one SQLite file that every run, model, grid point and night reads and fills.

Judging the same (instruction, response) with the same judge twice gives the same verdict, and an API
judge costs money and minutes per call, so verdicts are stored under a key made of everything that
decides them: judge name, spec version, template hash, judge model, any verdict-shaping settings, the
instruction and the response. Only scored verdicts are stored: an error (rate limit, timeout, malformed
answer) is retried on the next run instead of being remembered.

The file is opened in WAL mode with a busy timeout and every write is one short transaction, so several
processes (sweep shards, nightly jobs) can share it. `CachedJudge` wraps any judge that describes its
identity (`cache_identity()`), serves hits, sends only misses to the judge, in chunks so a long run
that dies keeps what it already paid for, and counts hits and misses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from safety_bench.judges.base import Judge, JudgeInput, Verdict

log = logging.getLogger("safety_bench.judges")

CACHE_ENV = "SAFETY_BENCH_JUDGE_CACHE"
CACHE_FILE = "judge_cache.sqlite"
SCHEMA_VERSION = "1"
_OFF = {"", "0", "off", "none", "false", "no", "disable", "disabled"}
_SQL_CHUNK = 400  # stays under SQLite's bound-parameter limit


def default_cache_path() -> Path | None:
    """`SAFETY_BENCH_JUDGE_CACHE` (a file path, or `off`), else `<safety-bench cache dir>/judge_cache.sqlite`."""
    from safety_bench.models import cache_dir

    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    return cache_dir() / CACHE_FILE


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(identity: dict[str, Any], instruction: str, response: str) -> str:
    """sha256 over the judge identity (name, version, template hash, model, settings) and the pair."""
    payload = json.dumps({"schema": SCHEMA_VERSION, "judge": identity, "instruction": instruction,
                          "response": response}, sort_keys=True, ensure_ascii=False, default=str)
    return text_hash(payload)


def _chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


class JudgeCache:
    """Key → verdict store in one SQLite file (WAL, busy timeout, short transactions)."""

    def __init__(self, path: str | os.PathLike[str], timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, judge TEXT NOT NULL, "
                           "value TEXT NOT NULL, created REAL NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for chunk in _chunks(keys, _SQL_CHUNK):
                marks = ",".join("?" * len(chunk))
                for key, value in self._conn.execute(
                        f"SELECT key, value FROM verdicts WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
        return found

    def put_many(self, judge: str, entries: Iterable[tuple[str, dict[str, Any]]]) -> int:
        rows = [(key, judge, json.dumps(value, ensure_ascii=False, default=str), time.time())
                for key, value in entries]
        if not rows:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO verdicts (key, judge, value, created) "
                                       "VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def count(self, judge: str | None = None) -> int:
        with self._lock:
            if judge is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts WHERE judge = ?", (judge,)).fetchone()[0])

    def clear(self, judge: str | None = None) -> int:
        with self._lock:
            cur = (self._conn.execute("DELETE FROM verdicts") if judge is None
                   else self._conn.execute("DELETE FROM verdicts WHERE judge = ?", (judge,)))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_cache(cache: JudgeCache | str | os.PathLike[str] | bool | None) -> JudgeCache | None:
    """None → the default location (or off by env); False → no cache; a path → that file."""
    if cache is False:
        return None
    if isinstance(cache, JudgeCache):
        return cache
    if cache is None or cache is True:
        path = default_cache_path()
        return JudgeCache(path) if path is not None else None
    if str(cache).strip().lower() in _OFF:
        return None
    return JudgeCache(Path(cache).expanduser())


_STORED_FIELDS = ("score", "harmful", "refused", "reason", "raw", "score_scale", "refusal", "degenerate", "extra")


class CachedJudge:
    """A judge behind the cache: the same `judge(items)` contract, plus hit/miss counts and a run report."""

    def __init__(self, inner: Judge, cache: JudgeCache, chunk_size: int | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.version = inner.version
        self.chunk_size = int(chunk_size or getattr(inner, "chunk_size", 256))
        self.hits = 0
        self.misses = 0
        self.stored = 0

    def __getattr__(self, attr: str) -> Any:  # model, usage, ... of the wrapped judge
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def identity(self) -> dict[str, Any]:
        return {"name": self.inner.name, "version": self.inner.version,
                **self.inner.cache_identity()}  # type: ignore[attr-defined]

    def keys(self, items: list[JudgeInput]) -> list[str]:
        identity = self.identity()
        return [cache_key(identity, it.instruction, it.response) for it in items]

    def judge(self, items: list[JudgeInput]) -> list[Verdict]:
        keys = self.keys(items)
        found = self.cache.get_many(keys)
        out: list[Verdict | None] = [None] * len(items)
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in found:
                out[i] = self._from_cache(found[key])
                self.hits += 1
            else:
                todo.setdefault(key, []).append(i)  # duplicates in one batch cost one call
        self.misses += sum(len(v) for v in todo.values())
        unique = list(todo)
        for chunk in _chunks(unique, self.chunk_size):
            verdicts = self.inner.judge([items[todo[k][0]] for k in chunk])
            good = []
            for key, verdict in zip(chunk, verdicts, strict=True):
                for i in todo[key]:
                    out[i] = verdict
                if verdict.error is None:
                    good.append((key, {f: getattr(verdict, f) for f in _STORED_FIELDS}))
            self.stored += self.cache.put_many(self.inner.name, good)
        if items:
            log.info("judge %s: %d cache hits, %d misses (%s)", self.name, self.hits, self.misses, self.cache.path)
        return out  # type: ignore[return-value]

    def _from_cache(self, value: dict[str, Any]) -> Verdict:
        return Verdict(judge=self.inner.name, judge_version=self.inner.version,
                       **{f: value.get(f) for f in _STORED_FIELDS if f != "extra"},
                       extra=dict(value.get("extra") or {}))

    def plan(self, items: list[JudgeInput]) -> dict[str, Any]:
        """Dry run: how many records the cache answers and what the rest would cost."""
        keys = self.keys(items)
        found = self.cache.get_many(keys)
        misses, seen = [], set()
        for key, item in zip(keys, items, strict=True):
            if key not in found and key not in seen:
                seen.add(key)
                misses.append(item)
        inner_plan = getattr(self.inner, "plan", None)
        plan = inner_plan(misses) if inner_plan else {"calls": 0}
        return {"records": len(items), "cache_hits": len(items) - sum(k not in found for k in keys),
                "cache": str(self.cache.path), **plan}

    def run_report(self) -> dict[str, Any]:
        inner_report = getattr(self.inner, "run_report", None)
        report = dict(inner_report()) if inner_report else {}
        report.update({"cache": str(self.cache.path), "cache_hits": self.hits, "cache_misses": self.misses,
                       "cache_stored": self.stored})
        return report
