"""Nightly: a second run with nothing new does no generation and no judging; failures; the lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safety_bench.leaderboard import lock
from safety_bench.orchestration.nightly import Evaluator, load_config, run_nightly

from helpers.models import build_tiny_model


class Counting:
    """Wraps the real evaluator and judge registry to count generations and judge batches."""

    def __init__(self, cfg):
        from safety_bench.judges.registry import get_judge

        self.evaluator = Evaluator(cfg)
        self._get_judge = get_judge
        self.generations = 0
        self.judge_batches = 0

    def evaluate(self, spec, settings):
        self.generations += 1
        return self.evaluator(spec, settings)

    def get_judge(self, name):
        judge = self._get_judge(name)
        real = judge.judge

        def counted(items):
            self.judge_batches += 1
            return real(items)

        judge.judge = counted
        return judge


def _landscape(folder: Path) -> Path:
    """TEST DATA following DESIGN.md's landscape.json contract."""
    folder.mkdir(parents=True)
    (folder / "landscape.json").write_text(json.dumps({
        "kind": "1d_random", "coords": [[-0.1, 0.0, 0.1]], "directions": [0, 1], "judges": ["keyword"], "task": "t",
        "asr": {"keyword": [[50.0, 10.0, 40.0], [60.0, 20.0, 30.0]]},
        "visage": {"keyword": {"mean": 63.3, "ci": [50.0, 76.0], "per_direction": [66.7, 63.3], "untrimmed": 63.3}}}))
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nightly_ckpts")
    build_tiny_model(root / "ckpt-a", seed=0)
    build_tiny_model(root / "ckpt-b", seed=1)
    _landscape(root / "land-a")
    return root


@pytest.fixture()
def config(checkpoints: Path, tmp_path: Path) -> Path:
    """A fresh store per test (tests run in any order), over checkpoints built once per module."""
    root = tmp_path
    for name in ("ckpt-a", "ckpt-b", "land-a"):
        (root / name).symlink_to(checkpoints / name)
    (root / "nightly.yaml").write_text("""
store: store
out: board
data: sample
tasks: [safety_landscape_mini, safety_benign]
judges: [keyword, refusal_heuristic]
generation: {batch_size: 16, max_gen_toks: 3, device: cpu}
models:
  - {name: tiny-a, path: ckpt-a, landscape: land-a}
  - {name: tiny-b, path: ckpt-b}
  - {name: missing, path: no-such-checkpoint}
""")
    return root / "nightly.yaml"


def test_nightly_twice_second_run_does_no_work(config: Path):
    cfg = load_config(config)
    first = Counting(cfg)
    report = run_nightly(cfg, evaluator=first.evaluate, get_judge=first.get_judge)
    assert first.generations == 2 == report.generations
    # keyword verdicts come from lm-eval's judging filter; refusal_heuristic judges each model once
    assert first.judge_batches == 2 == report.judge_calls
    assert report.exit_code == 1 and list(report.failures) == ["missing"]
    board = json.loads((config.parent / "board" / "leaderboard.json").read_text())
    assert [r["model"] for r in board["rows"]] == ["tiny-a", "tiny-b"]  # the others are still published
    assert board["rows"][0]["visage"]["value"] == 63.3
    assert any(line.startswith("FAILED missing") for line in board["log"])
    assert "FAILED missing" in (config.parent / "board" / "build.log").read_text()

    second = Counting(cfg)
    again = run_nightly(cfg, evaluator=second.evaluate, get_judge=second.get_judge)
    assert (second.generations, second.judge_batches, again.generations, again.judge_calls) == (0, 0, 0, 0)
    assert second.evaluator._tm is None  # not even lm-eval's TaskManager was built
    assert json.loads((config.parent / "board" / "leaderboard.json").read_text())["rows"] == board["rows"]

    assert not (config.parent / "store" / ".nightly.lock").exists()  # released


def test_configured_sweep_runs_once_and_feeds_the_board(tmp_path: Path):
    root = tmp_path
    build_tiny_model(root / "ckpt", seed=2)
    (root / "nightly.yaml").write_text("""
store: store
out: board
data: sample
tasks: [safety_landscape_mini]
judges: [keyword]
generation: {batch_size: 8, max_gen_toks: 2, device: cpu}
sweep: {points: 3, range: 0.2, limit: 2, max_gen_toks: 2, device: cpu}
models:
  - {name: swept, path: ckpt}
""")
    cfg = load_config(root / "nightly.yaml")
    first = run_nightly(cfg)
    assert first.exit_code == 0 and first.sweeps == 1
    (folder,) = [p for p in (root / "store" / "sweeps").iterdir() if (p / "landscape.json").is_file()]
    landscape = json.loads((folder / "landscape.json").read_text())
    assert landscape["model"]["name"] == "swept" and landscape["coords"] == [[-0.2, 0.0, 0.2]]
    row = json.loads((root / "board" / "leaderboard.json").read_text())["rows"][0]
    assert row["model"] == "swept"
    assert row["visage"]["value"] == pytest.approx(landscape["visage"]["keyword"]["mean"])
    from safety_bench.judges.registry import get_judge

    assert row["visage"]["judge_version"] == str(get_judge("keyword").version)  # provenance names the version

    again = run_nightly(cfg)
    assert again.sweeps == 0 and again.generations == 0
    assert "swept: landscape sweep up to date" in again.skipped


def test_sweep_settings_from_yaml_keys_or_legacy_args():
    from safety_bench.orchestration.nightly import NightlyConfig, sweep_settings

    cfg = NightlyConfig(models=[], store=Path("s"), out=Path("o"), data="sample")
    legacy = sweep_settings({"args": ["--points", "3", "--judge", "keyword", "--judge", "refusal_heuristic",
                                      "--max-gen-toks=2", "--no-progress"]}, cfg)
    assert legacy == {"points": "3", "judges": ["keyword", "refusal_heuristic"], "max_gen_toks": "2",
                      "data": "sample", "system_prompt": "default"}
    assert sweep_settings({"points": 3, "data": "hexphi"}, cfg)["data"] == "hexphi"


def test_cli_exit_code_and_lock_blocks_a_second_run(config: Path, capsys):
    from safety_bench.cli import main

    store = config.parent / "store"
    assert main(["nightly", "--config", str(config)]) == 1  # the first night: `missing` fails, the rest is filed
    capsys.readouterr()
    held = lock.acquire(store / ".nightly.lock")
    try:
        assert main(["nightly", "--config", str(config)]) == 3
        assert "holds the lock" in capsys.readouterr().err
        with pytest.raises(lock.LockHeld):
            run_nightly(load_config(config))
    finally:
        lock.release(held)
    assert main(["nightly", "--config", str(config)]) == 1  # `missing` still fails; nothing regenerated
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["generations"] == 0 and out["judge_calls"] == 0 and out["failed"] == ["missing"]


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now dead
    path = tmp_path / ".nightly.lock"
    import socket

    path.write_text(json.dumps({"pid": proc.pid, "host": socket.gethostname(), "started": "earlier"}))
    assert lock.is_stale(path)
    with lock.locked(path):
        assert json.loads(path.read_text())["pid"] != proc.pid
        with pytest.raises(lock.LockHeld, match="held by pid"):
            lock.acquire(path)
    assert not path.exists()


def test_old_lock_is_stale_after_timeout(tmp_path: Path):
    import os

    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"pid": os.getpid(), "host": "elsewhere", "started": "long ago"}))
    assert not lock.is_stale(path, stale_after=3600)
    old = time.time() - 7200
    os.utime(path, (old, old))
    assert lock.is_stale(path, stale_after=3600)
