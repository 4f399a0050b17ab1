"""Evaluation of calibrated risks on held-out windows: discrimination, calibration, alerts, lead time, intervals, subgroups."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    matthews_corrcoef,
)

from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.episodes import Rules
from earlywarn.training.clinical_metrics import alert_onsets, clinical_metrics, median_lead_time
from earlywarn.training.episode_metrics import caught_events, episode_figures, judge_openings, openings
from earlywarn.training.metrics import (
    bootstrap_intervals,
    expected_calibration_error,
    percentile_interval,
    safe_auc,
    weighted_auc,
)


def evaluate(
    frame: pd.DataFrame,
    risk: np.ndarray,
    high_threshold: float | np.ndarray,
    horizon: int,
    events: pd.DataFrame | None = None,
    attributes: pd.DataFrame | None = None,
    oracle_auroc: float | None = None,
    bootstrap_reps: int = 200,
    seed: int = 0,
    elevated_threshold: float | np.ndarray | None = None,
    washout: int = 28,
) -> dict[str, float]:
    """A flat dict of numbers for metrics.json; `frame` has participant_id, date, label per window."""
    y = frame["label"].to_numpy().astype(int)
    p = np.asarray(risk, float)
    high = p >= high_threshold
    m: dict[str, float] = {
        "n_participants": float(frame[PARTICIPANT].nunique()),
        "n_windows": float(len(y)),
        "prevalence": float(y.mean()),
        "auroc": safe_auc(y, p),
        "auprc": float(average_precision_score(y, p)) if y.any() else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "high_threshold": float(np.mean(high_threshold)),
        "high_share": float(high.mean()),
    }
    tn, fp, fn, tp = confusion_matrix(y, high, labels=[0, 1]).ravel()
    m["sensitivity"] = float(tp / (tp + fn)) if tp + fn else float("nan")
    m["specificity"] = float(tn / (tn + fp)) if tn + fp else float("nan")
    m["balanced_accuracy"] = float(balanced_accuracy_score(y, high)) if len(np.unique(y)) == 2 else float("nan")
    m["mcc"] = float(matthews_corrcoef(y, high))
    span = frame.groupby(PARTICIPANT)[DATE].agg(["min", "max"])
    months = float(((span["max"] - span["min"]).dt.days + 1).sum()) / 30.0
    m["alerts_per_participant_month"] = float(alert_onsets(frame, high).sum() / months) if months else float("nan")
    m["median_lead_time_days"] = median_lead_time(frame, high, events, horizon)
    m |= clinical_metrics(frame, y, p, high_threshold, elevated_threshold, events, horizon, months)
    opened = openings(frame, p, high_threshold, Rules())  # the service's own episode rules, no feedback
    caught = caught_events(events, opened, frame, horizon)
    m |= episode_figures(judge_openings(opened, events, horizon, washout), caught, months, bootstrap_reps, seed)
    m |= band_calibration(frame[PARTICIPANT].to_numpy(), y, p, high_threshold, elevated_threshold, bootstrap_reps, seed)
    ci = bootstrap_intervals(y, p, frame[PARTICIPANT].to_numpy(), bootstrap_reps, seed)
    for k, (lo, hi) in ci.items():
        m[f"{k}_ci_low"], m[f"{k}_ci_high"] = lo, hi
    if oracle_auroc is not None:
        m["oracle_auroc"] = float(oracle_auroc)
    if attributes is not None:
        m.update(subgroup_metrics(frame, y, p, attributes, bootstrap_reps, seed))
    return m


def band_calibration(
    people: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    high_threshold: float | np.ndarray,
    elevated_threshold: float | np.ndarray | None,
    reps: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Calibration where alerts are read: per band (high; elevated below high), the mean shown risk, the observed event
    rate, their absolute gap, and a participant-bootstrap 95% interval of the signed gap (shown minus observed)."""
    bands = {"high": p >= high_threshold}
    if elevated_threshold is not None:
        bands["elevated"] = (p >= elevated_threshold) & ~bands["high"]
    codes, people_index = pd.factorize(people)
    rng = np.random.default_rng(seed)
    draws = [
        np.bincount(rng.integers(0, len(people_index), len(people_index)), minlength=len(people_index))[codes]
        for _ in range(reps)
    ]
    out: dict[str, float] = {}
    for name, inside in bands.items():
        key = f"{name}_band"
        if not inside.any():
            out |= {
                f"{key}_{k}": float("nan") for k in ("mean_risk", "event_rate", "calibration_gap", "gap_ci_low", "gap_ci_high")
            }
            continue
        gaps = [float(np.average(p[inside] - y[inside], weights=w[inside])) for w in draws if w[inside].sum() > 0]
        out[f"{key}_mean_risk"], out[f"{key}_event_rate"] = float(p[inside].mean()), float(y[inside].mean())
        out[f"{key}_calibration_gap"] = abs(out[f"{key}_mean_risk"] - out[f"{key}_event_rate"])
        out[f"{key}_gap_ci_low"], out[f"{key}_gap_ci_high"] = percentile_interval(np.asarray(gaps))
        out[f"{key}_windows"] = float(inside.sum())
    return out


def subgroup_metrics(
    frame: pd.DataFrame, y: np.ndarray, p: np.ndarray, attributes: pd.DataFrame, reps: int = 200, seed: int = 0
) -> dict[str, float]:
    """Per value of each participant attribute: size, AUROC with a participant-bootstrap 95% interval, ECE (keys
    subgroup_<attr>_<value>_<metric>); per attribute, the gap between its best and worst AUROC with its interval
    (subgroup_gap_<attr>, _ci_low, _ci_high, _min_participants: the smaller group's people), which the promotion
    gate reads."""
    out: dict[str, float] = {}
    joined = frame[[PARTICIPANT]].merge(attributes, on=PARTICIPANT, how="left")
    codes, people = pd.factorize(frame[PARTICIPANT])
    rng = np.random.default_rng(seed)
    weights = [np.bincount(rng.integers(0, len(people), len(people)), minlength=len(people))[codes] for _ in range(reps)]
    for attr in [c for c in attributes.columns if c != PARTICIPANT]:
        point: dict[str, float] = {}
        draws: dict[str, np.ndarray] = {}
        sizes: dict[str, int] = {}
        for value, idx in joined.groupby(attr).indices.items():
            key = f"subgroup_{attr}_{value}"
            out[f"{key}_n_windows"] = float(len(idx))
            out[f"{key}_n_participants"] = float(sizes.setdefault(str(value), len(np.unique(codes[idx]))))
            out[f"{key}_auroc"] = point[str(value)] = safe_auc(y[idx], p[idx])
            out[f"{key}_ece"] = expected_calibration_error(y[idx], p[idx])
            draws[str(value)] = np.array([weighted_auc(y[idx], p[idx], w[idx]) for w in weights])
            lo, hi = percentile_interval(draws[str(value)])
            out[f"{key}_auroc_ci_low"], out[f"{key}_auroc_ci_high"] = lo, hi
        finite = {k: v for k, v in point.items() if np.isfinite(v)}
        if len(finite) >= 2:
            best, worst = max(finite, key=finite.__getitem__), min(finite, key=finite.__getitem__)
            out[f"subgroup_gap_{attr}"] = finite[best] - finite[worst]
            out[f"subgroup_gap_{attr}_min_participants"] = float(min(sizes[best], sizes[worst]))
            out[f"subgroup_gap_{attr}_ci_low"], out[f"subgroup_gap_{attr}_ci_high"] = percentile_interval(
                draws[best] - draws[worst]
            )
    return out


MISSING_BUCKETS = {"missing_0": (0, 0), "missing_1_6": (1, 6), "missing_7plus": (7, 10**6)}


def interval_metrics(
    low: np.ndarray,
    high: np.ndarray,
    days_missing: np.ndarray,
    true_risk: np.ndarray | None,
    band: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean width of the risk intervals overall, by days missing from the window and by band; where the true risk is
    known, the share of windows whose interval holds it (coverage), overall, per missing-days class and per band."""
    width = high - low
    out = {"interval_width_mean": float(width.mean()) if len(width) else float("nan")}
    inside = (true_risk >= low) & (true_risk <= high) if true_risk is not None else None
    if inside is not None:
        out["interval_coverage"] = float(inside.mean()) if len(inside) else float("nan")
    groups = {name: (days_missing >= lo) & (days_missing <= hi) for name, (lo, hi) in MISSING_BUCKETS.items()}
    if band is not None:
        groups |= {f"band_{name}": band == i for i, name in enumerate(("low", "elevated", "high"))}
    for name, pick in groups.items():
        out[f"interval_n_{name}"] = float(pick.sum())
        out[f"interval_width_mean_{name}"] = float(width[pick].mean()) if pick.any() else float("nan")
        if inside is not None:
            out[f"interval_coverage_{name}"] = float(inside[pick].mean()) if pick.any() else float("nan")
    return out
