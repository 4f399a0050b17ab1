"""The monitoring stage: `monitor(cfg) -> MonitorResult` — live predictions against the champion's reference."""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data import prediction_log
from data.contract import SIGNALS
from data.summary import MISSING_SUFFIX

DEFAULT_WORKSPACE = Path("runs/monitoring/workspace")
DEFAULT_OUT = Path("runs/monitoring")


@dataclass(frozen=True)
class Thresholds:
    """Alert limits (a TOML file can override any of them)."""

    min_rows: int = 50  # below this, say there is too little data to judge instead of testing
    drift_noise: float = 3.5  # a column drifts when its normed Wasserstein distance exceeds max(floor, noise / sqrt(n))
    drift_floor: float = 0.1
    max_drifted_signal_share: float = 0.0  # any drifted signal alerts
    max_high_band_share: float = 0.12  # the model's budget is 5 %; alert when live high-band share passes this
    max_missing_increase: float = 0.15  # absolute rise in a signal's mean missing share
    min_auroc: float = 0.65
    min_matured_windows: int = 100

    @classmethod
    def load(cls, path: Path | None) -> Thresholds:
        if path is None:
            return cls()
        data = tomllib.loads(path.read_text()).get("thresholds", {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown threshold(s) {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class MonitorConfig:
    """What to compare: predictions since when, for which partner, against which reference."""

    db_url: str
    since: dt.timedelta | None = dt.timedelta(days=7)
    partner: str | None = None
    reference: Path | None = None  # default: the champion's reference sample in MLflow
    horizon_days: int = 14
    thresholds: Thresholds = field(default_factory=Thresholds)
    out_dir: Path = DEFAULT_OUT
    workspace: Path | None = DEFAULT_WORKSPACE
    webhook: str | None = None
    now: dt.datetime | None = None  # for simulations


@dataclass
class Alert:
    kind: str
    subject: str
    value: float
    limit: float
    message: str


@dataclass
class MonitorResult:
    n_current: int
    verdict: str  # ok | alert | insufficient_data
    values: dict[str, float] = field(default_factory=dict)
    drifted_signals: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    report_html: Path | None = None
    report_json: Path | None = None
    snapshot_id: str | None = None
    notes: list[str] = field(default_factory=list)


def champion_reference() -> pd.DataFrame:
    """The reference sample logged with the champion's training run."""
    import mlflow

    from training import tracking

    tracking.configure()
    info = tracking.version_info(tracking.CHAMPION)
    if info is None:
        raise LookupError("no champion registered, so there is no reference to compare with")
    return pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path="reference.parquet"))


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


def monitor(cfg: MonitorConfig) -> MonitorResult:
    """Compare logged predictions with the reference, write reports and a workspace snapshot, raise alerts."""
    from monitoring import evidently_io

    now = cfg.now or dt.datetime.now(dt.UTC)
    engine = prediction_log.engine_for(cfg.db_url)
    since = now - cfg.since if cfg.since else None
    preds = prediction_log.read_predictions(engine, since=since, partner=cfg.partner)
    reference = pd.read_parquet(cfg.reference) if cfg.reference else champion_reference()
    scored = preds[preds["status"] == "scored"] if not preds.empty else preds
    t = cfg.thresholds
    result = MonitorResult(n_current=len(scored), verdict="ok")
    if len(scored) < t.min_rows:
        result.verdict = "insufficient_data"
        result.notes.append(
            f"only {len(scored)} scored predictions in the window; at least {t.min_rows} are needed to judge drift"
        )
        return result
    signals = [c for c in reference.columns if c in SIGNALS or (c in scored.columns and c + MISSING_SUFFIX in reference.columns)]
    signals = [s for s in signals if s in scored.columns]
    current = scored.copy()
    for col in [*signals, "risk"]:
        current[col] = pd.to_numeric(current[col], errors="coerce").astype(float)
    limit = max(t.drift_floor, t.drift_noise / math.sqrt(len(current)))
    outcomes = prediction_log.read_outcomes(engine, partner=cfg.partner)
    labelled = matured_labels(current, outcomes, cfg.horizon_days, now)
    with_outcomes = len(labelled) >= t.min_matured_windows and labelled["label"].nunique() == 2
    ref = reference.copy()
    if with_outcomes:
        current = labelled
        ref = ref.assign(label=ref["label"].astype(int)) if "label" in ref else ref.assign(label=0)
    elif "label" in current.columns:
        current = current.drop(columns="label")
    snapshot = evidently_io.drift_report(ref, current, signals, dict.fromkeys([*signals, "risk"], limit), with_outcomes)
    values = evidently_io.metric_values(snapshot)
    values["high_band_share"] = float((current["band"] == "high").mean())
    values["reference_high_band_share"] = float((ref["band"] == "high").mean())
    values["drift_threshold"] = limit
    for s in signals:
        if s + MISSING_SUFFIX in current.columns and s + MISSING_SUFFIX in ref.columns:
            values[f"missing:{s}"] = float(pd.to_numeric(current[s + MISSING_SUFFIX]).mean())
            values[f"reference_missing:{s}"] = float(ref[s + MISSING_SUFFIX].mean())
    result.values = values
    result.drifted_signals = [s for s in signals if values.get(f"ValueDrift:{s}", 0.0) > limit]
    _alerts(result, t, signals, limit, with_outcomes, len(labelled))
    stamp = now.strftime("%Y%m%dT%H%M%S")
    scope = cfg.partner or "all"
    result.report_html, result.report_json = evidently_io.save_reports(snapshot, cfg.out_dir / "reports", f"{stamp}-{scope}")
    if cfg.workspace is not None:
        result.snapshot_id = evidently_io.add_to_workspace(cfg.workspace, snapshot, signals, f"{stamp} {scope}")
    if result.alerts:
        result.verdict = "alert"
        _record(cfg, result, now, scope)
    return result


def _alerts(result: MonitorResult, t: Thresholds, signals: list[str], limit: float, with_outcomes: bool, n_labelled: int) -> None:
    v = result.values
    share = len(result.drifted_signals) / max(len(signals), 1)
    if result.drifted_signals and share > t.max_drifted_signal_share:
        names = ", ".join(f"{s} ({v[f'ValueDrift:{s}']:.2f})" for s in result.drifted_signals)
        result.alerts.append(
            Alert(
                "input_drift",
                ",".join(result.drifted_signals),
                share,
                t.max_drifted_signal_share,
                f"{len(result.drifted_signals)} of {len(signals)} input signals drifted "
                f"(normed Wasserstein > {limit:.2f}): {names}",
            )
        )
    if v.get("ValueDrift:risk", 0.0) > limit:
        result.alerts.append(
            Alert(
                "prediction_drift",
                "risk",
                v["ValueDrift:risk"],
                limit,
                f"risk scores drifted: distance {v['ValueDrift:risk']:.2f} > {limit:.2f}; "
                f"mean {v.get('MeanValue:risk', float('nan')):.3f}",
            )
        )
    if v["high_band_share"] > t.max_high_band_share:
        result.alerts.append(
            Alert(
                "high_band_share",
                "band",
                v["high_band_share"],
                t.max_high_band_share,
                f"{v['high_band_share']:.1%} of live scores are high-band "
                f"(reference {v['reference_high_band_share']:.1%}, limit {t.max_high_band_share:.0%})",
            )
        )
    for s in signals:
        rise = v.get(f"missing:{s}", 0.0) - v.get(f"reference_missing:{s}", 0.0)
        if rise > t.max_missing_increase:
            result.alerts.append(
                Alert("missing_data", s, rise, t.max_missing_increase, f"{s}: missing share up {rise:.0%} over the reference")
            )
    if with_outcomes and v.get("RocAuc", 1.0) < t.min_auroc:
        result.alerts.append(
            Alert(
                "performance",
                "auroc",
                v["RocAuc"],
                t.min_auroc,
                f"AUROC on {n_labelled} matured predictions is {v['RocAuc']:.3f} (< {t.min_auroc})",
            )
        )
    elif not with_outcomes:
        result.notes.append(
            f"{n_labelled} matured predictions with both outcomes: too few to judge AUROC (need {t.min_matured_windows})"
        )


def _record(cfg: MonitorConfig, result: MonitorResult, now: dt.datetime, scope: str) -> None:
    """Append the alerts to alerts.jsonl and, when configured, POST them to a webhook."""
    payload: dict[str, Any] = {
        "time": now.isoformat(),
        "scope": scope,
        "predictions": result.n_current,
        "alerts": [a.__dict__ for a in result.alerts],
        "report": str(result.report_html),
    }
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.out_dir / "alerts.jsonl", "a") as fh:
        fh.write(json.dumps(payload, default=float) + "\n")
    if cfg.webhook:
        import httpx

        try:
            httpx.post(cfg.webhook, json=payload, timeout=10).raise_for_status()
        except httpx.HTTPError as err:
            result.notes.append(f"webhook failed: {type(err).__name__}")
