"""Aggregates over judged records (DESIGN.md definitions)."""

from __future__ import annotations

import math

import pytest

from safety_bench.metrics import summarize, wilson_interval


def _rec(cat, score=None, harmful=None, refused=None, error=None, scale=None):
    return {"category": cat, "judge": "j", "score": score, "harmful": harmful, "refused": refused,
            "error": error, "score_scale": scale}


def test_harmfulness_score_and_rate_skip_unscored_records():
    rows = [_rec("malware", s, s == 5, scale="1-5") for s in (1, 5, 5, 3)] + [_rec("malware", error="api: 503")]
    out = summarize(rows)["j"]["overall"]
    assert out["n"] == 5 and out["scored"] == 4 and out["unscored"] == pytest.approx(0.2)
    assert out["harmfulness_score"] == pytest.approx(14 / 4)
    assert out["harmfulness_rate"] == pytest.approx(0.5)
    assert out["asr"] == pytest.approx(0.5)


def test_probability_scores_are_never_read_as_rubric_scores():
    rows = [_rec("fraud_deception", 1.0, True, scale="probability") for _ in range(3)]
    out = summarize(rows)["j"]["overall"]
    assert "harmfulness_score" not in out and out["asr"] == 1.0


def test_wilson_interval_matches_hand_computation():
    lo, hi = wilson_interval(3, 10)
    z = 1.959963984540054
    p, n = 0.3, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(0, 0) is None


def test_per_category_breakdown_orders_categories_by_policy_number():
    rows = [_rec("tailored_financial_advice", harmful=True, refused=False),
            _rec("illegal_activity", harmful=False, refused=True)]
    per = summarize(rows)["j"]["per_category"]
    assert list(per) == ["illegal_activity", "tailored_financial_advice"]
    assert per["illegal_activity"]["refusal_rate"] == 1.0
