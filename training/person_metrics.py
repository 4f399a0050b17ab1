"""Person-level metrics for case-control data: one score per person, a threshold, and the decisions it makes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
    matthews_corrcoef,
)

from earlywarn.data.contract import PARTICIPANT
from earlywarn.training.metrics import (
    safe_auc,
)


def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The risk cut that maximises sensitivity + specificity (balanced accuracy) on tuning data; 0.5 if one class."""
    if len(np.unique(y)) < 2:
        return 0.5
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    return float(min(cuts[best], 1.0))


def person_scores(frame: pd.DataFrame, risk: np.ndarray) -> pd.DataFrame:
    """One row per participant: the mean of their day scores and whether any of their windows is positive."""
    per = pd.DataFrame({PARTICIPANT: frame[PARTICIPANT].to_numpy(), "risk": risk, "label": frame["label"].to_numpy()})
    return per.groupby(PARTICIPANT).agg(risk=("risk", "mean"), label=("label", "max"))


def decision_metrics(y: np.ndarray, decided: np.ndarray, prefix: str) -> dict[str, float]:
    """MCC and balanced accuracy of yes/no decisions, under `prefix`."""
    two = len(np.unique(y)) == 2
    return {
        f"{prefix}mcc": float(matthews_corrcoef(y, decided)),
        f"{prefix}balanced_accuracy": float(balanced_accuracy_score(y, decided)) if two else float("nan"),
    }


def person_metrics(
    frame: pd.DataFrame, risk: np.ndarray, threshold: pd.Series, reps: int = 200, seed: int = 0
) -> dict[str, float]:
    """Person-level questions (is this person a case?): AUROC of the mean day score with a participant-bootstrap
    interval, and MCC / balanced accuracy at each person's fold threshold (`threshold`, indexed by participant)."""
    per = person_scores(frame, risk)
    y, p = per["label"].to_numpy(int), per["risk"].to_numpy(float)
    out = {"person_n": float(len(per)), "person_prevalence": float(y.mean()), "person_auroc": safe_auc(y, p)}
    decided = p >= threshold.reindex(per.index).to_numpy(float)
    out |= decision_metrics(y, decided, "person_")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        pick = rng.integers(0, len(y), len(y))
        if len(np.unique(y[pick])) == 2:
            draws.append(safe_auc(y[pick], p[pick]))
    out["person_auroc_ci_low"], out["person_auroc_ci_high"] = (
        (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else (np.nan, np.nan)
    )
    return out
