"""Silent mode and going live: criteria fixed before a partner's silent mode, measured on its own traffic and outcomes."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from earlywarn.data import store
from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.episodes import Rules
from earlywarn.monitoring.inputs import matured_labels, scored_rows
from earlywarn.training.episode_metrics import openings
from earlywarn.training.metrics import bootstrap_intervals, safe_auc


class ModeError(ValueError):
    """A mode change that is not allowed (criteria missing or changed while silent, or a partner never silent)."""


@dataclass(frozen=True)
class Criteria:
    """What a partner's own silent-mode data must show before its care teams see scores (a TOML [criteria] table)."""

    min_people: int = 50  # scored participants
    min_events: int = 10  # reported events
    min_auroc_lower: float = 0.6  # lower end of the participant-bootstrap 95% interval on matured predictions
    max_high_band_gap: float = 0.1  # |mean risk - observed event rate| in the high band, matured predictions
    max_alerts_per_100_participant_months: float = 20.0  # escalations the episode rules would have opened

    @classmethod
    def load(cls, path: Path) -> Criteria:
        data = tomllib.loads(path.read_text()).get("criteria")
        if not isinstance(data, dict):
            raise ModeError(f"{path}: no [criteria] table")
        known = {f.name: f.type for f in fields(cls)}
        if unknown := sorted(set(data) - set(known)):
            raise ModeError(f"{path}: unknown criteria {unknown}; known: {sorted(known)}")
        if wrong := sorted(k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, int | float)):
            raise ModeError(f"{path}: [criteria] expects numbers (unquoted) for {wrong}")
        values: dict[str, Any] = {k: int(v) if known[k] == "int" else float(v) for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class Check:
    criterion: str
    limit: float
    measured: float
    met: bool


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


def judge(criteria: Criteria, measured: dict[str, float]) -> list[Check]:
    """Each criterion beside its measured figure; an unmeasurable figure (NaN) fails its criterion."""
    m = measured
    rows = [
        ("min_people", criteria.min_people, m["people"], m["people"] >= criteria.min_people),
        ("min_events", criteria.min_events, m["events"], m["events"] >= criteria.min_events),
        ("min_auroc_lower", criteria.min_auroc_lower, m["auroc_ci_low"], m["auroc_ci_low"] >= criteria.min_auroc_lower),
        ("max_high_band_gap", criteria.max_high_band_gap, m["high_band_gap"], m["high_band_gap"] <= criteria.max_high_band_gap),
        (
            "max_alerts_per_100_participant_months",
            criteria.max_alerts_per_100_participant_months,
            m["alerts_per_100_participant_months"],
            m["alerts_per_100_participant_months"] <= criteria.max_alerts_per_100_participant_months,
        ),
    ]
    return [Check(name, float(limit), float(value), bool(ok)) for name, limit, value, ok in rows]


def go_silent(engine: Engine, partner: str, criteria: Criteria, now: dt.datetime) -> store.ModeChange:
    """Start silent mode with the go-live criteria recorded now, before any silent-mode data exists to tune them to."""
    current = store.current_mode(engine, partner)
    if current is not None and current.mode == store.SILENT:
        raise ModeError(f"{partner} is silent since {current.changed_at:%Y-%m-%d}; its criteria cannot change while silent")
    change = store.ModeChange(partner, store.SILENT, asdict(criteria), now)
    store.record_mode(engine, change)
    return change


def go_live(engine: Engine, partner: str, now: dt.datetime, override: str | None = None) -> tuple[bool, list[Check]]:
    """Go live when the recorded criteria hold on the partner's own data, or with an override's stated reason
    (recorded beside the figures); otherwise refuse and say which criteria fail."""
    current = store.current_mode(engine, partner)
    if current is None or current.mode != store.SILENT:
        raise ModeError(f"{partner} is not in silent mode (it is live already)")
    checks = judge(Criteria(**current.criteria), measure(engine, partner, now))
    met = all(c.met for c in checks)
    if met or (override and override.strip()):
        measured = {c.criterion: c.measured for c in checks}
        store.record_mode(
            engine, store.ModeChange(partner, store.LIVE, current.criteria, now, measured, None if met else override)
        )
        return True, checks
    return False, checks
