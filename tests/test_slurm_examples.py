"""The Slurm examples: valid bash, and every `safety-bench landscape` line in them parses and dry-runs."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

SLURM = Path(__file__).resolve().parents[1] / "examples" / "slurm"
SCRIPTS = sorted(SLURM.glob("*.sbatch"))


def _commands(script: Path) -> list[str]:
    """`safety-bench landscape` command lines (continuations joined, comments skipped)."""
    text = re.sub(r"\\\n\s*", " ", script.read_text())
    return [line.strip() for line in text.splitlines() if line.strip().startswith("safety-bench landscape")]


def _argv(line: str, values: dict[str, str]) -> list[str]:
    line = line.replace('"${SHARDS[@]}"', " ".join(values["SHARDS"].split()))
    for name, value in values.items():
        line = line.replace(f"${name}", value).replace(f"${{{name}}}", value)
    return shlex.split(line)[1:]  # drop the program name


def test_every_script_is_valid_bash():
    assert len(SCRIPTS) == 3
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_sweep_lines_parse_and_dry_run(script, tiny_model, tmp_path, monkeypatch, capsys):
    from safety_bench.cli import build_parser, main

    monkeypatch.setenv("SAFETY_BENCH_DATA", "sample")  # the scripts use HEx-PHI from the hub by default
    values = {"MODEL": str(tiny_model), "OUT": str(tmp_path / "out"), "K": "1", "N": "8", "ADDRESS": "127.0.0.1:6379",
              "SHARDS": f"{tmp_path}/out-shard1 {tmp_path}/out-shard2"}
    lines = _commands(script)
    assert lines, f"{script.name} runs no sweep"
    for line in lines:
        argv = _argv(line, values)
        build_parser().parse_args(argv)  # exits on an unknown option
        if "--merge" in argv:
            continue  # a merge has nothing to dry-run
        if "--max-gen-toks" in argv:  # the scripts' 512 tokens do not fit the tiny model's 512-token context
            argv[argv.index("--max-gen-toks") + 1] = "16"
        assert main([*argv, "--dry-run"]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "points: " in out and "2d_random" in out
        if "--executor" in argv:
            assert "executor: ray (127.0.0.1:6379" in out
        if "--shard" in argv:
            assert "shard 1/8" in out
