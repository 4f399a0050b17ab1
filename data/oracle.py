"""The synthetic cohort's oracle: the true probability of an event within the horizon, and its AUROC on any windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from data.contract import DATE, PARTICIPANT
from data.windows import WindowSet, day_number


def oracle_scores(oracle: pd.DataFrame, windows: WindowSet) -> np.ndarray:
    """P(event in (t, t+H]) from the true daily hazard path: an upper bound no model that sees only the past can beat."""
    panel = windows.panel
    codes = pd.Series(np.arange(len(panel.participants)), index=panel.participants)
    pidx = oracle[PARTICIPANT].map(codes).to_numpy()
    known = ~pd.isna(pidx)
    pidx = pidx[known].astype(np.int64)
    rows = panel.rows_for(pidx, day_number(oracle[DATE][known]))
    log_survive = np.zeros(panel.n_rows + 1, np.float64)
    hazard = np.clip(oracle["hazard"].to_numpy(np.float64)[known], 0.0, 1 - 1e-12)
    inside = rows >= 0
    log_survive[rows[inside] + 1] = np.log1p(-hazard[inside])
    cum = np.cumsum(log_survive)
    h = windows.cfg.horizon
    participant_end = panel.offsets[windows.participant + 1]
    stop = np.minimum(windows.end_row + h, participant_end - 1)
    return 1.0 - np.exp(cum[stop + 1] - cum[windows.end_row + 1])


def oracle_auroc(oracle: pd.DataFrame, windows: WindowSet) -> float:
    """AUROC the oracle reaches on these windows (NaN when they hold only one class)."""
    if len(np.unique(windows.label)) < 2:
        return float("nan")
    return float(roc_auc_score(windows.label, oracle_scores(oracle, windows)))
