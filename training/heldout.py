"""A trained model on a cohort it never saw: calibration where it alerts, every source profile, the risk interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from earlywarn.data.ingest import load_grid
from earlywarn.data.oracle import oracle_for, oracle_scores
from earlywarn.data.windows import build_windows
from earlywarn.training.bundle import ModelBundle, _days_missing
from earlywarn.training.evaluate import band_calibration, interval_metrics
from earlywarn.training.metrics import calibration_slope_intercept, expected_calibration_error

CHECK_WINDOWS = 40_000  # a seeded sample: band gaps to about ±0.01, coverage per cell to about ±0.01


def check_cohort(
    bundle: ModelBundle, features: Path, outcomes: Path, seed: int = 0, cap: int = CHECK_WINDOWS, reps: int = 200
) -> dict[str, float]:
    """Flat metrics of `bundle` on every window of a cohort (at most `cap`, seeded): discrimination and calibration
    (per band with participant-bootstrap intervals), each source profile's calibration in the large, slope and high
    share, and where the cohort has an oracle for the model's horizon, the interval's coverage of the true risk
    overall, per band and per missing-days class."""
    data = load_grid(features, outcomes, pad=bundle.window.lookback - 1)
    windows = build_windows(data.panel, data.outcomes, bundle.window, data.mode)
    if len(windows) > cap:
        windows = windows.subset(np.sort(np.random.default_rng(seed).choice(len(windows), cap, replace=False)))
    y = windows.label.astype(int)
    history = windows.history(None, bundle.input_days)
    made = bundle.assess(history)
    slope, intercept = calibration_slope_intercept(y, made.risk)
    out = {
        "windows": float(len(y)),
        "participants": float(len(np.unique(windows.participant))),
        "auroc": float(roc_auc_score(y, made.risk)),
        "ece": expected_calibration_error(y, made.risk),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }
    people = windows.participant_id
    out |= band_calibration(people, y, made.risk, bundle.bands.high, bundle.bands.elevated, reps, seed)
    oracle_path = features.parent / "oracle.parquet"
    oracle = oracle_for(pd.read_parquet(oracle_path), windows) if oracle_path.exists() else None
    if oracle is not None:
        truth = oracle_scores(oracle, windows)
        out["oracle_auroc"] = float(roc_auc_score(y, truth))
        band = bundle.bands.assign(made.risk)
        out |= interval_metrics(made.low, made.high, _days_missing(history, bundle.window.lookback), truth, band)
    for sources, logits, keys in bundle.profile_scores(history):
        risk = bundle.calibration(logits, keys)
        key = "profile_" + "_and_".join(sources)
        out[f"{key}_calibration_in_the_large"] = float(risk.mean() - y.mean())
        out[f"{key}_calibration_slope"] = calibration_slope_intercept(y, risk)[0]
        out[f"{key}_high_share"] = float((risk >= bundle.bands.high).mean())
        out[f"{key}_auroc"] = float(roc_auc_score(y, risk))
    return out
