"""The synthetic cohort's oracle: each window's true risk of an event within the horizon, and its AUROC on any windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.panel import day_number
from earlywarn.data.windows import WindowSet


class OracleHorizonError(ValueError):
    """The oracle was generated for another horizon than the windows look ahead."""


def oracle_horizon(oracle: pd.DataFrame) -> int:
    """The horizon the oracle's `true_risk` looks ahead (`earlywarn data synth --horizon`)."""
    if "true_risk" not in oracle.columns:
        raise OracleHorizonError("this oracle.parquet has no true_risk column (made before it existed); run data synth again")
    return int(oracle["horizon"].iloc[0])


def oracle_scores(oracle: pd.DataFrame, windows: WindowSet) -> np.ndarray:
    """P(event in (t, t+H] | the participant's latent state at the end of day t), as the generator computed it for
    each window's last day: the best any model can do, and never informed by what happened after t."""
    if oracle_horizon(oracle) != windows.cfg.horizon:
        raise OracleHorizonError(
            f"the oracle looks {oracle_horizon(oracle)} days ahead and the windows {windows.cfg.horizon}; "
            "generate the cohort with the windows' horizon (data synth --horizon)"
        )
    panel = windows.panel
    codes = pd.Series(np.arange(len(panel.participants)), index=panel.participants)
    pidx = oracle[PARTICIPANT].map(codes).to_numpy()
    known = ~pd.isna(pidx)
    rows = panel.rows_for(pidx[known].astype(np.int64), day_number(oracle[DATE][known]))
    by_row = np.full(panel.n_rows, np.nan)
    inside = rows >= 0
    by_row[rows[inside]] = oracle["true_risk"].to_numpy(np.float64)[known][inside]
    return by_row[windows.end_row]


def oracle_for(oracle: pd.DataFrame | None, windows: WindowSet) -> pd.DataFrame | None:
    """The oracle when it answers for these windows' horizon, else None (so metrics against it are left out)."""
    if oracle is None:
        return None
    try:
        return oracle if oracle_horizon(oracle) == windows.cfg.horizon else None
    except OracleHorizonError:
        return None


def oracle_auroc(oracle: pd.DataFrame, windows: WindowSet) -> float:
    """AUROC the oracle reaches on these windows (NaN when they hold only one class)."""
    if len(np.unique(windows.label)) < 2:
        return float("nan")
    return float(roc_auc_score(windows.label, oracle_scores(oracle, windows)))
