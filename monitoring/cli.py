"""The one `earlywarn` command line; it lives at the top of the dependency chain so it can reach every stage."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from data.cli import app as data_app
from serving.cli import app as serving_app
from serving.cli import keys_app
from training.cli import app as training_app

app = typer.Typer(help="earlywarn: relapse-risk scores from behavioural time series.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(training_app)  # train, promote, tune sit at the top level
app.add_typer(serving_app)  # serve
app.add_typer(keys_app, name="keys")


monitor_app = typer.Typer(help="Drift and quality monitoring of live predictions.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")


def _duration(text: str) -> dt.timedelta:
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise typer.BadParameter("use a number with d, h or m, e.g. 7d", param_hint="--since")
    return dt.timedelta(**{units[text[-1]]: int(text[:-1])})


@monitor_app.command("run")
def monitor_run(
    since: Annotated[str, typer.Option(help="How far back to read the prediction log (e.g. 7d, 24h)")] = "7d",
    partner: Annotated[str | None, typer.Option(help="Only this partner's predictions")] = None,
    reference: Annotated[Path | None, typer.Option(help="Reference sample (default: the champion's, from MLflow)")] = None,
    thresholds: Annotated[Path | None, typer.Option(help="TOML file with a [thresholds] table")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST alerts as JSON to this URL")] = None,
) -> None:
    """Compare live predictions with the reference; write reports and a workspace snapshot; exit 1 on alerts."""
    from monitoring.monitor import MonitorConfig, Thresholds, monitor
    from serving.config import ServeConfig

    cfg = MonitorConfig(
        db_url=ServeConfig.from_env().db_url,
        since=_duration(since),
        partner=partner,
        reference=reference,
        thresholds=Thresholds.load(thresholds),
        webhook=webhook,
    )
    result = monitor(cfg)
    typer.echo(f"{result.n_current} scored predictions: {result.verdict}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    for alert in result.alerts:
        typer.echo(f"ALERT {alert.kind}: {alert.message}")
    if result.report_html:
        typer.echo(f"report: {result.report_html}")
    if result.alerts:
        raise typer.Exit(1)


@monitor_app.command("ui")
def monitor_ui(port: int = 8000) -> None:
    """Start `evidently ui` on loopback over the monitoring workspace."""
    from monitoring.monitor import DEFAULT_WORKSPACE

    exe = str(Path(sys.executable).with_name("evidently"))
    os.execv(exe, [exe, "ui", "--workspace", str(DEFAULT_WORKSPACE), "--host", "127.0.0.1", "--port", str(port)])


def main() -> None:
    app()
