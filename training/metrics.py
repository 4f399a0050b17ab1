"""The primitive metrics evaluations build on: AUROC, calibration error, slope, intercept, net benefit, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    roc_auc_score,
)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-count bins (equal-width bins are almost empty above a low prevalence)."""
    order = np.argsort(p)
    chunks = np.array_split(order, bins)
    return float(sum(len(c) * abs(p[c].mean() - y[c].mean()) for c in chunks if len(c)) / len(p))


def safe_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    return float(roc_auc_score(y, p, sample_weight=w)) if len(np.unique(y)) == 2 else float("nan")


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, groups: np.ndarray, reps: int = 200, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% intervals for AUROC and AUPRC, resampling participants (not windows) with replacement."""
    codes, uniq = pd.factorize(groups)
    rng = np.random.default_rng(seed)
    stats: dict[str, list[float]] = {"auroc": [], "auprc": []}
    for _ in range(reps):
        weight = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[codes].astype(float)
        keep = weight > 0
        if len(np.unique(y[keep])) < 2:
            continue
        stats["auroc"].append(safe_auc(y[keep], p[keep], weight[keep]))
        stats["auprc"].append(float(average_precision_score(y[keep], p[keep], sample_weight=weight[keep])))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if v else (np.nan, np.nan) for k, v in stats.items()}


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Decision-curve net benefit of acting on everyone with risk >= t: TP/n - FP/n * t/(1-t), for each t."""
    n = max(len(y), 1)
    flagged = p[None, :] >= thresholds[:, None]
    tp = (flagged & (y[None, :] == 1)).sum(axis=1)
    fp = (flagged & (y[None, :] == 0)).sum(axis=1)
    return tp / n - fp / n * thresholds / (1 - thresholds)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic regression of the outcome on the logit of the risk; 1 is ideal, < 1 means risks are
    too extreme) and calibration-in-the-large (the intercept with the slope fixed at 1; 0 is ideal)."""
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    from sklearn.linear_model import LogisticRegression

    lp = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
    slope = float(LogisticRegression(C=1e6).fit(lp.reshape(-1, 1), y).coef_[0, 0])
    a = 0.0
    for _ in range(50):  # Newton's method for the intercept with the logit as an offset
        q = 1 / (1 + np.exp(-(lp + a)))
        step = (y - q).sum() / max((q * (1 - q)).sum(), 1e-12)
        a += step
        if abs(step) < 1e-9:
            break
    return slope, float(a)


def weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    keep = w > 0
    return safe_auc(y[keep], p[keep], w[keep].astype(float)) if keep.any() else float("nan")


def percentile_interval(draws: np.ndarray) -> tuple[float, float]:
    d = draws[np.isfinite(draws)]
    return (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) if len(d) else (float("nan"), float("nan"))
