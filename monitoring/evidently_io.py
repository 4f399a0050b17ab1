"""Every Evidently import lives here (pinned 0.7, current API), so the library can be upgraded in one place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import DriftedColumnsCount, MeanValue, QuantileValue, RocAuc, ValueDrift
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import DashboardPanelPlot
from evidently.ui.workspace import Workspace

DRIFT_METHOD = "wasserstein"  # normed Wasserstein distance: an effect size, so it does not flag trivia in big samples

PROJECT = "earlywarn relapse-risk"
MIN_TAIL = 10  # values at or beyond each clip point: no histogram edge or extreme is one person's value
SIGNIFICANT = 3  # digits kept: a value in a report is never a raw measurement
MISSING_SHARE = "missing_share"  # mean over signals of each window's missing share in its last week


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    signals: list[str],
    signal_limit: float,
    risk_limit: float,
    timestamp: dt.datetime,
) -> Snapshot:
    """Input drift (each signal), risk drift, risk level and spread, missing share and days observed.

    Reference rows without a risk (participants the model trained on) count for the signals only:
    Evidently drops missing values column by column."""
    numeric = [*signals, "risk", MISSING_SHARE, "days_observed"]
    reference, current = deidentified(reference, current, numeric)
    definition = DataDefinition(numerical_columns=numeric)
    metrics: list[Any] = [ValueDrift(column=c, method=DRIFT_METHOD, threshold=signal_limit) for c in signals]
    metrics += [
        DriftedColumnsCount(columns=signals, method=DRIFT_METHOD, threshold=signal_limit),
        ValueDrift(column="risk", method=DRIFT_METHOD, threshold=risk_limit),
        MeanValue(column="risk"),
        QuantileValue(column="risk", quantile=0.5),
        QuantileValue(column="risk", quantile=0.9),
        MeanValue(column="days_observed"),
        MeanValue(column=MISSING_SHARE),
    ]
    return Report(metrics).run(
        Dataset.from_pandas(current[numeric], data_definition=definition),
        Dataset.from_pandas(reference[numeric], data_definition=definition),
        timestamp=timestamp,
        tags=["drift"],
    )


def deidentified(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the saved reports are built from (they hold histograms, whose outer edges are the data's extremes): each
    column clipped where at least MIN_TAIL pooled values lie beyond on either side, then rounded to SIGNIFICANT digits;
    a column with too few values to clip that way is left empty. Drift measured on these moves by less than the
    rounding (docs/monitoring.md)."""
    reference, current = reference.copy(), current.copy()
    for c in columns:
        pooled = np.sort(pd.concat([reference[c], current[c]]).dropna().to_numpy(float))
        if len(pooled) < 2 * MIN_TAIL:
            reference[c], current[c] = np.nan, np.nan
            continue
        low, high = pooled[MIN_TAIL - 1], pooled[-MIN_TAIL]
        for frame in (reference, current):
            frame[c] = _rounded(frame[c].astype(float).clip(low, high))
    return reference, current


def _rounded(values: pd.Series) -> pd.Series:
    scale = 10.0 ** (SIGNIFICANT - 1 - np.floor(np.log10(np.abs(values.where(values != 0, 1.0)))))
    return (values * scale).round() / scale


def performance_report(matured: pd.DataFrame, timestamp: dt.datetime) -> Snapshot:
    """AUROC and observed event rate on predictions whose horizon has passed (label from reported outcomes)."""
    definition = DataDefinition(
        numerical_columns=["risk", "label"],
        classification=[BinaryClassification(target="label", prediction_probas="risk")],
    )
    report = Report([RocAuc(), MeanValue(column="label")])
    current = Dataset.from_pandas(matured[["risk", "label"]].astype({"risk": float, "label": int}), data_definition=definition)
    return report.run(current, None, timestamp=timestamp, tags=["performance"])


def metric_values(snapshot: Snapshot) -> dict[str, float]:
    """{'ValueDrift:steps': 0.31, 'MeanValue:risk': 0.05, 'QuantileValue:risk:0.9': ..., 'DriftedColumnsCount:share': ...}."""
    out: dict[str, float] = {}
    for m in snapshot.dict()["metrics"]:
        cfg, value = m["config"], m["value"]
        kind = cfg["type"].rsplit(":", 1)[-1]
        key = ":".join(str(p) for p in (kind, cfg.get("column"), cfg.get("quantile")) if p is not None)
        if isinstance(value, dict):
            for part, v in value.items():
                if isinstance(v, (int, float)):
                    out[f"{key}:{part}"] = float(v)
            value = value.get("value")
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def save_reports(snapshot: Snapshot, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    html, js = directory / f"{stem}.html", directory / f"{stem}.json"
    snapshot.save_html(str(html))
    snapshot.save_json(str(js))
    return html, js


PANEL_TITLES = (
    "Share of drifted input signals",
    "Risk score: mean, median and 90th percentile",
    "Risk score drift (normed Wasserstein)",
    "Signal drift (normed Wasserstein)",
    "Missing share, mean over signals (last week of each window)",
    "Days observed per request",
    "AUROC on matured outcomes",
)


def _line(title: str, values: list[Any], size: str = "half") -> Any:
    return DashboardPanelPlot(title=title, size=size, values=values, plot_params={"plot_type": "line"})


def _panels(project: Any, signals: list[str]) -> None:
    t = PANEL_TITLES
    for panel in (
        _line(t[0], [PanelMetric(legend="share", metric="DriftedColumnsCount", metric_labels={"value_type": "share"})]),
        _line(
            t[1],
            [
                PanelMetric(legend="mean", metric="MeanValue", metric_labels={"column": "risk"}),
                PanelMetric(legend="median", metric="QuantileValue", metric_labels={"column": "risk", "quantile": "0.5"}),
                PanelMetric(legend="p90", metric="QuantileValue", metric_labels={"column": "risk", "quantile": "0.9"}),
            ],
        ),
        _line(t[2], [PanelMetric(legend="risk", metric="ValueDrift", metric_labels={"column": "risk"})]),
        _line(t[3], [PanelMetric(legend=s, metric="ValueDrift", metric_labels={"column": s}) for s in signals], "full"),
        _line(t[4], [PanelMetric(legend="missing share", metric="MeanValue", metric_labels={"column": MISSING_SHARE})]),
        _line(t[5], [PanelMetric(legend="mean", metric="MeanValue", metric_labels={"column": "days_observed"})]),
        _line(
            t[6],
            [
                PanelMetric(legend="AUROC", metric="RocAuc"),
                PanelMetric(legend="observed event rate", metric="MeanValue", metric_labels={"column": "label"}),
            ],
        ),
    ):
        project.dashboard.add_panel(panel)


def _without_widgets(snapshot: Snapshot) -> Snapshot:
    """The same metric values without their rendered plots (about 1.3 MB a snapshot otherwise). A local workspace
    parses every stored snapshot when opened, so plots would make each daily run slower than the last; the
    dashboard needs only the values, and the full report is kept as HTML beside it."""
    data = snapshot.dump_dict()
    data["widgets"], data["tests_widgets"] = [], []
    for result in data["metric_results"].values():
        result["widget"] = []
    return Snapshot.load_dict(data)


def open_workspace(path: Path) -> Workspace:
    return Workspace.create(str(path))


def add_to_workspace(ws: Workspace, snapshots: list[Snapshot], scope: str, signals: list[str], name: str) -> list[str]:
    """Store snapshots in the scope's project of a local Evidently workspace (created with its dashboard on first use)."""
    title = f"{PROJECT} — {scope}"
    found = ws.search_project(title)
    project = found[0] if found else ws.create_project(title)
    if not found:
        project.description = f"Live relapse-risk predictions ({scope}) against the champion's reference sample"
        _panels(project, signals)
        project.save()
    ids = []
    for snapshot in snapshots:
        ref = ws.add_run(project.id, _without_widgets(snapshot), include_data=False, name=name)
        ids.append(str(getattr(ref, "id", ref)))
    return ids


def latest_snapshot(path: Path, scope: str = "all") -> tuple[dt.datetime, dict[str, float]]:
    """The newest snapshot of a scope's project in a workspace: its time and metric values."""
    ws = Workspace.create(str(path))
    found = ws.search_project(f"{PROJECT} — {scope}")
    if not found:
        raise LookupError(f"no monitoring project for {scope!r} in {path}")
    models = [ws.get_run(found[0].id, r) for r in ws.list_runs(found[0].id)]
    drift = [m for m in models if m is not None and "drift" in m.tags]
    if not drift:
        raise LookupError(f"no drift snapshots for {scope!r} yet")
    newest = max(drift, key=lambda m: m.timestamp)
    return newest.timestamp, metric_values(Snapshot.load_dict(newest.dict()))
