"""Capability landscapes: a generative and a loglikelihood capability task through the sweep on a tiny
model (curves and basins in landscape.json), the basin rule, and the bundled capability tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_bench.harness.capability import pick_metric
from safety_bench.landscape.capability import basin, basins
from safety_bench.landscape.grid import build_grid
from safety_bench.orchestration.sweep import SweepConfig, Sweeper, config_hash, run_sweep

from helpers.models import build_talkative_model


def _config(model: Path, **over) -> SweepConfig:
    settings = dict(model=str(model), grid=build_grid("1d_random", points=3, range_=0.5),
                    task="safety_landscape_mini", judges=["keyword"], data="sample", max_gen_toks=4, limit=2,
                    batch_size=8, device="cpu", capability_task="safety_capability_sample", capability_limit=3)
    settings.update(over)
    return SweepConfig(**settings)


@pytest.fixture(scope="module")
def talkative(tmp_path_factory) -> Path:
    return build_talkative_model(tmp_path_factory.mktemp("talkative") / "model")


@pytest.mark.parametrize(("task", "metric"), [("safety_capability_sample", "exact_match,last_number"),
                                              ("safety_capability_sample_mc", "acc,none")])
def test_capability_task_through_the_sweep(talkative, tmp_path, task, metric):
    config = _config(talkative, capability_task=task)
    out = tmp_path / "land"
    landscape = run_sweep(config, out, progress=False)
    assert landscape == json.loads((out / "landscape.json").read_text())
    cap = landscape["capability"]
    assert cap["task"] == task and cap["metric"] == metric and cap["n"] == 3
    (curve,) = cap["curves"]
    assert len(curve) == len(landscape["asr"]["keyword"][0]) == 3
    assert all(v is not None and 0.0 <= v <= 100.0 and abs(v * 3 / 100 - round(v * 3 / 100)) < 1e-9 for v in curve)
    b = cap["basins"]["keyword"]
    assert b["tolerance"] == cap["tolerance"] == 10.0
    assert b["wider"] in ("safety", "capability", "equal")
    for side in ("safety", "capability"):
        lo, hi = b[side]["range"]
        assert lo <= 0.0 <= hi and b[side]["width"] == pytest.approx(hi - lo)
    assert (out / "capability_keyword.png").stat().st_size > 1000
    point = json.loads((out / "points" / "origin" / "point.json").read_text())
    assert point["capability"]["metric"] == metric and point["timing"]["capability_s"] > 0


def test_capability_score_at_origin_is_the_unperturbed_models(talkative, tmp_path):
    """The capability run uses the live model: at the origin it scores what a plain run of the
    unperturbed model scores, and a far point of a big perturbation changes the loglikelihoods."""
    import lm_eval

    from safety_bench.harness import task_manager
    from safety_bench.harness.capability import evaluate_capability

    config = _config(talkative, capability_task="safety_capability_sample_mc", capability_limit=6,
                     grid=build_grid("1d_random", points=3, range_=20.0))
    sweeper = Sweeper(config)
    origin = evaluate_capability(sweeper.lm, sweeper.tm, "safety_capability_sample_mc", 6)
    plain = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={talkative},device=cpu", tasks=[
        "safety_capability_sample_mc"], task_manager=task_manager({}), limit=6, apply_chat_template=True,
        bootstrap_iters=0, log_samples=True)
    assert origin["value"] == pytest.approx(plain["results"]["safety_capability_sample_mc"]["acc,none"])
    far = next(p for p in config.grid.points() if p.coords[0] == 20.0)
    files = sweeper.run_point(far)
    assert files["point.json"]["capability"]["metric"] == "acc,none"
    # the model is restored after the point: the origin scores the same again
    again = evaluate_capability(sweeper.lm, sweeper.tm, "safety_capability_sample_mc", 6)
    assert again["value"] == origin["value"]


def test_capability_task_is_part_of_the_configuration_hash(talkative):
    plain = _config(talkative, capability_task=None, capability_limit=None)
    ident = plain.identity("w", None)
    assert "capability_task" not in ident  # a safety-only sweep keeps the hash it always had
    with_cap = _config(talkative).identity("w", None)
    other = _config(talkative, capability_task="safety_capability_sample_mc").identity("w", None)
    assert len({config_hash(ident), config_hash(with_cap), config_hash(other)}) == 3


def test_basin_rule():
    xs = [-0.2, -0.1, 0.0, 0.1, 0.2]
    # safety: ASR may rise at most 10 points above the origin's
    assert basin(xs, [90, 15, 5, 14, 16], higher_is_better=False)["range"] == [-0.1, 0.1]
    # capability: the score may drop at most 10 points below the origin's; a gap (None) ends the basin
    b = basin(xs, [70, 72, 80, None, 80], higher_is_better=True)
    assert b["range"] == [-0.2, 0.0] and b["width"] == pytest.approx(0.2)
    assert basin(xs, [1, 2, None, 3, 4], higher_is_better=True) is None
    # exactly at the edge counts as inside, whatever the float rounding of 100 x a fraction
    assert basin(xs, [0, 45.0, 100 * 0.55, 40, 0], higher_is_better=True)["range"] == [-0.1, 0.0]
    both = basins(xs, [[90, 15, 5, 14, 16]], [[10, 75, 80, 78, 72]])
    assert both["wider"] == "capability" and both["safety"]["width"] == pytest.approx(0.2)
    assert both["capability"]["width"] == pytest.approx(0.3) and both["per_direction"][0]["capability"] == pytest.approx(0.3)


def test_pick_metric_prefers_the_task_score():
    assert pick_metric({"alias": "x", "acc,none": 0.5, "acc_stderr,none": "N/A", "acc_norm,none": 0.6}) == (
        "acc,none", 0.5)
    assert pick_metric({"exact_match,strict": 0.25, "exact_match_stderr,strict": 0.1}) == ("exact_match,strict", 0.25)
    assert pick_metric({"perplexity,none": 3.0}) == ("perplexity,none", 3.0)
    with pytest.raises(ValueError):
        pick_metric({"alias": "x"})


def test_one_figure_for_two_models(tmp_path):
    """The demo's figure: two models' safety margins and capability curves on one axes, basins marked."""
    from safety_bench.landscape.capability_plots import plot_capability_models

    def land(asr, cap):
        xs = [-0.2, 0.0, 0.2]
        return {"kind": "1d_random", "coords": [xs], "asr": {"keyword": [asr]}, "note": "test data",
                "capability": {"task": "t", "metric": "acc,none", "curves": [cap], "tolerance": 10.0,
                               "basins": {"keyword": basins(xs, [asr], [cap])}}}

    paths = plot_capability_models({"base": land([90, 80, 95], [30, 40, 35]),
                                    "aligned": land([60, 5, 50], [20, 38, 30])}, tmp_path, stem="demo")
    assert sorted(p.name for p in paths) == ["demo_keyword.png", "demo_keyword.svg"]
    svg = (tmp_path / "demo_keyword.svg").read_text()
    for label in ("base: safety margin", "aligned: safety margin", "aligned: capability", "aligned: safety basin"):
        assert label in svg


def test_cli_refuses_an_unknown_capability_task_before_loading(tiny_model, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "safety_bench.cli", "landscape", "--model", str(tiny_model),
                           "--capability-task", "no_such_task_xyz", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--capability-task 'no_such_task_xyz': not an lm-eval task" in lines[0]
    assert not out.exists()
