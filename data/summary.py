"""Model-input summaries of windows: what the prediction log and the reference sample keep for drift monitoring."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MISSING_SUFFIX = "__missing"


def window_summary(values: np.ndarray, features: list[str]) -> pd.DataFrame:
    """[B, L, F] windows -> one row each: per-signal mean over observed days, per-signal missing share, days observed."""
    observed = ~np.isnan(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=1)
    cols: dict[str, np.ndarray] = {f: means[:, j].astype(np.float32) for j, f in enumerate(features)}
    missing = 1.0 - observed.mean(axis=1)
    cols.update({f + MISSING_SUFFIX: missing[:, j].astype(np.float32) for j, f in enumerate(features)})
    cols["days_observed"] = observed.any(axis=2).sum(axis=1).astype(np.int16)
    return pd.DataFrame(cols)
