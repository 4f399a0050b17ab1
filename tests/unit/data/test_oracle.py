"""The synthetic cohort's true risk is a probability: calibrated against what happened, rising before events, and
computed from the latent state alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.data.oracle import OracleHorizonError, oracle_scores
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import Latent, SynthConfig, true_risk
from earlywarn.data.validation import load_validated
from earlywarn.data.windows import WindowConfig, build_windows
from earlywarn.training.metrics import expected_calibration_error


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """220 people x 365 days: over 50,000 windows outside washout with complete follow-up."""
    r = synth(SynthConfig(participants=220, days=365, seed=11), tmp_path_factory.mktemp("oracle"))
    data = load_validated(r.features_path, r.outcomes_path)
    windows = build_windows(data.features, data.outcomes, WindowConfig())
    return r, data, windows, oracle_scores(pd.read_parquet(r.oracle_path), windows)


def test_true_risk_is_calibrated_against_what_happened(cohort):
    _, _, windows, risk = cohort
    assert len(windows) >= 50_000 and not np.isnan(risk).any()
    ece = expected_calibration_error(windows.label.astype(float), risk, bins=10)
    assert ece <= 0.01, ece
    # Calibrated in the tail where alerts live, not only on average.
    top = risk >= np.quantile(risk, 0.95)
    assert abs(risk[top].mean() - windows.label[top].mean()) <= 0.03, (risk[top].mean(), windows.label[top].mean())


def test_true_risk_rises_as_an_event_approaches(cohort):
    _, data, windows, risk = cohort
    frame = windows.frame().assign(risk=risk)
    events = data.outcomes.rename(columns={"date": "event_date"})[["participant_id", "event_date"]]
    before = frame[frame["label"] == 1].merge(events, on="participant_id")
    before["lead"] = (before["event_date"] - before["date"]).dt.days
    by_lead = before[before["lead"].between(1, 14)].groupby("lead")["risk"].mean()
    assert by_lead.loc[1:3].mean() > by_lead.loc[8:14].mean() + 0.05, by_lead.round(3).to_dict()
    assert (by_lead.loc[1:7] > by_lead.loc[14] + 0.1).all(), by_lead.round(3).to_dict()
    assert by_lead.min() > 5 * frame.loc[frame["label"] == 0, "risk"].mean()


def test_true_risk_reads_only_the_state_at_the_end_of_the_day():
    """The same state gives the same risk, whatever happens next; it is exact against forward simulation."""
    cfg = SynthConfig(participants=1, days=60)
    rng = np.random.default_rng(0)
    n = 6
    state = Latent(
        phase=np.array([0, 0, 1, 1, 2, 2], np.int8),
        day_in=np.array([0, 0, 3, 15, 0, 0], np.int32),
        severity=np.array([0, 0, 0.3, 1.0, 0.8, 0.1], np.float32),
        refractory=np.array([0, 0, 0, 0, 30, 2], np.int32),
        ramp=np.array([12, 20, 10, 14, 11, 15], np.int32),
        onset=np.array([0.01, 0.03, 0.01, 0.01, 0.01, 0.02]),
    )
    exact = true_risk(cfg, state, 10, 14)
    np.testing.assert_array_equal(exact, true_risk(cfg, state.copy(), 10, 14))
    from earlywarn.data.synth_course import begin_day, end_day, onset_rate

    draws = 100_000
    sim = Latent(*(np.repeat(getattr(state, f), draws) for f in ("phase", "day_in", "severity", "refractory", "ramp", "onset")))
    hit = np.zeros(n * draws, bool)
    for k in range(1, 15):
        h = begin_day(cfg, sim, rng.random(n * draws) < onset_rate(cfg, sim, 10 + k))
        event = rng.random(n * draws) < h
        end_day(sim, event)
        hit |= event
    simulated = hit.reshape(n, draws).mean(axis=1)
    np.testing.assert_allclose(exact, simulated, atol=0.005)  # Monte-Carlo SE is at most 0.0016 with 100,000 draws


def test_windows_for_another_horizon_are_refused(cohort):
    r, data, _, _ = cohort
    week = build_windows(data.features, data.outcomes, WindowConfig(horizon=7))
    with pytest.raises(OracleHorizonError, match="14 days ahead"):
        oracle_scores(pd.read_parquet(r.oracle_path), week)


def test_censoring_after_care_leaves_the_event_rate_of_alert_like_windows_unchanged(cohort):
    """Care acts the day after half of the alert-like episodes open (seeded); the generator's events do not react to
    it, so any change in the event rate among alert-like windows is censoring's own bias."""
    _, data, windows, risk = cohort
    alert_like = risk >= 0.3
    frame = windows.frame()[alert_like]
    onset = frame.groupby("participant_id")["date"].diff().dt.days.ne(1)
    opened = frame.loc[onset.to_numpy(), ["participant_id", "date"]]
    acted = opened.sample(frac=0.5, random_state=0).assign(date=lambda f: f["date"] + pd.Timedelta(days=1))
    censored = build_windows(data.features, data.outcomes, WindowConfig(), care=acted)
    after = oracle_scores(pd.read_parquet(cohort[0].oracle_path), censored) >= 0.3
    before_rate, after_rate = windows.label[alert_like].mean(), censored.label[after].mean()
    assert censored.skipped["censored_after_care"] > 0.2 * alert_like.sum()
    assert abs(after_rate - before_rate) <= 0.05, (before_rate, after_rate)
