"""A partner's prospective validation: the go-live criteria and the figures its own silent-mode traffic shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from earlywarn.data import store
from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.episodes import Rules
from earlywarn.monitoring.inputs import matured_labels, scored_rows
from earlywarn.training import tracking
from earlywarn.training import validation_report as report
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.criteria import Check, Criteria, CriteriaError, judge
from earlywarn.training.episode_metrics import openings
from earlywarn.training.evaluate import evaluate
from earlywarn.training.metrics import bootstrap_intervals, safe_auc

__all__ = ["Check", "Criteria", "CriteriaError", "full_report", "judge", "measure", "report_for"]


def measure(engine: Engine, partner: str, now: dt.datetime, horizon: int = 14, seed: int = 0) -> dict[str, float]:
    """The partner's figures from the store: people and events, AUROC with its interval and the high band's gap on
    predictions whose horizon has passed, and the alert load the episode rules give its scored days."""
    preds = scored_rows(store.read_predictions(engine, partner=partner), ["risk"])
    outcomes = store.read_outcomes(engine, partner=partner)
    out = {
        "people": float(preds["participant_key"].nunique()) if len(preds) else 0.0,
        "events": float(len(outcomes[["participant_key", "date"]].drop_duplicates())) if len(outcomes) else 0.0,
    }
    matured = matured_labels(preds, outcomes, horizon, now) if len(preds) else preds
    y = matured["label"].to_numpy(int) if len(matured) else np.array([], int)
    p = matured["risk"].to_numpy(float) if len(matured) else np.array([])
    out["matured_predictions"], out["auroc"] = float(len(y)), safe_auc(y, p) if len(set(y)) == 2 else float("nan")
    low, _ = (
        bootstrap_intervals(y, p, matured["participant_key"].to_numpy(), 200, seed)["auroc"]
        if len(set(y)) == 2
        else (np.nan, np.nan)
    )
    out["auroc_ci_low"] = float(low)
    high = (matured["band"] == "high").to_numpy() if len(matured) else np.array([], bool)
    out["high_band_gap"] = float(abs(p[high].mean() - y[high].mean())) if high.any() else float("nan")
    out["alerts_per_100_participant_months"] = _alert_load(preds)
    return out


def _alert_load(preds: pd.DataFrame) -> float:
    days = preds.drop_duplicates(["participant_key", "window_end"]) if len(preds) else preds
    if days.empty:
        return float("nan")
    frame = pd.DataFrame({PARTICIPANT: days["participant_key"], DATE: pd.to_datetime(days["window_end"])})
    high = (days["band"] == "high").to_numpy(float)
    return 100 * len(openings(frame, high, 0.5, Rules())) / (len(frame) / 30)


def _versions(versions: list[str]) -> dict[str, ModelBundle]:
    """The registered bundles that scored the predictions (their band thresholds and washout), where this registry has
    them."""
    tracking.configure()
    found = {}
    for version in versions:
        if tracking.version_info(version) is not None:
            found[version] = tracking.load_bundle(version)
    return found


def _frames(engine: Engine, partner: str, now: dt.datetime, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Matured predictions (with each version's thresholds) and the reported events, as `evaluate` reads them; and
    how many matured predictions were left out because their model version is not in this registry."""
    preds = scored_rows(store.read_predictions(engine, partner=partner), ["risk"])
    outcomes = store.read_outcomes(engine, partner=partner)
    events = (
        pd.DataFrame({PARTICIPANT: outcomes["participant_key"], DATE: pd.to_datetime(outcomes["date"])})
        if len(outcomes)
        else pd.DataFrame({PARTICIPANT: pd.Series(dtype=str), DATE: pd.Series(dtype="datetime64[ns]")})
    )
    matured = matured_labels(preds, outcomes, horizon, now) if len(preds) else preds.assign(label=pd.Series(dtype=int))
    bundles = _versions(sorted(set(matured["model_version"].astype(str)))) if len(matured) else {}
    known = matured[matured["model_version"].astype(str).isin(bundles)] if len(matured) else matured
    frame = pd.DataFrame(
        {PARTICIPANT: known["participant_key"], DATE: pd.to_datetime(known["window_end"]), "label": known["label"]}
    ).reset_index(drop=True)
    version = known["model_version"].astype(str).to_numpy() if len(known) else np.array([], str)
    for name in ("high", "elevated"):
        frame[name] = [getattr(bundles[v].bands, name) for v in version]
    frame["risk"] = known["risk"].to_numpy(float)
    frame["washout"] = [bundles[v].window.washout_days for v in version]
    return frame, events.drop_duplicates(), len(matured) - len(known)


def full_report(
    engine: Engine, partner: str, now: dt.datetime, horizon: int, folder: Path, criteria: dict[str, Any], seed: int = 0
) -> tuple[Path, list[Check]]:
    """The prospective validation report for one silent partner, with the same sections as `earlywarn evaluate`'s,
    measured on its own matured predictions against the events it reported, beside the recorded criteria."""
    checks = judge(Criteria(**criteria), measure(engine, partner, now, horizon, seed))
    frame, events, unknown = _frames(engine, partner, now, horizon)
    two_classes = frame["label"].nunique() == 2 if len(frame) else False
    risk = frame["risk"].to_numpy(float)
    metrics = (
        evaluate(frame, risk, frame["high"].to_numpy(), horizon, events, None, None, 200, seed,
                 frame["elevated"].to_numpy(), washout=int(frame["washout"].max()))
        if two_classes
        else {}
    )  # fmt: skip
    cohort = {
        "people": float(frame[PARTICIPANT].nunique()),
        "participant_days": float(len(frame[[PARTICIPANT, DATE]].drop_duplicates())),
        "events": float(len(events)),
        "windows": float(len(frame)),
        "prevalence": float(frame["label"].mean()) if len(frame) else float("nan"),
        "first_date": str(frame[DATE].min().date()) if len(frame) else "",
        "last_date": str(frame[DATE].max().date()) if len(frame) else "",
    }
    record: dict[str, Any] = {
        "title": f"{partner}: prospective validation in silent mode ({now:%Y-%m-%d})",
        "summary": "The partner's own people, scored live while nothing was shown; criteria recorded before silent mode "
        "began." + ("" if two_classes else " Too few matured outcomes of both kinds yet for the sections below."),
        "partner": partner,
        "time": now.isoformat(),
        "protocol": f"every scored prediction whose {horizon}-day horizon has passed, labelled by the events the partner "
        f"reported in it; bands as each model version drew them; participant-bootstrap 95% intervals (200 resamples); "
        f"episodes replayed through the service's episode rules; {unknown} matured predictions by model versions not "
        "in this registry left out",
        "sections": report.sections(metrics, cohort),
        "criteria": criteria,
        "checks": [asdict(c) for c in checks],
        "meets_criteria": all(c.met for c in checks),
    }
    thresholds = {k: float(frame[k].mean()) for k in ("high", "elevated")} if len(frame) else {}
    html, _ = report.write(folder / f"{now:%Y%m%dT%H%M%S}-{partner}-prospective", record, frame, risk, thresholds, events)
    return html, checks


def report_for(engine: Engine, partner: str, now: dt.datetime, horizon: int, folder: Path) -> str:
    """Judge a silent partner against the criteria recorded when its silent mode began; write the report; say so."""
    mode = store.current_mode(engine, partner)
    criteria = mode.criteria if mode is not None else asdict(Criteria())
    path, checks = full_report(engine, partner, now, horizon, folder, criteria)
    held = sum(c.met for c in checks)
    return f"{partner} is silent: {held} of {len(checks)} go-live criteria hold; prospective validation report {path}"
