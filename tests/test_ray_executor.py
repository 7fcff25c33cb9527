"""`--executor ray` on one local Ray cluster (2 CPUs) per module: the same landscape as the in-process
sweep, a worker SIGKILLed mid-sweep, the driver killed, a point failing twice, and the message without Ray."""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from safety_bench.landscape.grid import build_grid
from safety_bench.orchestration.ray_executor import PointFailed, PointWorker, RayOptions, run_sweep_ray
from safety_bench.orchestration.sweep import SweepConfig, point_dir, run_sweep

from helpers.models import build_talkative_model
from helpers.ray_cluster import ROOT, local_cluster

COMMON = ["--data", "sample", "--limit", "3", "--max-gen-toks", "4", "--batch-size", "8", "--device", "cpu",
          "--judge", "keyword", "--judge", "refusal_heuristic", "--range", "0.5", "--no-progress"]


def _config(model: Path, kind: str = "1d_random") -> SweepConfig:
    return SweepConfig(model=str(model), grid=build_grid(kind, points=5 if kind == "1d_random" else 3, range_=0.5),
                       judges=["keyword", "refusal_heuristic"], data="sample", max_gen_toks=4, limit=3, batch_size=8,
                       device="cpu")


def _landscape(out: Path) -> dict:
    data = json.loads((out / "landscape.json").read_text())
    data.pop("timing")
    return data


def _answers(out: Path, config: SweepConfig) -> dict:
    return {p.id: [(r["id"], r["response"]) for r in map(json.loads, (point_dir(out, p.id) / "samples.jsonl").open())]
            for p in config.grid.points()}


@pytest.fixture(scope="module")
def ray_address():
    pytest.importorskip("ray")
    with local_cluster(num_cpus=2) as address:
        yield address


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_talkative_model(tmp_path_factory.mktemp("talkative") / "model")


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory):
    """In-process sweeps (1D and 2D) with one torch thread, the share each Ray worker gets."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outs = {}
        for kind in ("1d_random", "2d_random"):
            outs[kind] = tmp_path_factory.mktemp("reference") / kind
            run_sweep(_config(model, kind), outs[kind], progress=False)
    finally:
        torch.set_num_threads(threads)
    return outs


def test_two_ray_workers_give_the_in_process_2d_landscape(ray_address, model, reference, tmp_path, capsys):
    from safety_bench.cli import main

    out = tmp_path / "ray"
    code = main(["landscape", "--model", str(model), "--grid", "2d_random", "--points", "3", *COMMON, "--out", str(out),
                 "--executor", "ray", "--ray-address", ray_address, "--workers", "2"])
    assert code == 0, capsys.readouterr().err
    config = _config(model, "2d_random")
    assert _landscape(out) == _landscape(reference["2d_random"])
    answers = _answers(out, config)
    assert answers == _answers(reference["2d_random"], config)
    assert len({tuple(a) for a in answers.values()}) > 1  # the perturbation changes answers: a real comparison


def _worker_pids(records) -> dict[int, int]:
    pids = {}
    for r in records:
        m = re.search(r"worker (\d+) \(pid (\d+) on .*\) ready", r.getMessage())
        if m:
            pids[int(m.group(1))] = int(m.group(2))
    return pids


def test_two_ray_workers_give_the_in_process_1d_landscape_though_one_is_killed(ray_address, model, reference,
                                                                                tmp_path, caplog):
    """1D with 2 workers, one SIGKILLed mid-sweep: its point re-runs and the landscape is still identical."""
    caplog.set_level(logging.DEBUG, logger="safety_bench.landscape")
    config, out = _config(model), tmp_path / "killed-worker"
    killed: list[int] = []

    def kill_a_busy_worker(point):
        if killed:
            return
        pids = _worker_pids(caplog.records)
        last = [r.getMessage() for r in caplog.records if "done on worker" in r.getMessage()][-1]
        finished = int(re.search(r"done on worker (\d+)", last).group(1))
        busy = next(i for i in pids if i != finished)  # it holds a point now: it was handed one at the start
        os.kill(pids[busy], signal.SIGKILL)
        killed.append(busy)

    run_sweep_ray(config, out, RayOptions(address=ray_address, workers=2), progress=False, on_point=kill_a_busy_worker)
    assert killed
    lost = [r.getMessage() for r in caplog.records if "was lost while running point" in r.getMessage()]
    assert lost and lost[0].startswith(f"landscape: worker {killed[0]} (pid ")
    rerun = re.search(r"running point (\S+)", lost[0]).group(1)
    assert rerun in {p.id for p in config.grid.points()} and is_done(out, rerun)
    assert _landscape(out) == _landscape(reference["1d_random"])
    answers = _answers(out, config)
    assert answers == _answers(reference["1d_random"], config)
    assert len({tuple(a) for a in answers.values()}) > 1


def is_done(out: Path, point_id: str) -> bool:
    return (point_dir(out, point_id) / "point.json").is_file()


DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from test_ray_executor import _config
    from safety_bench.orchestration.ray_executor import RayOptions, run_sweep_ray
    run_sweep_ray(_config(Path({model!r})), {out!r}, RayOptions(address={address!r}, workers=1), progress=False,
                  on_point=lambda p: time.sleep(120))
""")


def test_killed_driver_rerun_completes_only_the_missing_points(ray_address, model, reference, tmp_path):
    config, out = _config(model), tmp_path / "killed-driver"
    script = DRIVER.format(model=str(model), out=str(out), address=ray_address)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any((out / "points").glob("*/point.json")):
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    done = {p.name: (p / "point.json").read_text() for p in (out / "points").glob("*") if (p / "point.json").is_file()}
    assert 1 <= len(done) < 5 and not (out / "landscape.json").exists()
    ran: list[str] = []
    run_sweep_ray(config, out, RayOptions(address=ray_address, workers=1), progress=False,
                  on_point=lambda p: ran.append(p.id))
    assert sorted(ran) == sorted(p.id for p in config.grid.points() if point_dir(out, p.id).name not in done)
    assert {name: (out / "points" / name / "point.json").read_text() for name in done} == done  # kept as they were
    assert _landscape(out) == _landscape(reference["1d_random"])


BAD_POINT = "origin"


class OutOfMemoryAtOrigin(PointWorker):
    """A worker whose every attempt at one point fails, as a point too large for the device would."""

    def run(self, point):
        if point.id == BAD_POINT:
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().run(point)


def test_a_point_failing_twice_stops_the_sweep_and_keeps_finished_points(ray_address, model, tmp_path):
    config, out = _config(model), tmp_path / "failing"
    order = [p.id for p in config.grid.points()]
    with pytest.raises(PointFailed, match=rf"point {BAD_POINT} failed 2 times \(RuntimeError: CUDA out of memory"):
        run_sweep_ray(config, out, RayOptions(address=ray_address, workers=1), progress=False,
                      worker_cls=OutOfMemoryAtOrigin)
    finished = sorted(p.parent.name for p in (out / "points").glob("*/point.json"))
    assert finished == sorted(point_dir(out, pid).name for pid in order[:order.index(BAD_POINT)])
    assert not (out / "landscape.json").exists()


def test_without_ray_the_executor_says_how_to_install_it(tiny_model, tmp_path, capsys, monkeypatch):
    from safety_bench.cli import main

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    out = tmp_path / "never"
    code = main(["landscape", "--model", str(tiny_model), "--data", "sample", "--points", "3", "--out", str(out),
                 "--executor", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("safety-bench landscape: error: ") and 'pip install "safety-bench[ray]"' in err[0]
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("flag,value,expected", [("--workers", "0", "--workers 0: must be at least 1"),
                                                 ("--cpus-per-worker", "0", "--cpus-per-worker 0.0: must be positive"),
                                                 ("--gpus-per-worker", "-1", "--gpus-per-worker -1.0: must not be")])
def test_bad_executor_settings_are_refused_before_anything_runs(tiny_model, tmp_path, capsys, flag, value, expected):
    from safety_bench.cli import main

    out = tmp_path / "never"
    assert main(["landscape", "--model", str(tiny_model), "--data", "sample", "--points", "3", "--out", str(out),
                 "--executor", "ray", flag, value]) == 2
    assert expected in capsys.readouterr().err and not out.exists()


NIGHTLY = """
store: {store}
out: {board}
data: sample
tasks: [safety_landscape_mini]
judges: [keyword, refusal_heuristic]
generation: {{batch_size: 8, max_gen_toks: 3, device: cpu, limit: 3}}
models:
  - name: tiny-a
    path: {a}
    sweep: {{args: [--data, sample, --points, "3", --range, "0.3", --limit, "2", --max-gen-toks, "2", --device, cpu,
                    --batch-size, "4", --no-progress]}}
  - {{name: tiny-b, path: {b}}}
"""


def _board_rows(board: Path) -> list[dict]:
    """The board's rows without the clock times of their runs (the only fields two nights may differ in)."""

    def timeless(x):
        if isinstance(x, dict):
            return {k: timeless(v) for k, v in x.items() if k not in ("date", "stored")}
        return [timeless(v) for v in x] if isinstance(x, list) else x

    return timeless(json.loads((board / "leaderboard.json").read_text())["rows"])


def test_nightly_on_ray_files_the_same_board(ray_address, model, tmp_path):
    import torch

    from safety_bench.cli import main
    from safety_bench.orchestration.nightly import load_config, run_nightly

    from helpers.models import build_tiny_model

    b = build_tiny_model(tmp_path / "ckpt-b", seed=1)
    for name in ("local", "ray"):
        (tmp_path / f"{name}.yaml").write_text(NIGHTLY.format(store=tmp_path / name / "store", board=tmp_path / name / "board",
                                                             a=model, b=b))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # each Ray task computes with one thread
    try:
        local = run_nightly(load_config(tmp_path / "local.yaml"))
    finally:
        torch.set_num_threads(threads)
    assert local.exit_code == 0 and local.generations == 2 and local.sweeps == 1
    assert main(["nightly", "--config", str(tmp_path / "ray.yaml"), "--executor", "ray", "--ray-address", ray_address,
                 "--workers", "2"]) == 0
    rows = _board_rows(tmp_path / "ray" / "board")
    assert rows == _board_rows(tmp_path / "local" / "board")
    assert [r["model"] for r in rows] == ["tiny-a", "tiny-b"] and rows[0]["visage"]["value"] is not None
    again = run_nightly(load_config(tmp_path / "ray.yaml"), executor="ray",
                        ray_options=RayOptions(address=ray_address))
    assert (again.generations, again.sweeps, again.judge_calls) == (0, 0, 0)  # idempotent as without Ray


def test_a_pool_larger_than_the_cluster_is_refused_before_anything_is_written(ray_address, tiny_model, tmp_path,
                                                                              capsys):
    from safety_bench.cli import main

    out = tmp_path / "never"
    assert main(["landscape", "--model", str(tiny_model), "--data", "sample", "--points", "3", "--out", str(out),
                 "--no-progress", "--executor", "ray", "--ray-address", ray_address, "--workers", "4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("safety-bench landscape: 4 worker(s)") and "the cluster has 2 CPUs" in err[-1]
    assert not out.exists()
