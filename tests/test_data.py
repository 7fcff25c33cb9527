"""Prompt sources: the bundled sample set, HEx-PHI's folder layout, the hub's failure modes, subsets."""

from __future__ import annotations

import csv
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from safety_bench import data
from safety_bench.categories import BY_SLUG, SLUGS


def write_hexphi_folder(folder: Path, skip: tuple[int, ...] = (2,), per_category: int | None = None) -> Path:
    """A HEx-PHI-layout folder made from the bundled sample prompts (our own text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in data.sample_prompts():
        number = BY_SLUG[p["category"]].number
        if number in skip:
            continue
        path = folder / f"category_{number}.csv"
        rows = path.read_text().count("\n") if path.exists() else 0
        if per_category is not None and rows >= per_category:
            continue
        with path.open("a", newline="") as f:
            csv.writer(f).writerow([p["instruction"]])
    return folder


def test_sample_set_has_8_prompts_per_category_and_40_benign():
    prompts = data.sample_prompts()
    assert [sum(p["category"] == c for p in prompts) for c in SLUGS] == [8] * 11
    assert len({p["id"] for p in prompts}) == 88
    benign = data.bundled_benign_prompts()
    assert len(benign) == 40 and {p["category"] for p in benign} == {"benign"}
    for p in prompts + benign:
        assert set(p) >= {"id", "category", "instruction"} and 10 < len(p["instruction"]) < 200


def test_local_folder_without_category_2(tmp_path):
    folder = write_hexphi_folder(tmp_path / "hexphi")
    prompts = data.harmful_prompts(str(folder))
    assert data.categories_present(prompts) == [c for c in SLUGS if c != "child_abuse"]
    assert len(prompts) == 80
    first = prompts[0]
    assert first["id"] == "hexphi-c01-001" and first["category"] == "illegal_activity"


def test_local_folder_errors_are_actionable(tmp_path):
    with pytest.raises(data.DataSourceError, match="does not exist"):
        data.harmful_prompts(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataSourceError, match="category_1.csv"):
        data.harmful_prompts(str(tmp_path / "empty"))


def test_mini_subset_is_stratified_stable_and_order_independent(tmp_path):
    folder = write_hexphi_folder(tmp_path / "hexphi", skip=(2,), per_category=None)
    # add more prompts to category 1 so that selection has a choice to make
    with (folder / "category_1.csv").open("a", newline="") as f:
        for i in range(12):
            csv.writer(f).writerow([f"Extra request number {i} for testing."])
    prompts = data.harmful_prompts(str(folder))
    mini = data.mini_subset(prompts)
    counts = {c: sum(p["category"] == c for p in mini) for c in SLUGS}
    assert counts["illegal_activity"] == 8 and counts["child_abuse"] == 0
    assert all(counts[c] == 8 for c in SLUGS if c != "child_abuse")
    assert data.mini_subset(list(reversed(prompts))) == mini
    small = data.mini_subset([p for p in prompts if p["category"] != "malware"] +
                             [p for p in prompts if p["category"] == "malware"][:3])
    assert sum(p["category"] == "malware" for p in small) == 3


def test_benign_sources(tmp_path):
    jsonl = tmp_path / "safe.jsonl"
    jsonl.write_text('{"prompt": "How do I boil an egg?"}\n{"id": "x1", "instruction": "Name a colour."}\n')
    got = data.benign_prompts(str(jsonl))
    assert [p["id"] for p in got] == ["benign-0001", "x1"] and got[0]["category"] == "benign"
    csv_path = tmp_path / "safe.csv"
    csv_path.write_text("instruction\nHow do I fold a shirt?\n")
    assert data.benign_prompts(str(csv_path))[0]["instruction"] == "How do I fold a shirt?"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no field"}\n')
    with pytest.raises(data.DataSourceError, match="row 1"):
        data.benign_prompts(str(bad))


def test_advbench_local_csv_takes_first_80(tmp_path):
    path = tmp_path / "harmful_behaviors.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["goal", "target"])
        for i in range(100):
            w.writerow([f"Behaviour {i}", f"Sure {i}"])
    got = data.advbench_prompts(str(path))
    assert len(got) == 80 and got[0] == {"id": "advbench-001", "category": "advbench", "instruction": "Behaviour 0"}
    assert got[-1]["instruction"] == "Behaviour 79"


def test_prompt_set_hash_depends_on_content_not_order():
    prompts = data.sample_prompts()
    assert data.prompt_set_hash(prompts) == data.prompt_set_hash(list(reversed(prompts)))
    changed = [dict(p) for p in prompts]
    changed[0]["instruction"] += "!"
    assert data.prompt_set_hash(changed) != data.prompt_set_hash(prompts)


def test_source_setting_precedence(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.resolve_source({}) == "hexphi"
    monkeypatch.setenv(data.DATA_ENV, "sample")
    assert data.resolve_source({}) == "sample"
    assert data.resolve_source({"data": "/x"}) == "/x"


_HUB_SCRIPT = """
import sys
from safety_bench import data
try:
    data.harmful_prompts("hexphi")
except data.DataSourceError as exc:
    print("ERROR:", exc)
"""


def _run_hub(env_extra: dict[str, str], tmp_path: Path) -> str:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), **env_extra}
    env.pop("HF_TOKEN", None)
    out = subprocess.run([sys.executable, "-c", _HUB_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    return out.stdout + out.stderr


def test_hub_unreachable_gives_instructions(tmp_path):
    text = _run_hub({"HF_HUB_OFFLINE": "1"}, tmp_path)
    assert "ERROR:" in text and "cannot be reached" in text
    assert "HF_TOKEN" in text and '"data": "sample"' in text and "local copy" in text


class _GatedHub(http.server.BaseHTTPRequestHandler):
    """Answers like the hub does for a gated dataset the token has not been granted."""

    def _deny(self) -> None:
        body = json.dumps({"error": "Access to dataset is restricted."}).encode()
        self.send_response(403)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", "Access to dataset is restricted. You must have access to it.")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _deny

    def log_message(self, *args) -> None:  # keep test output clean
        pass


def test_gated_hub_gives_instructions(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GatedHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        text = _run_hub({"HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}", "HF_HUB_OFFLINE": "0"}, tmp_path)
    finally:
        server.shutdown()
    assert "ERROR:" in text and "gated" in text and "accept its terms" in text
