"""`benchmarks/landscape_speed.py` runs end to end on a tiny model and reports what the issue asks for:
forced-length generation (same tokens both ways), both ways timed, the ratio, the bandwidth limit.
Figures are not asserted (speed is measured in benchmarks/, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_speed_benchmark_report(tiny_model, tmp_path):
    out = tmp_path / "speed.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "landscape_speed.py"), "--model", str(tiny_model),
                    "--device", "cpu", "--points", "2", "--reference-points", "1", "--prompts", "3",
                    "--new-tokens", "5", "--bandwidth-gbs", "10", "--json", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    suite, ref = report["suite"], report["reference (timed)"]
    assert [p["tokens"] for p in suite["points"]] == [15, 15]  # 3 prompts x 5 forced new tokens
    assert [p["tokens"] for p in ref["points"]] == [15]
    assert [p["alpha"] for p in suite["points"]] == [0.05, 0.1] and ref["points"][0]["alpha"] == 0.05
    assert 0 < suite["move_weights_share"] < 1 and 0 < ref["move_weights_share"] < 1
    ratio = report["ratio_reference_over_suite (seconds per point)"]
    assert ratio == ref["seconds_per_point"] / suite["seconds_per_point"]
    limit = report["physical_limit"]
    assert limit["bandwidth_GBs"] == 10 and limit["weight_bytes_per_step"] > 0
    assert limit["achieved_over_limit"] == limit["decode_limit_s_per_point"] / suite["generate_s_per_point"]
    extrapolated = report["extrapolated_21_points_s"]
    assert extrapolated["reference (extrapolated from timed points)"] == 21 * ref["seconds_per_point"]
