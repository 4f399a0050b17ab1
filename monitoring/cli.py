"""`earlywarn monitor …`: judge live predictions against the reference, replay scenarios, open and capture the dashboard."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

app = typer.Typer(help="Drift and quality monitoring of live predictions.", no_args_is_help=True)


def _duration(text: str) -> dt.timedelta:
    from earlywarn.data.timespec import since

    try:
        return since(text)
    except ValueError as err:
        raise typer.BadParameter(str(err).removeprefix(f"--since {text!r}: "), param_hint="--since") from None


def _print_run(run: Any) -> None:
    for scope in run.scopes:
        typer.echo(
            f"[{scope.scope}] {scope.n_current} scored predictions from {scope.n_participants} participants: {scope.verdict}"
        )
        for note in scope.notes:
            typer.echo(f"  note: {note}")
        if (line := _escalation_line(scope.values)) is not None:
            typer.echo(f"  {line}")
        for alert in scope.alerts:
            typer.echo(f"  ALERT {alert.kind}: {alert.message}")
        if scope.report_html:
            typer.echo(f"  report: {scope.report_html}")


def _escalation_line(v: dict[str, float]) -> str | None:
    """Escalations as a care team lives them: load, episode precision with its interval, lead times, late reports."""
    if "live_alerts_per_100_participant_months" not in v:
        return None

    def f(key: str, spec: str = ".2f") -> str:
        x = v.get(key, float("nan"))
        return "n/a" if x != x else format(x, spec)

    return (
        f"escalations: {f('live_alerts_per_100_participant_months', '.1f')} per 100 participant-months; episode PPV "
        f"{f('live_episode_ppv')} ({f('live_episode_ppv_ci_low')}-{f('live_episode_ppv_ci_high')}) over "
        f"{f('live_episodes_matured', '.0f')} matured ({f('live_episodes_post_event', '.0f')} post-event left out); "
        f"lead time p10/p50/p90 {f('live_lead_time_p10_days', '.0f')}/{f('live_lead_time_p50_days', '.0f')}/"
        f"{f('live_lead_time_p90_days', '.0f')} days; outcomes reported after p50 {f('report_delay_p50_days', '.0f')} "
        f"/ p90 {f('report_delay_p90_days', '.0f')} days"
    )


@app.command("run")
def monitor_run(
    since: Annotated[str, typer.Option(help="How far back to read the log: a duration (7d, 24h) or a day (YYYY-MM-DD)")] = "7d",
    partner: Annotated[
        list[str] | None, typer.Option(help="Only these partners (repeatable); default: all, each alone too")
    ] = None,
    by: Annotated[
        Literal["logged", "window-end"],
        typer.Option(help="Select by when predictions were logged, or by the day their window ends"),
    ] = "logged",
    reference: Annotated[Path | None, typer.Option(help="Reference sample (default: the champion's, from MLflow)")] = None,
    thresholds: Annotated[Path | None, typer.Option(help="TOML file with a [thresholds] table")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST alerts as JSON to this URL")] = None,
) -> None:
    """Compare live predictions with the reference, overall and per partner; write reports and snapshots; exit 1 on alerts."""
    from earlywarn.data.store import url_from_env
    from earlywarn.monitoring.monitor import MonitorConfig, monitor
    from earlywarn.monitoring.rules import Thresholds

    cfg = MonitorConfig(
        db_url=url_from_env(),
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


@app.command("simulate")
def monitor_simulate(
    cohort: Annotated[Path, typer.Option(help="Cohort folder from `earlywarn data synth` (with --drift for a scenario)")],
    url: Annotated[str, typer.Option(help="The running service")] = "http://127.0.0.1:3000",
    first_day: Annotated[
        str | None, typer.Option(help="First simulated day, YYYY-MM-DD (default: 5 days before the drift)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Simulated days to replay")] = 30,
    partner: Annotated[
        list[str] | None,
        typer.Option(help="Partners the cohort is dealt to (repeatable; default: clinic-north and app-south)"),
    ] = None,
    monitor_every: Annotated[int, typer.Option(min=1, help="Run the monitor every N simulated days")] = 1,
    since: Annotated[str, typer.Option(help="Each monitor run judges this many latest days")] = "1d",
    thresholds: Annotated[Path | None, typer.Option(help="TOML file with a [thresholds] table")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Reports, alerts, workspace and simulation.json (default: simulate/ under EARLYWARN_HOME)")
    ] = None,
) -> None:
    """Replay a synthetic cohort against a running service day by day and run the monitor after each day."""
    from earlywarn.data import state
    from earlywarn.data.store import url_from_env
    from earlywarn.monitoring.rules import Thresholds
    from earlywarn.monitoring.simulate import SimulateConfig, simulate

    cfg = SimulateConfig(
        url=url,
        db_url=url_from_env(),
        cohort=cohort,
        first_day=dt.date.fromisoformat(first_day) if first_day else None,
        days=days,
        partners=tuple(partner or ("clinic-north", "app-south")),
        monitor_every=monitor_every,
        since=_duration(since),
        thresholds=Thresholds.load(thresholds),
        out_dir=out or state.path("simulate"),
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


@app.command("ui")
def monitor_ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port the UI listens on (loopback)")] = 8000,
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder (default: the one `monitor run` writes)")] = None,
) -> None:
    """Start `evidently ui` on loopback over the monitoring workspace."""
    from earlywarn.monitoring.monitor import default_workspace

    exe = str(Path(sys.executable).with_name("evidently"))
    folder = str(workspace or default_workspace())
    os.execv(exe, [exe, "ui", "--workspace", folder, "--host", "127.0.0.1", "--port", str(port)])


@app.command("screenshot")
def monitor_screenshot(
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (default: monitoring/dashboard.png under EARLYWARN_HOME)")
    ] = None,
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder (default: the one `monitor run` writes)")] = None,
    scope: Annotated[str, typer.Option(help="'all' or a partner name")] = "all",
) -> None:
    """Render the dashboard in headless Chromium, save a PNG and say which panels it shows."""
    from earlywarn.monitoring.monitor import default_workspace
    from earlywarn.monitoring.screenshot import dashboard_screenshot

    shot = dashboard_screenshot(workspace or default_workspace(), out or default_workspace().parent / "dashboard.png", scope)
    typer.echo(f"{shot.png} ({shot.url}): {len(shot.panels_shown)} panels shown")
    for title in shot.panels_missing:
        typer.echo(f"missing panel: {title}", err=True)
    if shot.panels_missing:
        raise typer.Exit(1)
