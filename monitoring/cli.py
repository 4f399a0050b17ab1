"""The one `earlywarn` command line; it lives at the top of the dependency chain so it can reach every stage."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, Any

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


participants_app = typer.Typer(help="Participants' data rights.", no_args_is_help=True)
app.add_typer(participants_app, name="participants")


@participants_app.command("forget")
def participants_forget(
    partner: Annotated[str, typer.Option(help="The partner the participant belongs to")],
    participant: Annotated[str, typer.Option(help="The partner's id for the participant (pseudonymised here, not stored)")],
) -> None:
    """Consent withdrawn: delete the participant's logged inputs, predictions and outcomes; record which models saw them."""
    from serving.config import ServeConfig
    from training.consent import ForgetConfig, forget

    serve = ServeConfig.from_env()
    result = forget(ForgetConfig(serve.db_url, partner, participant, demo=serve.demo))
    typer.echo(
        f"deleted {result.predictions_deleted} predictions (with their inputs) and {result.outcomes_deleted} outcomes; "
        f"model versions trained before the withdrawal: {', '.join(result.models_trained_before) or 'none'}"
    )


monitor_app = typer.Typer(help="Drift and quality monitoring of live predictions.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")


def _duration(text: str) -> dt.timedelta:
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise typer.BadParameter("use a number with d, h or m, e.g. 7d", param_hint="--since")
    return dt.timedelta(**{units[text[-1]]: int(text[:-1])})


def _print_run(run: Any) -> None:
    for scope in run.scopes:
        typer.echo(
            f"[{scope.scope}] {scope.n_current} scored predictions from {scope.n_participants} participants: {scope.verdict}"
        )
        for note in scope.notes:
            typer.echo(f"  note: {note}")
        for alert in scope.alerts:
            typer.echo(f"  ALERT {alert.kind}: {alert.message}")
        if scope.report_html:
            typer.echo(f"  report: {scope.report_html}")


@monitor_app.command("run")
def monitor_run(
    since: Annotated[str, typer.Option(help="How far back to read the prediction log (e.g. 7d, 24h)")] = "7d",
    partner: Annotated[
        list[str] | None, typer.Option(help="Only these partners (repeatable); default: all, each alone too")
    ] = None,
    by: Annotated[str, typer.Option(help="Select by when predictions were logged, or by the day their window ends")] = "logged",
    reference: Annotated[Path | None, typer.Option(help="Reference sample (default: the champion's, from MLflow)")] = None,
    thresholds: Annotated[Path | None, typer.Option(help="TOML file with a [thresholds] table")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST alerts as JSON to this URL")] = None,
) -> None:
    """Compare live predictions with the reference, overall and per partner; write reports and snapshots; exit 1 on alerts."""
    from monitoring.monitor import MonitorConfig, Thresholds, monitor
    from serving.config import ServeConfig

    if by not in ("logged", "window-end"):
        raise typer.BadParameter("use logged or window-end", param_hint="--by")
    cfg = MonitorConfig(
        db_url=ServeConfig.from_env().db_url,
        since=_duration(since),
        partners=tuple(partner) if partner else None,
        time_basis="logged" if by == "logged" else "window_end",
        reference=reference,
        thresholds=Thresholds.load(thresholds),
        webhook=webhook,
    )
    run = monitor(cfg)
    _print_run(run)
    if run.alerts:
        raise typer.Exit(1)


@monitor_app.command("simulate")
def monitor_simulate(
    cohort: Annotated[Path, typer.Option(help="Cohort folder from `earlywarn data synth` (with --drift for a scenario)")],
    url: Annotated[str, typer.Option(help="The running service")] = "http://127.0.0.1:3000",
    first_day: Annotated[
        str | None, typer.Option(help="First simulated day, YYYY-MM-DD (default: 5 days before the drift)")
    ] = None,
    days: Annotated[int, typer.Option(min=1)] = 30,
    partners: Annotated[str, typer.Option(help="Comma-separated partner names the cohort is dealt to")] = ",".join(
        ("clinic-north", "app-south")
    ),
    monitor_every: Annotated[int, typer.Option(min=1, help="Run the monitor every N simulated days")] = 1,
    since: Annotated[str, typer.Option(help="Each monitor run judges this many latest days")] = "1d",
    thresholds: Annotated[Path | None, typer.Option(help="TOML file with a [thresholds] table")] = None,
    out: Annotated[Path, typer.Option(help="Reports, alerts, workspace and simulation.json go here")] = Path("runs/simulate"),
) -> None:
    """Replay a synthetic cohort against a running service day by day and run the monitor after each day."""
    from monitoring.monitor import Thresholds
    from monitoring.simulate import SimulateConfig, simulate
    from serving.config import ServeConfig

    cfg = SimulateConfig(
        url=url,
        db_url=ServeConfig.from_env().db_url,
        cohort=cohort,
        first_day=dt.date.fromisoformat(first_day) if first_day else None,
        days=days,
        partners=tuple(p.strip() for p in partners.split(",") if p.strip()),
        monitor_every=monitor_every,
        since=_duration(since),
        thresholds=Thresholds.load(thresholds),
        out_dir=out,
    )
    result = simulate(cfg)
    if result.drift_start:
        typer.echo(f"drift '{result.drift}' starts {result.drift_start}")
    for d in result.days:
        line = f"{d.day}: {d.scored} scored, {d.outcomes} outcomes"
        if d.run is not None:
            kinds = sorted({f"{a.scope}:{a.kind}" for a in d.run.alerts})
            line += f" -> {d.run.verdict}" + (f" ({', '.join(kinds)})" if kinds else "")
        typer.echo(line)
    typer.echo(f"table: {result.table_path}")


@monitor_app.command("ui")
def monitor_ui(
    port: int = 8000,
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder (default: the one `monitor run` writes)")] = None,
) -> None:
    """Start `evidently ui` on loopback over the monitoring workspace."""
    from monitoring.monitor import DEFAULT_WORKSPACE

    exe = str(Path(sys.executable).with_name("evidently"))
    folder = str(workspace or DEFAULT_WORKSPACE)
    os.execv(exe, [exe, "ui", "--workspace", folder, "--host", "127.0.0.1", "--port", str(port)])


@monitor_app.command("screenshot")
def monitor_screenshot(
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("runs/monitoring/dashboard.png"),
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder (default: the one `monitor run` writes)")] = None,
    scope: Annotated[str, typer.Option(help="'all' or a partner name")] = "all",
) -> None:
    """Render the dashboard in headless Chromium, save a PNG and say which panels it shows."""
    from monitoring.monitor import DEFAULT_WORKSPACE
    from monitoring.screenshot import dashboard_screenshot

    shot = dashboard_screenshot(workspace or DEFAULT_WORKSPACE, out, scope)
    typer.echo(f"{shot.png} ({shot.url}): {len(shot.panels_shown)} panels shown")
    for title in shot.panels_missing:
        typer.echo(f"missing panel: {title}", err=True)
    if shot.panels_missing:
        raise typer.Exit(1)


def main() -> None:
    app()
