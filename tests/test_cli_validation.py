"""Every bad input is stopped before anything is written (issue 13): exit code 2, one line naming the setting,
and the output folder exactly as it was. Most cases call the CLI's `main()` in-process (a subprocess costs
seconds of imports); two go through a real `python -m safety_bench.cli` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safety_bench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file under `folder` with its bytes (None when the folder does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"safety-bench {command}: "), err
    return err


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder as far as the checks can see (config.json with an 8192-token context): the checks
    run before any model is loaded, so no weights are needed to test them."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 8192}))
    return folder


LANDSCAPE_CASES = [
    (["--task", "safety_landscpe_mini"], "--task 'safety_landscpe_mini'", "did you mean 'safety_landscape_mini'"),
    (["--judge", "nosuch"], "--judge 'nosuch'", "keyword"),
    (["--max-gen-toks", "100000"], "--max-gen-toks 100000", "context is 8192"),
    (["--max-gen-toks", "0"], "--max-gen-toks 0", "must be ≥ 1"),
    (["--system-prompt", "bogus"], "--system-prompt 'bogus'", "safety"),
    (["--points", "0"], "--points 0", "must be ≥ 2"),
    (["--limit", "0"], "--limit 0", "must be ≥ 1"),
    (["--limit", "-1"], "--limit -1", "must be ≥ 1"),
    (["--range", "0"], "--range 0.0", "must be > 0"),
    (["--directions", "0"], "--directions 0", "must be ≥ 1"),
    (["--metadata", "{per_category: 4"], "--metadata", "not valid JSON"),
    (["--data", "no/such/folder"], "--data 'no/such/folder'", "sample"),
    (["--dtype", "float8"], "--dtype 'float8'", "bfloat16"),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("flags", "names", "says"), LANDSCAPE_CASES, ids=[c[1].split()[0] + "=" + c[0][1]
                                                                          for c in LANDSCAPE_CASES])
def test_landscape_refuses_bad_settings_before_writing(flags, names, says, dry_run, model_dir, tmp_path, capsys):
    out = tmp_path / "D"
    argv = ["landscape", "--model", str(model_dir), "--data", "sample", "--out", str(out), *flags]
    assert main(argv + (["--dry-run"] if dry_run else [])) == 2
    err = one_line_error(capsys, "landscape")
    assert names in err and says in err
    assert not out.exists()  # the typo left no config.json behind to trap the corrected command


def test_landscape_leaves_an_existing_sweep_folder_untouched(model_dir, tmp_path, capsys):
    out = tmp_path / "D"
    out.mkdir()
    (out / "config.json").write_text('{"task": "safety_landscape_mini"}')
    before = snapshot(out)
    assert main(["landscape", "--model", str(model_dir), "--out", str(out), "--judge", "nosuch"]) == 2
    one_line_error(capsys, "landscape")
    assert snapshot(out) == before


def test_landscape_missing_model_and_towards(tmp_path, model_dir, capsys):
    assert main(["landscape", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "D")]) == 2
    assert "--model" in one_line_error(capsys, "landscape")
    assert main(["landscape", "--model", str(model_dir), "--grid", "1d_interpolation",
                 "--towards", str(tmp_path / "ft"), "--out", str(tmp_path / "D")]) == 2
    assert "--towards" in one_line_error(capsys, "landscape")
    assert not (tmp_path / "D").exists()


@pytest.mark.parametrize(("argv", "names"), [
    (["--model_args", "pretrained=/no/such/model", "--tasks", "safety_landscape_mini"], "pretrained"),
    (["--model_args", "pretrained={model}", "--tasks", "safety_landscpe_mini"], "--tasks 'safety_landscpe_mini'"),
    (["--model_args", "pretrained={model}", "--tasks", "safety_benign", "--metadata", "{data: sample"],
     "--metadata"),
], ids=["missing-model", "task-typo", "metadata-not-json"])
def test_eval_user_errors_are_one_line(argv, names, model_dir, tmp_path, capsys):
    out = tmp_path / "results"
    argv = [a.replace("{model}", str(model_dir)) for a in argv]
    assert main(["eval", "--model", "hf", *argv, "--output_path", str(out)]) == 2
    assert names in one_line_error(capsys, "eval")
    assert not out.exists()


def test_judge_refuses_a_folder_as_output_and_an_empty_input(tmp_path, capsys):
    good = tmp_path / "in.jsonl"
    good.write_text(json.dumps({"instruction": "ask", "response": "I'm sorry, I cannot."}) + "\n")
    before = snapshot(tmp_path)
    assert main(["judge", "--input", str(good), "--output", str(tmp_path)]) == 2
    assert "--output" in one_line_error(capsys, "judge") and snapshot(tmp_path) == before
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    before = snapshot(tmp_path)
    assert main(["judge", "--input", str(empty), "--output", str(tmp_path / "out.jsonl")]) == 2
    assert "no records" in one_line_error(capsys, "judge") and snapshot(tmp_path) == before
    assert main(["judge", "--judge", "nosuch", "--input", str(good), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "--judge 'nosuch'" in one_line_error(capsys, "judge") and snapshot(tmp_path) == before


def test_judge_names_the_line_of_a_non_utf8_byte(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"instruction": "a", "response": "b"}\n{"instruction": "\xff"}\n')
    assert main(["judge", "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert f"{bad}:2: not UTF-8" in one_line_error(capsys, "judge")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("command", [["leaderboard", "build", "--out", "{tmp}/board"], ["store", "list"],
                                     ["compare", "--baseline", "a", "--candidate", "b"]],
                         ids=["leaderboard-build", "store-list", "compare"])
def test_read_commands_refuse_a_missing_store(command, tmp_path, capsys):
    store = tmp_path / "stroe"  # a typo
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--store", str(store)]
    assert main(argv) == 2
    err = one_line_error(capsys, " ".join(command[:2]) if command[0] != "compare" else "compare")
    assert "--store" in err and "no results store" in err
    assert snapshot(tmp_path) is not None and not store.exists() and not (tmp_path / "board").exists()


@pytest.mark.parametrize(("argv", "names"), [
    (["--alpha", "0"], "--alpha"), (["--max-flips", "-1"], "--max-flips"), (["--out", "{tmp}"], "--out")])
def test_compare_checks_its_settings(argv, names, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = snapshot(tmp_path)
    assert main(["compare", "--baseline", "a", "--candidate", "b", *argv]) == 2
    assert names in one_line_error(capsys, "compare") and snapshot(tmp_path) == before


def test_store_add_creates_the_store_but_not_over_a_file(tmp_path, capsys):
    judged = tmp_path / "in.jsonl"
    judged.write_text(json.dumps({"id": "1", "instruction": "ask", "response": "I'm sorry", "category": "malware"})
                      + "\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["store", "add", str(judged), "--store", str(afile), "--name", "m"]) == 2
    assert "--store" in one_line_error(capsys, "store add") and afile.read_text() == "x"
    assert main(["store", "add", str(judged), "--store", str(tmp_path / "new"), "--name", "m"]) == 0
    assert (tmp_path / "new" / "models").is_dir()  # write commands create the store


def _run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "safety_bench.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=120)


def test_subprocess_landscape_typo_and_missing_store(model_dir, tmp_path):
    """Through a real process: exit status 2 and one stderr line, nothing created."""
    proc = _run_cli("landscape", "--model", str(model_dir), "--task", "safety_landscpe_mini", "--out",
                    str(tmp_path / "D"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--task 'safety_landscpe_mini'" in proc.stderr and not (tmp_path / "D").exists()
    proc = _run_cli("leaderboard", "build", "--store", str(tmp_path / "nostore"), "--out", str(tmp_path / "B"))
    assert proc.returncode == 2 and "no results store" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "nostore").exists() and not (tmp_path / "B").exists()


def test_verbose_shows_the_traceback(model_dir, tmp_path, capsys):
    assert main(["-v", "landscape", "--model", str(model_dir), "--judge", "nosuch", "--out", str(tmp_path / "D")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "UsageError" in err


@pytest.mark.parametrize(("argv", "names"), [
    (["finetune", "--model", "{model}", "--out", "{out}", "--epochs", "0"], "--epochs 0"),
    (["finetune", "--model", "{model}", "--out", "{out}", "--data", "{tmp}/none.jsonl"], "--data"),
    (["align", "--base", "{model}", "--out", "{out}", "--system-variants", "default,bogus"], "--system-variants"),
    (["align", "--base", "{tmp}/nomodel", "--out", "{out}"], "--base"),
    (["refusal-check", "--model", "{model}", "--max-new-tokens", "9000", "--output", "{out}/r.json"],
     "context is 8192"),
], ids=["finetune-epochs", "finetune-data", "align-variants", "align-base", "refusal-check-tokens"])
def test_training_commands_check_before_loading(argv, names, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [a.replace("{model}", str(model_dir)).replace("{out}", str(out)).replace("{tmp}", str(tmp_path))
            for a in argv]
    assert main(argv) == 2
    assert names in one_line_error(capsys, argv[0])
    assert not out.exists()
