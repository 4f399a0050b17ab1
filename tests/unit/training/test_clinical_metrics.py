"""The clinical metrics in metrics.json and the card, on cases small enough to check by hand, and the subgroup-gap gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.training.clinical_metrics import clinical_metrics, event_sensitivity
from earlywarn.training.evaluate import band_calibration, subgroup_metrics
from earlywarn.training.metrics import calibration_slope_intercept, net_benefit
from earlywarn.training.promote import PromoteConfig, gates


def _frame(days: int, people: tuple[str, ...] = ("a",)) -> pd.DataFrame:
    dates = pd.date_range("2025-01-01", periods=days)
    return pd.DataFrame({"participant_id": np.repeat(people, days), "date": np.tile(dates, len(people))})


def test_net_benefit_matches_the_decision_curve_formula():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.2, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    # At t = 0.5: flagged are the 0.9 (event) and the 0.8 (no event): 1/10 - 1/10 * 1 = 0.
    # At t = 0.15: three flagged, two events: 2/10 - 1/10 * 0.15/0.85.
    np.testing.assert_allclose(net_benefit(y, p, np.array([0.5, 0.15])), [0.0, 0.2 - 0.1 * 0.15 / 0.85])


def test_calibration_slope_and_intercept_are_one_and_zero_for_calibrated_risks_and_say_when_they_are_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.6, 40_000)
    y = (rng.random(len(p)) < p).astype(int)
    slope, intercept = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(1, abs=0.05) and intercept == pytest.approx(0, abs=0.05)
    extreme = 1 / (1 + np.exp(-2 * np.log(p / (1 - p))))  # twice the log-odds: too extreme
    slope, _ = calibration_slope_intercept(y, extreme)
    assert slope == pytest.approx(0.5, abs=0.05)
    _, intercept = calibration_slope_intercept(y, p / 2)  # every risk halved: too low on the whole
    assert intercept > 0.3


def test_event_sensitivity_counts_events_a_high_window_came_before():
    frame = _frame(40)
    high = np.zeros(40, bool)
    high[[5, 6, 10, 20, 30]] = True
    events = pd.DataFrame({"participant_id": ["a", "a", "b"], "date": pd.to_datetime(["2025-01-14", "2025-02-05", "2025-01-10"])})
    # The 14 Jan event had a high day 3 days before (11 Jan), the 5 Feb one 5 days before (31 Jan); b was never scored.
    assert event_sensitivity(frame, high, events, horizon=7) == 1.0
    assert event_sensitivity(frame, high, events, horizon=3) == 0.5
    assert event_sensitivity(frame, high, events, horizon=2) == 0.0


def test_ppv_and_npv_at_each_band_threshold():
    frame = _frame(6)
    y = np.array([1, 0, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.5, 0.4, 0.1, 0.1])
    m = clinical_metrics(frame, y, p, 0.75, 0.45, None, 7, months=1.0)
    assert m["ppv_high"] == 0.5 and m["npv_high"] == 0.75  # flagged 0.9, 0.8; not flagged hold one event in four
    assert m["ppv_elevated"] == pytest.approx(2 / 3) and m["npv_elevated"] == 1.0
    bands = band_calibration(frame["participant_id"].to_numpy(), y, p, 0.75, 0.45, reps=50)
    assert bands["high_band_mean_risk"] == pytest.approx(0.85) and bands["high_band_event_rate"] == 0.5
    # The elevated band is the one below high: 0.5 (an event) only.
    assert bands["elevated_band_mean_risk"] == pytest.approx(0.5) and bands["elevated_band_event_rate"] == 1.0
    assert bands["high_band_gap_ci_low"] - 1e-9 <= 0.35 <= bands["high_band_gap_ci_high"] + 1e-9


def test_subgroup_intervals_and_the_gap_gate():
    rng = np.random.default_rng(3)
    people = [f"p{i}" for i in range(60)]
    frame = _frame(30, tuple(people))
    group = {p: "ios" if i % 2 else "android" for i, p in enumerate(people)}
    y = (rng.random(len(frame)) < 0.2).astype(int)
    noise = np.where(frame["participant_id"].map(group) == "ios", 0.2, 3.0)  # android scores are nearly random
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, noise))))
    attrs = pd.DataFrame({"participant_id": people, "platform": [group[p] for p in people]})
    m = subgroup_metrics(frame, y, p, attrs, reps=100)
    assert m["subgroup_platform_ios_auroc"] > 0.95 and m["subgroup_platform_android_auroc"] < 0.75
    assert m["subgroup_gap_platform_ci_low"] > 0.1 and m["subgroup_gap_platform_min_participants"] == 30
    failed = {g.name: g for g in gates(PromoteConfig(max_ece=1), m | {"auroc": 0.8, "ece": 0.01}, None) if not g.passed}
    assert "subgroup_gap" in failed and "platform gap" in failed["subgroup_gap"].detail
    # The same gap with an interval that reaches zero (too few people to tell) does not block.
    noisy = m | {"subgroup_gap_platform_ci_low": -0.02}
    assert all(
        g.passed for g in gates(PromoteConfig(max_ece=1), noisy | {"auroc": 0.8, "ece": 0.01}, None) if g.name == "subgroup_gap"
    )


def test_a_first_model_must_clear_a_floor():
    """With no champion: the AUROC's lower 95% bound above 0.5, enough held-out events, a positive calibration slope;
    the issue's example (AUROC 0.36 with no champion) used to pass every gate."""
    from earlywarn.training.promote import PromoteConfig, gates

    bad = {"auroc": 0.36, "auroc_ci_low": 0.21, "ece": 0.04, "events": 3.0, "calibration_slope": -0.4}
    bad |= {"calibration_slope_ci_low": -0.9, "calibration_slope_ci_high": -0.1}
    failed = {g.name for g in gates(PromoteConfig(), bad, None) if not g.passed}
    assert {"auroc", "events", "calibration_slope"} <= failed
    good = {"auroc": 0.78, "auroc_ci_low": 0.71, "ece": 0.02, "events": 64.0, "calibration_slope": 0.97}
    good |= {"calibration_slope_ci_low": 0.8, "calibration_slope_ci_high": 1.2}
    assert all(g.passed for g in gates(PromoteConfig(), good, None)), gates(PromoteConfig(), good, None)


def test_the_high_band_gate_fails_a_clear_under_statement_not_noise():
    """The shipped model's high band showed 0.139 where 0.381 had an event; a gap of 0.07 whose interval reaches zero
    (a few dozen held-out people) does not block."""
    from earlywarn.training.promote import PromoteConfig, gates

    base = {"auroc": 0.78, "auroc_ci_low": 0.71, "ece": 0.02, "events": 64.0, "calibration_slope": 1.0}
    base |= {"calibration_slope_ci_low": 0.8, "calibration_slope_ci_high": 1.2, "high_band_windows": 900.0}
    clear = base | {"high_band_mean_risk": 0.139, "high_band_event_rate": 0.381}
    clear |= {"high_band_gap_ci_low": -0.31, "high_band_gap_ci_high": -0.17}
    noisy = base | {"high_band_mean_risk": 0.45, "high_band_event_rate": 0.38}
    noisy |= {"high_band_gap_ci_low": -0.01, "high_band_gap_ci_high": 0.15}
    verdict = {
        name: {g.name: g.passed for g in gates(PromoteConfig(), m, None)} for name, m in (("clear", clear), ("noisy", noisy))
    }
    assert verdict["clear"]["high_band"] is False and verdict["noisy"]["high_band"] is True
    few = base | {"high_band_windows": 20.0, "high_band_mean_risk": 0.1, "high_band_event_rate": 0.5}
    assert next(g for g in gates(PromoteConfig(), few, None) if g.name == "high_band").detail.startswith("not judged")
