"""A real OpenAI-compatible server for the tests: `transformers serve` on a loopback port, serving a local
model folder offline (HF_HUB_OFFLINE=1). Started once per session by the `transformers_server` fixture in
conftest.py and stopped at the end; its log is kept so a failure can say what the server said.

Why a real server besides the scripted one in `helpers/fake_openai.py`: the scripted server answers what the
test wrote; this one answers what a model writes (mostly not in the rubric's format), with real HTTP,
real concurrency and real token accounting.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120


@dataclass
class ServedModel:
    base_url: str        # http://127.0.0.1:PORT/v1
    model: str           # the name requests use: the local folder
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model_dir: Path, log: Path) -> ServedModel:
    """Start `transformers serve MODEL_DIR` on a free loopback port; wait until /health answers."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.exit(main())",
           "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
           "--dtype", "float32", "--log-level", "warning"]
    out = open(log, "wb")  # noqa: SIM115 - the server writes here for the whole session
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    served = ServedModel(f"http://127.0.0.1:{port}/v1", str(model_dir), proc, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {proc.returncode}:\n{served.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return served
        except OSError:
            time.sleep(0.5)
    stop(served)
    raise RuntimeError(f"transformers serve did not answer /health in {START_TIMEOUT_S}s:\n{served.log_tail()}")


def stop(served: ServedModel) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(timeout=10)
