"""The synthetic cohort looks like behaviour, carries a real but imperfect prodromal signal, and drifts on request."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from earlywarn.data.contract import STANDARD_FEATURES
from earlywarn.data.oracle import oracle_auroc
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import SynthConfig
from earlywarn.data.validation import load_validated
from earlywarn.data.windows import WindowConfig, build_windows
from tests.deviation import deviation_score


def test_default_cohort_is_valid_fast_and_learnable(tmp_path):
    started = time.perf_counter()
    r = synth(SynthConfig(), tmp_path)
    assert time.perf_counter() - started < 60  # the spec's bound; real time is ~1 s
    data = load_validated(r.features_path, r.outcomes_path)
    assert data.feature_names == list(STANDARD_FEATURES) and data.features["participant_id"].nunique() == 500
    ws = build_windows(data.features, data.outcomes, WindowConfig(lookback=28))
    oracle = oracle_auroc(pd.read_parquet(r.oracle_path), ws)
    assert 0.75 <= oracle <= 0.95, oracle
    sample = ws.subset(np.arange(0, len(ws), 4))
    deviation = roc_auc_score(sample.label, deviation_score(sample.values(), sample.panel.features))
    assert deviation > 0.62, deviation
    assert deviation < oracle


def test_same_seed_same_cohort(tmp_path):
    a = synth(SynthConfig(participants=20, days=60, seed=5), tmp_path / "a")
    b = synth(SynthConfig(participants=20, days=60, seed=5), tmp_path / "b")
    c = synth(SynthConfig(participants=20, days=60, seed=6), tmp_path / "c")
    fa, fb, fc = (pd.read_parquet(x.features_path) for x in (a, b, c))
    pd.testing.assert_frame_equal(fa, fb)
    assert not fa.equals(fc)


def test_behaviour_has_rhythm_correlation_and_missingness(small_cohort):
    f = pd.read_parquet(small_cohort.features_path)
    weekend = f["date"].dt.dayofweek >= 5
    assert f.loc[weekend, "sleep_duration_h"].mean() > f.loc[~weekend, "sleep_duration_h"].mean() + 0.2
    within = f.groupby("participant_id")[["steps", "distance_km", "mood_ema", "anxiety_ema"]].transform(lambda s: s - s.mean())
    assert within["steps"].corr(within["distance_km"]) > 0.2
    assert within["mood_ema"].corr(within["anxiety_ema"]) < -0.2
    missing = f[list(STANDARD_FEATURES)].isna().mean()
    assert 0.02 < missing["steps"] < 0.3 and missing["mood_ema"] > missing["steps"]
    # Non-wear comes in runs: a missing step day is usually followed by another.
    gap = f["steps"].isna().to_numpy()
    assert gap[1:][gap[:-1]].mean() > 3 * gap.mean()


def test_prodrome_precedes_events_and_missingness_rises(small_cohort):
    data = load_validated(small_cohort.features_path, small_cohort.outcomes_path)
    ws = build_windows(data.features, data.outcomes, WindowConfig(lookback=28, horizon=7))
    recent = ws.values()[:, -7:, :]
    feats = ws.panel.features
    pos, neg = ws.label == 1, ws.label == 0
    mood = feats.index("mood_ema")
    assert np.nanmean(recent[pos, :, mood]) < np.nanmean(recent[neg, :, mood]) - 0.3
    missing = np.isnan(recent).mean(axis=(1, 2))
    assert missing[pos].mean() > missing[neg].mean()


def test_device_change_drift_rescales_steps_from_the_date(tmp_path):
    plain = synth(SynthConfig(participants=60, days=90, seed=2), tmp_path / "plain")
    drift = synth(SynthConfig(participants=60, days=90, seed=2, drift="device-change", drift_start_day=60), tmp_path / "drift")
    a, b = pd.read_parquet(plain.features_path), pd.read_parquet(drift.features_path)
    after = a["date"] >= pd.Timestamp(drift.drift_start)
    ratio = b.loc[after, "steps"].mean() / a.loc[after, "steps"].mean()
    assert 0.55 < ratio < 0.65
    pd.testing.assert_series_equal(a.loc[~after, "steps"], b.loc[~after, "steps"])
    pd.testing.assert_series_equal(a["mood_ema"], b["mood_ema"])


def test_population_drift_raises_true_risk(tmp_path):
    r = synth(SynthConfig(participants=200, days=180, seed=4, drift="population", drift_start_day=90), tmp_path)
    o = pd.read_parquet(r.oracle_path)
    late = o["date"] >= pd.Timestamp(r.drift_start) + pd.Timedelta(days=14)
    assert o.loc[late, "hazard"].mean() > 1.5 * o.loc[o["date"] < pd.Timestamp(r.drift_start), "hazard"].mean()


def test_seasonal_drift_shifts_sleep_and_mobility(tmp_path):
    r = synth(SynthConfig(participants=60, days=120, seed=2, drift="seasonal", drift_start_day=60), tmp_path)
    f = pd.read_parquet(r.features_path)
    before, after = (
        f[f["date"] < pd.Timestamp(r.drift_start)],
        f[f["date"] >= pd.Timestamp(r.drift_start) + pd.Timedelta(days=30)],
    )
    assert after["sleep_duration_h"].mean() > before["sleep_duration_h"].mean() + 0.3
    assert after["distance_km"].mean() < 0.85 * before["distance_km"].mean()


def test_signature_change_decouples_signals_from_events_without_moving_them(tmp_path):
    r = synth(SynthConfig(participants=300, days=240, seed=3, drift="signature-change", drift_start_day=120), tmp_path)
    meta = json.loads((tmp_path / "cohort.json").read_text())
    assert meta["drift"] == "signature-change" and meta["drift_start"] == str(r.drift_start)
    data = load_validated(r.features_path, r.outcomes_path)
    ws = build_windows(data.features, data.outcomes, WindowConfig(lookback=28))
    late = ws.end_date >= np.datetime64(r.drift_start) + np.timedelta64(28, "D")
    early = ws.end_date < np.datetime64(r.drift_start)
    score = deviation_score(ws.values(), ws.panel.features)
    before = roc_auc_score(ws.label[early], score[early])
    after = roc_auc_score(ws.label[late], score[late])
    assert before > 0.62 and after < 0.58, (before, after)
    f = data.features
    when = f["date"] >= pd.Timestamp(r.drift_start)
    # The population's signals look the same: no input drift to warn anyone.
    assert abs(f.loc[when, "steps"].mean() / f.loc[~when, "steps"].mean() - 1) < 0.05


def test_a_bipolar_cohort_has_manic_and_depressive_prodromes(tmp_path):
    """Before events, activity moves both ways in a bipolar cohort (manic weeks up, depressive down) and only down in
    the default cohort; the default cohort is the same as before the option existed."""
    moves = {}
    for condition in ("depression", "bipolar"):
        r = synth(SynthConfig(participants=150, days=240, seed=8, condition=condition), tmp_path / condition)
        data = load_validated(r.features_path, r.outcomes_path)
        ws = build_windows(data.features, data.outcomes, WindowConfig(lookback=28, horizon=7))
        values = ws.values()[ws.label == 1]
        steps, sleep = (ws.panel.features.index(f) for f in ("steps", "sleep_duration_h"))
        change = np.nanmean(values[:, -7:, steps], axis=1) - np.nanmean(values[:, :14, steps], axis=1)
        sleep_change = np.nanmean(values[:, -7:, sleep], axis=1) - np.nanmean(values[:, :14, sleep], axis=1)
        moves[condition] = ((change > 1500).mean(), (change < -1500).mean(), (sleep_change > 0.5).mean())
    # Manic weeks: many more windows before an event with clearly more steps; bipolar depression: longer sleep.
    assert moves["bipolar"][0] > 2.5 * moves["depression"][0] and moves["bipolar"][1] > 0.15, moves
    assert moves["bipolar"][2] > 2 * moves["depression"][2], moves
    assert moves["depression"][1] > 0.3, moves
    plain = pd.read_parquet(synth(SynthConfig(participants=20, days=60, seed=5), tmp_path / "plain").features_path)
    again = pd.read_parquet(
        synth(SynthConfig(participants=20, days=60, seed=5, condition="depression"), tmp_path / "d").features_path
    )
    pd.testing.assert_frame_equal(plain, again)
