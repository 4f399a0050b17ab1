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
    roc_auc_score,
)

from earlywarn.data.contract import DATE, PARTICIPANT


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-count bins (equal-width bins are almost empty above a low prevalence)."""
    order = np.argsort(p)
    chunks = np.array_split(order, bins)
    return float(sum(len(c) * abs(p[c].mean() - y[c].mean()) for c in chunks if len(c)) / len(p))


def _safe_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
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
        stats["auroc"].append(_safe_auc(y[keep], p[keep], weight[keep]))
        stats["auprc"].append(float(average_precision_score(y[keep], p[keep], sample_weight=weight[keep])))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if v else (np.nan, np.nan) for k, v in stats.items()}


def alert_onsets(frame: pd.DataFrame, high: np.ndarray) -> np.ndarray:
    """An alert is a high-band window whose participant was not high on the previous day (a run of high days is one alert)."""
    order = np.lexsort((frame[DATE].to_numpy(), frame[PARTICIPANT].to_numpy()))
    pid, day = frame[PARTICIPANT].to_numpy()[order], frame[DATE].to_numpy().astype("datetime64[D]").astype(np.int64)[order]
    h = high[order]
    prev_same = np.r_[False, (pid[1:] == pid[:-1]) & (day[1:] - day[:-1] == 1)]
    prev_high = np.r_[False, h[:-1]]
    onset = np.zeros(len(h), bool)
    onset[order] = h & ~(prev_same & prev_high)
    return onset


def median_lead_time(frame: pd.DataFrame, high: np.ndarray, events: pd.DataFrame | None, horizon: int) -> float:
    """Median days from the first high alert within the horizon before an event to the event (events with an alert only)."""
    if events is None or events.empty:
        return float("nan")
    alerts = frame.loc[high, [PARTICIPANT, DATE]]
    if alerts.empty:
        return float("nan")
    merged = events[[PARTICIPANT, DATE]].rename(columns={DATE: "event_date"}).merge(alerts, on=PARTICIPANT)
    lead = (merged["event_date"] - merged[DATE]).dt.days
    merged = merged[(lead >= 1) & (lead <= horizon)].assign(lead=lead)
    if merged.empty:
        return float("nan")
    return float(merged.groupby([PARTICIPANT, "event_date"])["lead"].max().median())


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
) -> dict[str, float]:
    """A flat dict of numbers for metrics.json; `frame` has participant_id, date, label per window."""
    y = frame["label"].to_numpy().astype(int)
    p = np.asarray(risk, float)
    high = p >= high_threshold
    m: dict[str, float] = {
        "n_participants": float(frame[PARTICIPANT].nunique()),
        "n_windows": float(len(y)),
        "prevalence": float(y.mean()),
        "auroc": _safe_auc(y, p),
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
    m |= band_calibration(frame[PARTICIPANT].to_numpy(), y, p, high_threshold, elevated_threshold, bootstrap_reps, seed)
    ci = bootstrap_intervals(y, p, frame[PARTICIPANT].to_numpy(), bootstrap_reps, seed)
    for k, (lo, hi) in ci.items():
        m[f"{k}_ci_low"], m[f"{k}_ci_high"] = lo, hi
    if oracle_auroc is not None:
        m["oracle_auroc"] = float(oracle_auroc)
    if attributes is not None:
        m.update(subgroup_metrics(frame, y, p, attributes, bootstrap_reps, seed))
    return m


def _share(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def clinical_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    high_threshold: float | np.ndarray,
    elevated_threshold: float | np.ndarray | None,
    events: pd.DataFrame | None,
    horizon: int,
    months: float,
) -> dict[str, float]:
    """What a care team meets: PPV and NPV at each band's threshold, the share of events an alert came before,
    escalation episodes per 100 participant-months, calibration inside the high band, calibration slope and
    intercept, and net benefit at the band thresholds."""
    out: dict[str, float] = {}
    cuts = {"high": high_threshold} | ({"elevated": elevated_threshold} if elevated_threshold is not None else {})
    for band, cut in cuts.items():
        flagged = p >= cut
        out[f"ppv_{band}"] = _share((flagged & (y == 1)).sum(), flagged.sum())
        out[f"npv_{band}"] = _share((~flagged & (y == 0)).sum(), (~flagged).sum())
        out[f"net_benefit_{band}"] = float(np.mean(net_benefit(y, p, np.array([float(np.mean(cut))]))))
    high = p >= high_threshold
    out["calibration_slope"], out["calibration_intercept"] = calibration_slope_intercept(y, p)
    out["event_sensitivity"] = event_sensitivity(frame, high, events, horizon)
    episodes = escalation_episodes(frame, high)
    out["escalation_episodes_per_100_participant_months"] = 100 * episodes / months if months else float("nan")
    return out


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
        out[f"{key}_gap_ci_low"], out[f"{key}_gap_ci_high"] = _interval(np.asarray(gaps))
        out[f"{key}_windows"] = float(inside.sum())
    return out


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


def event_sensitivity(frame: pd.DataFrame, high: np.ndarray, events: pd.DataFrame | None, horizon: int) -> float:
    """The share of events (among those with a scored window in the horizon before them) that a high-band window
    came before, within the horizon."""
    if events is None or events.empty:
        return float("nan")
    scored = frame[[PARTICIPANT, DATE]].assign(high=high)
    pairs = events[[PARTICIPANT, DATE]].drop_duplicates().rename(columns={DATE: "event_date"}).merge(scored, on=PARTICIPANT)
    lead = (pairs["event_date"] - pairs[DATE]).dt.days
    before = pairs[(lead >= 1) & (lead <= horizon)]
    if before.empty:
        return float("nan")
    return float(before.groupby([PARTICIPANT, "event_date"])["high"].any().mean())


def escalation_episodes(frame: pd.DataFrame, high: np.ndarray) -> int:
    """Escalation episodes as the service opens them (data/episodes.py): a high window opens one unless the same
    participant had a high window within the CLOSE_AFTER_DAYS days before it."""
    from earlywarn.data.episodes import CLOSE_AFTER_DAYS

    days = frame.loc[high, [PARTICIPANT, DATE]].sort_values([PARTICIPANT, DATE])
    gap = days.groupby(PARTICIPANT)[DATE].diff().dt.days
    return int((gap.isna() | (gap > CLOSE_AFTER_DAYS)).sum())


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
            out[f"{key}_auroc"] = point[str(value)] = _safe_auc(y[idx], p[idx])
            out[f"{key}_ece"] = expected_calibration_error(y[idx], p[idx])
            draws[str(value)] = np.array([_weighted_auc(y[idx], p[idx], w[idx]) for w in weights])
            lo, hi = _interval(draws[str(value)])
            out[f"{key}_auroc_ci_low"], out[f"{key}_auroc_ci_high"] = lo, hi
        finite = {k: v for k, v in point.items() if np.isfinite(v)}
        if len(finite) >= 2:
            best, worst = max(finite, key=finite.__getitem__), min(finite, key=finite.__getitem__)
            out[f"subgroup_gap_{attr}"] = finite[best] - finite[worst]
            out[f"subgroup_gap_{attr}_min_participants"] = float(min(sizes[best], sizes[worst]))
            out[f"subgroup_gap_{attr}_ci_low"], out[f"subgroup_gap_{attr}_ci_high"] = _interval(draws[best] - draws[worst])
    return out


def _weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    keep = w > 0
    return _safe_auc(y[keep], p[keep], w[keep].astype(float)) if keep.any() else float("nan")


def _interval(draws: np.ndarray) -> tuple[float, float]:
    d = draws[np.isfinite(draws)]
    return (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) if len(d) else (float("nan"), float("nan"))


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
    out = {"person_n": float(len(per)), "person_prevalence": float(y.mean()), "person_auroc": _safe_auc(y, p)}
    decided = p >= threshold.reindex(per.index).to_numpy(float)
    out |= decision_metrics(y, decided, "person_")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        pick = rng.integers(0, len(y), len(y))
        if len(np.unique(y[pick])) == 2:
            draws.append(_safe_auc(y[pick], p[pick]))
    out["person_auroc_ci_low"], out["person_auroc_ci_high"] = (
        (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else (np.nan, np.nan)
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
