"""A partner's prospective validation: the go-live criteria and the figures its own silent-mode traffic shows."""

from __future__ import annotations

import datetime as dt
import json
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
from earlywarn.training.criteria import Check, Criteria, CriteriaError, judge
from earlywarn.training.episode_metrics import openings

__all__ = ["Check", "Criteria", "CriteriaError", "judge", "measure", "report_for", "write_report"]
from earlywarn.training.metrics import bootstrap_intervals, safe_auc


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


def write_report(folder: Path, partner: str, criteria: dict[str, Any], checks: list[Check], now: dt.datetime) -> Path:
    """The prospective validation report for one silent partner: JSON beside a plain HTML table."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{now:%Y%m%dT%H%M%S}-{partner}-prospective"
    record: dict[str, Any] = {
        "partner": partner,
        "time": now.isoformat(),
        "criteria": criteria,
        "checks": [asdict(c) for c in checks],
    }
    record["ready_to_go_live"] = all(c.met for c in checks)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str))
    rows = "".join(
        f"<tr><td>{c.criterion}</td><td>{c.limit:g}</td><td>{c.measured:.3g}</td><td>{'met' if c.met else 'not met'}</td></tr>"
        for c in checks
    )
    verdict = "every criterion holds" if record["ready_to_go_live"] else "not ready: some criteria do not hold"
    html = (
        f"<!doctype html><meta charset='utf-8'><title>{partner}: prospective validation</title>"
        f"<h1>{partner}: prospective validation ({now:%Y-%m-%d})</h1><p>Silent mode; criteria recorded before it began. "
        f"Verdict: {verdict}.</p><table border=1><tr><th>criterion</th><th>limit</th><th>measured</th><th></th></tr>"
        f"{rows}</table>"
    )
    stem.with_suffix(".html").write_text(html)
    return stem.with_suffix(".html")


def report_for(engine: Engine, partner: str, now: dt.datetime, horizon: int, folder: Path) -> str:
    """Judge a silent partner against the criteria recorded when its silent mode began; write the report; say so."""
    mode = store.current_mode(engine, partner)
    criteria = mode.criteria if mode is not None else asdict(Criteria())
    checks = judge(Criteria(**criteria), measure(engine, partner, now, horizon))
    path = write_report(folder, partner, criteria, checks, now)
    held = sum(c.met for c in checks)
    return f"{partner} is silent: {held} of {len(checks)} go-live criteria hold; prospective validation report {path}"
