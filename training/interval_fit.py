"""Fitting the risk interval's parts: the last layer's clustered covariance on training windows, then the conformal
scales on calibration windows whose true risk is known (see uncertainty.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from earlywarn.data.oracle import oracle_scores
from earlywarn.data.windows import WindowSet
from earlywarn.training.bundle import ModelBundle, _days_missing, combination_inputs
from earlywarn.training.uncertainty import Interval, clustered_covariance

COVARIANCE_WINDOWS = 50_000  # training windows the covariance is estimated on (seeded sample)
# Calibration windows the conformal scales are fitted on: band x missing-days cells need hundreds each (the high band
# with 1-6 days missing is about 0.5% of windows), and 5,000 left most cells to fall back on their band's scale.
INTERVAL_WINDOWS = 40_000


def _sample(windows: WindowSet, cap: int, seed: int) -> WindowSet:
    if len(windows) <= cap:
        return windows
    return windows.subset(np.sort(np.random.default_rng(seed).choice(len(windows), cap, replace=False)))


@torch.inference_mode()
def term_covariance(bundle: ModelBundle, train: WindowSet, seed: int = 0) -> torch.Tensor:
    """The participant-clustered covariance of how the network combines the signals' terms: the logistic regression of
    the outcome on [1, each signal's scaled term] at its fit (the network's own, with weight 1 on every term)."""
    sample = _sample(train, COVARIANCE_WINDOWS, seed)
    phi, logits = [], []
    for start in range(0, len(sample), 4096):
        x = torch.from_numpy(bundle.preprocessor.transform(sample.history(slice(start, start + 4096), bundle.input_days)))
        terms = bundle.net.terms(x)
        offset, gain = bundle.net.scale(x)
        phi.append(combination_inputs(terms.double().numpy(), gain.double().numpy()))
        logits.append((offset + gain * terms.sum(-1)).double().numpy())
    p = 1.0 / (1.0 + np.exp(-np.concatenate(logits)))
    covariance = clustered_covariance(np.concatenate(phi), p, sample.label.astype(np.float64), sample.participant)
    return torch.from_numpy(covariance).float()


def fit_interval(bundle: ModelBundle, windows: WindowSet, oracle: pd.DataFrame | None, seed: int = 0) -> Interval:
    """Conformal scales against the true risk of these (never-trained-on) windows where the oracle knows it; else the
    normal-theory interval, marked unchecked."""
    if oracle is None or len(windows) == 0:
        return Interval()
    sample = _sample(windows, INTERVAL_WINDOWS, seed)
    history = sample.history(None, bundle.input_days)
    made = bundle.assess(history)
    band = bundle.bands.assign(made.risk)
    days = _days_missing(history, bundle.window.lookback)
    return Interval.fit(made.log_odds, made.sd, band, days, oracle_scores(oracle, sample))
