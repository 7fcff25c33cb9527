"""One local Ray cluster for a test module: `ray start --head` with 2 CPUs, a small object store and no
dashboard, joined by address, stopped on teardown.

It is stopped by its own process group (everything `ray start` spawns stays in the session it was started
in) rather than by `ray stop`, which kills every Ray process on the machine by name, other users' clusters
included. A test process killed before its teardown leaves its group recorded in REGISTRY; the next
cluster start reaps it, so a killed run never leaves a cluster behind for the next one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safety_bench.leaderboard.lock import process_alive

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = Path(tempfile.gettempdir()) / "safety-bench-test-ray"
OBJECT_STORE_BYTES = 80 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_alive = process_alive


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (non-zombie) process."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(stat.parent.name)] = (int(fields[1]), int(fields[2]))
    return out


def _cluster_pids(pgid: int) -> set[int]:
    """The cluster's daemons (its process group) and their direct children: Ray's worker processes start
    sessions of their own, so the group alone misses them."""
    procs = _processes()
    group = {pid for pid, (_, g) in procs.items() if g == pgid}
    return group | {pid for pid, (ppid, _) in procs.items() if ppid in group}


def _stop_group(pgid: int, temp: str | None) -> None:
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):  # Ray's daemons linger after SIGTERM
        pids = _cluster_pids(pgid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # exited between the listing and the signal: nothing left to stop
        deadline = time.time() + wait
        while time.time() < deadline and _cluster_pids(pgid) & pids:
            time.sleep(0.2)
    if temp:
        shutil.rmtree(temp, ignore_errors=True)


def reap_leftovers() -> None:
    """Stop clusters whose test process died before its teardown."""
    if not REGISTRY.is_dir():
        return
    for entry in REGISTRY.glob("*.json"):
        try:
            info = json.loads(entry.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        if not _alive(info["owner"]):
            _stop_group(info["pgid"], info.get("temp"))
            entry.unlink(missing_ok=True)


def _reload_ray_config() -> None:
    """Ray reads RAY_AUTH_MODE when it is imported; a test process that imported it earlier re-reads it."""
    if "ray" in sys.modules:
        from ray._raylet import Config

        Config.initialize("")


@contextmanager
def local_cluster(num_cpus: int = 2) -> Iterator[str]:
    """Start a head node; yields its address (HOST:PORT) for `--ray-address`."""
    reap_leftovers()
    REGISTRY.mkdir(exist_ok=True)
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="sbray", dir="/tmp")  # short: Ray's socket paths are length-limited
    ray = str(Path(sys.executable).with_name("ray"))
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # token authentication on, with a token of this cluster's own (not ~/.ray/auth_token): a driver joining
    # by HOST:PORT must say so (RAY_AUTH_MODE=token); the caller's environment gets both while the cluster runs
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **auth}
    proc = subprocess.Popen([ray, "start", "--head", "--port", str(port),
                             f"--num-cpus={num_cpus}", "--num-gpus=0", f"--object-store-memory={OBJECT_STORE_BYTES}",
                             "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    pgid = proc.pid  # the new session's group: every daemon `ray start` spawns stays in it
    entry = REGISTRY / f"{pgid}.json"
    entry.write_text(json.dumps({"pgid": pgid, "owner": os.getpid(), "temp": temp}))
    saved = {k: os.environ.get(k) for k in auth}
    try:
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{output}")
        os.environ.update(auth)
        _reload_ray_config()
        yield f"127.0.0.1:{port}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reload_ray_config()
        _stop_group(pgid, temp)
        entry.unlink(missing_ok=True)
