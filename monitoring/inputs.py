"""What a monitoring run judges: the champion's reference sample, logged predictions with their matured labels, band quality."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from earlywarn.monitoring.rules import Thresholds
from earlywarn.training.calibration import BANDS
from earlywarn.training.metrics import expected_calibration_error


def champion_reference() -> pd.DataFrame:
    """The reference sample logged with the champion's training run."""
    from earlywarn.training import tracking

    tracking.configure()
    info = tracking.version_info(tracking.CHAMPION)
    if info is None:
        raise LookupError("no champion registered, so there is no reference to compare with")
    return pd.read_parquet(tracking.download(info.run_id, "reference.parquet"))


def matured_labels(preds: pd.DataFrame, outcomes: pd.DataFrame, horizon: int, now: dt.datetime) -> pd.DataFrame:
    """Predictions whose horizon has passed, labelled 1 when the partner reported an event in (end, end + horizon]."""
    end = pd.to_datetime(preds["window_end"])
    matured = preds[end + pd.Timedelta(days=horizon) <= pd.Timestamp(now.date())].copy()
    if matured.empty:
        return matured.assign(label=pd.Series(dtype=int))
    ev = (
        outcomes[["partner", "participant_key", "date"]].copy()
        if not outcomes.empty
        else pd.DataFrame(columns=["partner", "participant_key", "date"])
    )
    ev["date"] = pd.to_datetime(ev["date"])
    matured["_end"] = pd.to_datetime(matured["window_end"])
    joined = matured[["record_id", "partner", "participant_key", "_end"]].merge(ev, on=["partner", "participant_key"], how="left")
    hit = (joined["date"] > joined["_end"]) & (joined["date"] <= joined["_end"] + pd.Timedelta(days=horizon))
    positive = set(joined.loc[hit, "record_id"])
    matured["label"] = matured["record_id"].isin(positive).astype(int)
    return matured.drop(columns="_end")


def scored_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    out = frame[frame["status"] == "scored"].copy()
    for col in columns:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def people(frame: pd.DataFrame) -> int:
    return 0 if frame.empty else int(frame[["partner", "participant_key"]].drop_duplicates().shape[0])


def band_quality(matured: pd.DataFrame, t: Thresholds) -> dict[str, float]:
    """Precision and recall of the high band, calibration overall, and per band the mean predicted risk beside the
    observed event rate (`band_<name>_mean_risk`, `_event_rate`, `_windows`, `_gap`; the gap only with
    `min_band_windows` matured predictions in the band), on matured predictions."""
    from sklearn.metrics import precision_score, recall_score

    label = matured["label"].to_numpy(int)
    high = (matured["band"] == "high").to_numpy()
    risk = matured["risk"].to_numpy(float)
    out = {
        "high_band_precision": float(precision_score(label, high, zero_division=0)),
        "high_band_recall": float(recall_score(label, high, zero_division=0)),
        "mean_risk_matured": float(risk.mean()),
        "calibration_gap": float(abs(risk.mean() - label.mean())),
        "ece": expected_calibration_error(label, risk),  # the same ECE the model card reports
    }
    for band in BANDS:
        inside = (matured["band"] == band).to_numpy()
        key = f"band_{band}"
        out[f"{key}_windows"] = float(inside.sum())
        out[f"{key}_mean_risk"] = float(risk[inside].mean()) if inside.any() else float("nan")
        out[f"{key}_event_rate"] = float(label[inside].mean()) if inside.any() else float("nan")
        judged = inside.sum() >= t.min_band_windows
        out[f"{key}_gap"] = abs(out[f"{key}_mean_risk"] - out[f"{key}_event_rate"]) if judged else float("nan")
    return out
