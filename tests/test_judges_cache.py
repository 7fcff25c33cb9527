"""The shared SQLite judge cache: keys, hit/miss counting, errors not stored, concurrent processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from safety_bench.judges.base import JudgeInput, Verdict
from safety_bench.judges.cache import CachedJudge, JudgeCache, cache_key, default_cache_path, open_cache
from safety_bench.judges.registry import get_judge


class CountingJudge:
    """A judge that scores by response length and fails on responses containing 'fail'."""

    def __init__(self, name: str = "counting", version: str = "1", model: str = "m1") -> None:
        self.name, self.version, self.model = name, version, model
        self.seen: list[str] = []
        self.chunk_size = 3

    def cache_identity(self) -> dict:
        return {"model": self.model, "template_hash": "t"}

    def judge(self, items: list[JudgeInput]) -> list[Verdict]:
        self.seen += [it.response for it in items]
        return [Verdict(judge=self.name, error="boom") if "fail" in it.response else
                Verdict(judge=self.name, score=float(len(it.response)), harmful=len(it.response) > 3,
                        reason=f"len {len(it.response)}", extra={"judge_note": "x"})
                for it in items]


def _items(*responses: str) -> list[JudgeInput]:
    return [JudgeInput("q", r) for r in responses]


def test_hits_misses_errors_and_duplicates(tmp_path: Path) -> None:
    store = JudgeCache(tmp_path / "c.sqlite")
    inner = CountingJudge()
    judge = CachedJudge(inner, store)
    first = judge.judge(_items("a", "abcd", "abcd", "fail", "xyzzy", "b", "cc"))
    assert inner.seen == ["a", "abcd", "fail", "xyzzy", "b", "cc"]  # the duplicate costs no call
    assert (judge.hits, judge.misses, judge.stored) == (0, 7, 5)
    assert first[3].error == "boom" and first[2].score == 4.0
    inner2 = CountingJudge()
    judge2 = CachedJudge(inner2, store)
    second = judge2.judge(_items("a", "abcd", "abcd", "fail", "xyzzy", "b", "cc"))
    assert inner2.seen == ["fail"]  # only the error is asked again
    assert judge2.hits == 6 and judge2.misses == 1
    for a, b in zip(first, second, strict=True):
        assert (a.score, a.harmful, a.reason, a.extra, a.error) == (b.score, b.harmful, b.reason, b.extra, b.error)
    assert store.count("counting") == 5


def test_key_covers_name_version_template_model_instruction_response() -> None:
    base = {"name": "j", "version": "1", "model": "m", "template_hash": "t"}
    k = cache_key(base, "i", "r")
    assert k == cache_key(dict(base), "i", "r")
    variants = [{**base, "name": "j2"}, {**base, "version": "2"}, {**base, "model": "m2"},
                {**base, "template_hash": "u"}]
    assert len({k, *(cache_key(v, "i", "r") for v in variants), cache_key(base, "i2", "r"),
                cache_key(base, "i", "r2")}) == 7


def test_location_env_and_disable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFETY_BENCH_JUDGE_CACHE", raising=False)
    monkeypatch.setenv("SAFETY_BENCH_CACHE", str(tmp_path / "root"))
    assert default_cache_path() == tmp_path / "root" / "judge_cache.sqlite"
    monkeypatch.setenv("SAFETY_BENCH_JUDGE_CACHE", str(tmp_path / "x.sqlite"))
    assert default_cache_path() == tmp_path / "x.sqlite"
    monkeypatch.setenv("SAFETY_BENCH_JUDGE_CACHE", "off")
    assert default_cache_path() is None and open_cache(None) is None
    assert open_cache(False) is None and open_cache(tmp_path / "y.sqlite") is not None
    monkeypatch.setenv("SAFETY_BENCH_JUDGE_CACHE", str(tmp_path / "z.sqlite"))
    keyword = get_judge("keyword")  # instant judges are never wrapped
    assert not isinstance(keyword, CachedJudge)


WRITER = textwrap.dedent("""
    import sys
    from safety_bench.judges.cache import JudgeCache
    store = JudgeCache(sys.argv[1])
    tag = sys.argv[2]
    for i in range(40):
        store.put_many("w", [(f"{tag}-{i}-{j}", {"score": i}) for j in range(5)])
        store.get_many([f"{tag}-{i}-0", "other"])
""")


def test_concurrent_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    JudgeCache(path)  # create the schema first, as any first run would
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag]) for tag in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    store = JudgeCache(path)
    assert store.count() == 3 * 40 * 5
    assert store.get_many(["b-39-4"]) == {"b-39-4": {"score": 39}}
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
