"""Model-input summaries of windows: what the prediction log and the reference sample keep for drift monitoring."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

MISSING_SUFFIX = "__missing"


# Signal means and missing shares cover the window's last week: a week is weekday-neutral (a daily monitoring job
# would otherwise see weekends as drift), and consecutive daily requests overlap far less than whole windows do,
# so a change in the input stream shows within days rather than after a full lookback.
RECENT_DAYS = 7


def _arrays(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    recent = values[:, -RECENT_DAYS:, :]
    observed = ~np.isnan(recent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(recent, axis=1)
    return means, 1.0 - observed.mean(axis=1), (~np.isnan(values)).any(axis=2).sum(axis=1)


def summary_columns(features: list[str]) -> list[str]:
    return [*features, *(f + MISSING_SUFFIX for f in features), "days_observed"]


def window_summary(values: np.ndarray, features: list[str]) -> pd.DataFrame:
    """[B, L, F] windows -> one row each: per-signal mean and missing share over the last week, days observed in the window."""
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


def window_inputs(values: np.ndarray) -> np.ndarray:
    """[B, L, F] windows rounded for the prediction log, which keeps them so retraining can rebuild each participant's
    days from what the service actually scored. Left as an array: the spool and the store write JSON with orjson,
    which writes numpy arrays directly and a missing day (NaN) as null; nested Python lists took half the time of a
    1,000-participant scoring pass to build."""
    return np.round(values.astype(np.float64), 4)
