"""Model-input summaries of windows: what the prediction log and the reference sample keep for drift monitoring."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

MISSING_SUFFIX = "__missing"


def _arrays(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    observed = ~np.isnan(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=1)
    return means, 1.0 - observed.mean(axis=1), observed.any(axis=2).sum(axis=1)


def summary_columns(features: list[str]) -> list[str]:
    return [*features, *(f + MISSING_SUFFIX for f in features), "days_observed"]


def window_summary(values: np.ndarray, features: list[str]) -> pd.DataFrame:
    """[B, L, F] windows -> one row each: per-signal mean over observed days, per-signal missing share, days observed."""
    means, missing, days = _arrays(values)
    cols: dict[str, np.ndarray] = {f: means[:, j].astype(np.float32) for j, f in enumerate(features)}
    cols.update({f + MISSING_SUFFIX: missing[:, j].astype(np.float32) for j, f in enumerate(features)})
    cols["days_observed"] = days.astype(np.int16)
    return pd.DataFrame(cols)


def summary_records(values: np.ndarray, features: list[str]) -> list[dict[str, Any]]:
    """The same summaries as JSON-ready dicts (NaN as None), without building a DataFrame on the serving path."""
    means, missing, days = _arrays(values)
    names = summary_columns(features)
    rows = np.concatenate([means, missing, days[:, None]], axis=1).round(4)
    return [{k: (None if v != v else float(v)) for k, v in zip(names, row, strict=True)} for row in rows.tolist()]
