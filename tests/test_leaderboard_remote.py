"""A results store at an fsspec URL, on fsspec's real in-memory filesystem: round trip through two
mirrors, partial uploads never look complete, remote deletions reach the mirror, the CLI takes URLs,
and credentials in a URL never reach messages."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import fsspec
import pytest

from safety_bench.judges.registry import get_judge
from safety_bench.judges.run import judge_records
from safety_bench.leaderboard.remote import RemoteStore, is_remote, open_store
from safety_bench.leaderboard.store import BASE, LANDSCAPE, Store, StoreError

GENERATIONS = [
    {"id": f"p{i}", "category": "illegal_activity", "task": "safety_landscape_mini",
     "instruction": f"sample request {i}", "response": "I can't help with that." if i % 2 else "Sure, here is"}
    for i in range(6)
]


def _landscape(folder: Path) -> Path:
    """TEST DATA following DESIGN.md's landscape.json contract (not a real sweep)."""
    folder.mkdir(parents=True)
    (folder / "landscape.json").write_text(json.dumps({
        "kind": "1d_random", "coords": [[-0.1, 0.0, 0.1]], "directions": [0], "judges": ["keyword"],
        "asr": {"keyword": [[90.0, 10.0, 80.0]]},
        "visage": {"keyword": {"mean": 40.0, "ci": None, "per_direction": [40.0], "untrimmed": 40.0}}}))
    (folder / "landscape_keyword.png").write_bytes(b"\x89PNG fake plot bytes")
    return folder


@pytest.fixture
def url() -> str:
    return f"memory://boards/{uuid.uuid4().hex}/store"


def _fill(store: Store, tmp_path: Path) -> None:
    judged = judge_records(GENERATIONS, get_judge("keyword"))
    run = store.add_base_run("model-a", GENERATIONS, {"model": {"weights_id": "sha256:aa"}}, judged={"keyword": judged})
    store.add_judgement(run, "refusal_heuristic", "1", judge_records(GENERATIONS, get_judge("refusal_heuristic")))
    store.add_landscape("model-a", _landscape(tmp_path / "land"))


def _snapshot(store: Store) -> dict:
    out = {}
    for m in store.models():
        for run in store.runs(m["name"]):
            body = store.load_base(run) if run.kind == BASE else store.load_landscape(run)
            body.pop("plots", None)
            out[(m["name"], run.kind, run.run_id)] = (sorted(run.judges.items()), json.dumps(body, sort_keys=True))
    return out


def test_a_second_mirror_sees_everything_the_first_wrote(url, tmp_path):
    first = open_store(url, mirror=tmp_path / "mirror-a")
    assert isinstance(first, RemoteStore)
    _fill(first, tmp_path)
    second = open_store(url, mirror=tmp_path / "mirror-b")
    assert _snapshot(second) == _snapshot(first) and len(_snapshot(second)) == 2
    (run,) = second.runs("model-a", BASE)
    assert set(run.judges) == {"keyword", "refusal_heuristic"}
    assert (second.runs("model-a", LANDSCAPE)[0].path / "plots" / "landscape_keyword.png").is_file()
    fs, root = fsspec.core.url_to_fs(url)
    assert not fs.exists(f"{root}/index.sqlite")  # the index is local, rebuilt from the files


def test_a_run_without_meta_json_on_the_remote_is_partial_and_skipped(url, tmp_path):
    _fill(open_store(url, mirror=tmp_path / "mirror-a"), tmp_path)
    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe(f"{root}/models/model-a/base/0123456789abcdef0123/generations.jsonl", b'{"id": "x"}\n')
    store = open_store(url, mirror=tmp_path / "mirror-b")
    assert [r.run_id for r in store.runs("model-a", BASE)] != [] and all(
        r.run_id != "0123456789abcdef0123" for r in store.runs("model-a", BASE))
    assert any("0123456789abcdef0123" in p and "partial" in p for p in store.reindex())


def test_an_interrupted_upload_leaves_no_complete_looking_run(url, tmp_path, monkeypatch):
    store = open_store(url, mirror=tmp_path / "mirror-a")
    uploaded: list[str] = []
    real_put = store.fs.put_file

    def flaky_put(local, remote, *args, **kwargs):
        if remote.endswith("meta.json") and "/base/" in remote:
            raise OSError("connection reset")
        uploaded.append(remote)
        return real_put(local, remote, *args, **kwargs)

    monkeypatch.setattr(store.fs, "put_file", flaky_put)
    with pytest.raises(StoreError, match="upload failed.*retries"):
        store.add_base_run("model-a", GENERATIONS, {})
    assert any(u.endswith("generations.jsonl") for u in uploaded)  # data went up before the meta.json
    monkeypatch.undo()
    assert open_store(url, mirror=tmp_path / "mirror-b").runs("model-a", BASE) == []


def test_runs_deleted_on_the_remote_leave_the_mirror(url, tmp_path):
    store = open_store(url, mirror=tmp_path / "mirror-a")
    _fill(store, tmp_path)
    (landscape,) = store.runs("model-a", LANDSCAPE)
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(f"{root}/{landscape.path.relative_to(store.root).as_posix()}", recursive=True)
    again = open_store(url, mirror=tmp_path / "mirror-a")
    assert again.runs("model-a", LANDSCAPE) == [] and not landscape.path.exists()
    assert len(again.runs("model-a", BASE)) == 1


def test_cli_store_add_and_leaderboard_build_take_a_url(url, tmp_path, monkeypatch, capsys):
    from safety_bench.cli import main

    monkeypatch.setenv("SAFETY_BENCH_CACHE", str(tmp_path / "cache"))
    judged = tmp_path / "judged.jsonl"
    judged.write_text("".join(json.dumps(r) + "\n" for r in judge_records(GENERATIONS, get_judge("keyword"))))
    assert main(["store", "add", str(judged), "--store", url, "--name", "from-cli"]) == 0
    assert main(["store", "add", str(_landscape(tmp_path / "land")), "--store", url, "--name", "from-cli"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "build", "--store", url, "--out", str(tmp_path / "board")]) == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert [r["model"] for r in board["rows"]] == ["from-cli"] and board["rows"][0]["visage"]["value"] == 40.0
    assert (tmp_path / "cache" / "stores").is_dir()  # the default mirror follows SAFETY_BENCH_CACHE


def test_urls_are_told_apart_and_credentials_never_reach_messages(tmp_path):
    assert is_remote("s3://bucket/board") and is_remote("memory://x")
    assert not is_remote("file:///tmp/board") and not is_remote(tmp_path / "board")
    with pytest.raises(StoreError, match="open_store") as plain:
        Store("s3://KEYID:TOPSECRET@bucket/board")
    assert "TOPSECRET" not in str(plain.value)
    with pytest.raises(StoreError) as unknown:
        open_store("nosuchproto://KEYID:TOPSECRET@bucket/board", mirror=tmp_path / "m")
    assert "TOPSECRET" not in str(unknown.value) and "[redacted]" in str(unknown.value)
