"""A transparent reference score for synthetic-cohort tests: how far recent days sit from the person's own earlier days."""

from __future__ import annotations

import warnings

import numpy as np

from earlywarn.data.contract import SIGNALS


def baseline_deviation(values: np.ndarray, recent_days: int = 7, min_days: int = 3) -> np.ndarray:
    """[B, L, F] windows -> [B, F] z-scores of the recent mean against the earlier days' mean and spread (NaN if unknown)."""
    earlier, recent = values[:, :-recent_days], values[:, -recent_days:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(earlier, axis=1)
        sd = np.nanstd(earlier, axis=1)
        now = np.nanmean(recent, axis=1)
    enough = ((~np.isnan(earlier)).sum(axis=1) >= min_days) & ((~np.isnan(recent)).sum(axis=1) >= 1)
    z = (now - mu) / np.maximum(sd, 1e-6 + 0.05 * np.abs(mu))
    return np.where(enough, z, np.nan).astype(np.float32)


def deviation_score(values: np.ndarray, features: list[str], recent_days: int = 7) -> np.ndarray:
    """A transparent risk score: mean 'worse-direction' deviation over standard signals with a known direction."""
    z = baseline_deviation(values, recent_days)
    direction = np.array([SIGNALS[f].worse if f in SIGNALS else 0 for f in features], np.float32)
    signed = z * direction[None, :]
    signed[:, direction == 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.nanmean(signed, axis=1)
    return np.nan_to_num(score, nan=0.0)
