"""Every Evidently import lives here (pinned 0.7, current API), so the library can be upgraded in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import MeanValue, QuantileValue, RocAuc, ValueDrift
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import DashboardPanelPlot
from evidently.ui.workspace import Workspace

DRIFT_METHOD = "wasserstein"  # normed Wasserstein distance: an effect size, so it does not flag trivia in big samples

PROJECT = "earlywarn relapse-risk"


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    signals: list[str],
    thresholds: dict[str, float],
    with_outcomes: bool,
) -> Snapshot:
    """Signal and risk drift (each column with its own threshold), risk level and spread, AUROC when labelled."""
    numeric = [*signals, "risk"]
    definition = DataDefinition(
        numerical_columns=numeric + (["label"] if with_outcomes else []),
        categorical_columns=["band"],
        classification=[BinaryClassification(target="label", prediction_probas="risk")] if with_outcomes else None,
    )
    metrics: list[Any] = [ValueDrift(column=c, method=DRIFT_METHOD, threshold=thresholds[c]) for c in numeric]
    metrics += [MeanValue(column="risk"), QuantileValue(column="risk", quantile=0.5), QuantileValue(column="risk", quantile=0.9)]
    if with_outcomes:
        metrics.append(RocAuc())
    report = Report(metrics)
    cols = numeric + ["band"] + (["label"] if with_outcomes else [])
    return report.run(
        Dataset.from_pandas(current[cols], data_definition=definition),
        Dataset.from_pandas(reference[cols], data_definition=definition),
    )


def metric_values(snapshot: Snapshot) -> dict[str, float]:
    """{'ValueDrift:steps': 0.31, 'MeanValue:risk': 0.05, 'QuantileValue:risk:0.9': ..., 'RocAuc': ...}."""
    out: dict[str, float] = {}
    for m in snapshot.dict()["metrics"]:
        cfg, value = m["config"], m["value"]
        kind = cfg["type"].rsplit(":", 1)[-1]
        key = ":".join(str(p) for p in (kind, cfg.get("column"), cfg.get("quantile")) if p is not None)
        if isinstance(value, dict):
            value = value.get("value", next(iter(value.values()), None))
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def save_reports(snapshot: Snapshot, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    html, js = directory / f"{stem}.html", directory / f"{stem}.json"
    snapshot.save_html(str(html))
    snapshot.save_json(str(js))
    return html, js


def _panels(project: Any, signals: list[str]) -> None:
    dash = project.dashboard
    dash.add_panel(
        DashboardPanelPlot(
            title="Risk score: mean and 90th percentile",
            size="half",
            values=[
                PanelMetric(legend="mean", metric="MeanValue", metric_labels={"column": "risk"}),
                PanelMetric(legend="p90", metric="QuantileValue", metric_labels={"column": "risk", "quantile": "0.9"}),
            ],
            plot_params={"plot_type": "line"},
        )
    )
    dash.add_panel(
        DashboardPanelPlot(
            title="Risk score drift (normed Wasserstein)",
            size="half",
            values=[PanelMetric(legend="risk", metric="ValueDrift", metric_labels={"column": "risk"})],
            plot_params={"plot_type": "line"},
        )
    )
    dash.add_panel(
        DashboardPanelPlot(
            title="Signal drift (normed Wasserstein)",
            size="full",
            values=[PanelMetric(legend=s, metric="ValueDrift", metric_labels={"column": s}) for s in signals],
            plot_params={"plot_type": "line"},
        )
    )
    dash.add_panel(
        DashboardPanelPlot(
            title="AUROC on matured outcomes",
            size="half",
            values=[PanelMetric(legend="AUROC", metric="RocAuc")],
            plot_params={"plot_type": "line"},
        )
    )


def add_to_workspace(path: Path, snapshot: Snapshot, signals: list[str], name: str) -> str:
    """Store the snapshot in a local Evidently workspace project (created with its dashboard on first use)."""
    ws = Workspace.create(str(path))
    found = ws.search_project(PROJECT)
    project = found[0] if found else ws.create_project(PROJECT)
    if not found:
        project.description = "Live relapse-risk predictions against the champion's reference sample"
        _panels(project, signals)
        project.save()
    ref = ws.add_run(project.id, snapshot, include_data=False, name=name)
    return str(getattr(ref, "id", ref))
