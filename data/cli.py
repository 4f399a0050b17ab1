"""`earlywarn data …` commands: parse arguments, call the data stage, print what happened."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from earlywarn.data import state
from earlywarn.data.actigraphy import ActigraphyImportConfig, import_actigraphy
from earlywarn.data.contract import Condition
from earlywarn.data.globem import GlobemImportConfig, import_globem
from earlywarn.data.ingest import DEFAULT_CHUNK_ROWS, load_grid
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import Design, Drift, SynthConfig
from earlywarn.data.validation import ContractError
from earlywarn.data.windows import WindowConfig, build_windows

_WINDOW = WindowConfig()  # window defaults live in data/windows.py only
# Options more than one command takes, each with one name and one help text.
BatchRows = Annotated[int, typer.Option(min=1000, help="Rows of the features file read at a time (bounds memory)")]
Lookback = Annotated[int, typer.Option(min=1, help="Days in a window")]
Horizon = Annotated[int, typer.Option(min=1, help="Days ahead an event counts for a window")]
MinObservedDays = Annotated[int, typer.Option(min=1, help="A window needs this many days with any signal")]
app = typer.Typer(help="Data contract tools: synthetic cohorts, validation, imports.", no_args_is_help=True)


@app.command("synth")
def synth_cmd(
    out: Annotated[
        Path | None, typer.Option(help="Folder to write the cohort into (default: cohort/ under EARLYWARN_HOME)")
    ] = None,
    participants: Annotated[int, typer.Option(min=1, help="Number of participants")] = 500,
    days: Annotated[int, typer.Option(min=1, help="Days per participant")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same cohort")] = 0,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")] = "2025-01-01",
    drift: Annotated[Drift | None, typer.Option(help="Drift scenario from --drift-start-day on (default: none)")] = None,
    drift_start_day: Annotated[int | None, typer.Option(help="Day index the drift starts (default 2/3 through)")] = None,
    design: Annotated[Design, typer.Option(help="Relapse events over time, or cases and controls with dated labels")] = "relapse",
    case_share: Annotated[float, typer.Option(min=0.05, max=0.95, help="Share of cases (case-control only)")] = 0.4,
    condition: Annotated[
        Condition,
        typer.Option(
            help="depression: prodromes move each signal its one worse way; bipolar: depressive (with longer sleep) and "
            "manic (less sleep, more activity, calls, mobility, phone use, higher mood) prodromes"
        ),
    ] = "depression",
    horizon: Annotated[int, typer.Option(min=1, max=37, help="Days ahead the oracle's true risk looks")] = 14,
    minutes: Annotated[
        Path | None, typer.Option(help="Also write raw minute-level activity files here (for import-actigraphy)")
    ] = None,
    epoch_seconds: Annotated[int, typer.Option(help="Epoch of the raw files: 30, 60, 120 or 300 s")] = 60,
) -> None:
    """Generate a synthetic cohort with known relapse risk."""
    cfg = SynthConfig(
        participants=participants,
        days=days,
        seed=seed,
        start=dt.date.fromisoformat(start),
        drift=drift,
        drift_start_day=drift_start_day,
        design=design,
        case_share=case_share,
        condition=condition,
        horizon=horizon,
    )
    r = synth(cfg, out or state.path("cohort"))
    if minutes is not None:
        import pandas as pd

        from earlywarn.data.synth_minutes import export_minutes

        written = export_minutes(pd.read_parquet(r.features_path), minutes, epoch_seconds=epoch_seconds, seed=seed)
        typer.echo(f"wrote {len(written)} raw minute files ({epoch_seconds} s epochs) -> {minutes}")
    what = "cases" if design == "case-control" else "events"
    typer.echo(f"wrote {r.n_rows} participant-days for {r.n_participants} participants, {r.n_events} {what} -> {r.out_dir}")
    if r.drift:
        typer.echo(f"drift scenario '{r.drift}' starts on {r.drift_start}")


@app.command("validate")
def validate_cmd(
    features: Annotated[Path, typer.Option(help="Daily behaviour table (.csv or .parquet)")],
    outcomes: Annotated[Path | None, typer.Option(help="Outcomes table: events or dated labels")] = None,
    lookback: Lookback = _WINDOW.lookback,
    horizon: Horizon = _WINDOW.horizon,
    min_observed_days: MinObservedDays = _WINDOW.min_observed_days,
    batch_rows: BatchRows = DEFAULT_CHUNK_ROWS,
) -> None:
    """Check tables against the data contract and count the windows they give."""
    try:
        data = load_grid(features, outcomes, pad=lookback - 1, chunk_rows=batch_rows)
    except ContractError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err
    n_people = len(data.panel.participants)
    n_features = len(data.feature_names)
    typer.echo(f"{features}: valid, {data.participant_days} participant-days, {n_people} participants, {n_features} features")
    if data.outcomes is not None:
        ws = build_windows(
            data.panel,
            data.outcomes,
            WindowConfig(lookback=lookback, horizon=horizon, min_observed_days=min_observed_days),
            data.mode,
        )
        typer.echo(f"{outcomes}: valid ({data.mode} mode), {len(data.outcomes)} rows")
        typer.echo(f"windows: {len(ws)} ({int(ws.label.sum())} positive); skipped: {ws.skipped}")


ImportOut = Annotated[Path | None, typer.Option(help="Folder for the contract tables (default: a folder under EARLYWARN_HOME)")]


@app.command("import-globem")
def import_globem_cmd(
    path: Annotated[Path, typer.Argument(help="A GLOBEM folder (INS-W_* datasets, or one of them)")],
    out: ImportOut = None,
) -> None:
    """Convert GLOBEM RAPIDS features and weekly depression labels into the data contract."""
    out = out or state.path("globem")
    r = import_globem(GlobemImportConfig(path, out))
    typer.echo(
        f"imported {', '.join(r.datasets)}: {r.n_participants} participants, {r.n_rows} days, {r.n_labels} labels -> {out}"
    )
    if r.dropped_out_of_range:
        typer.echo(f"implausible values set to missing: {r.dropped_out_of_range}")


@app.command("import-actigraphy")
def import_actigraphy_cmd(
    path: Annotated[Path, typer.Argument(help="Folder of <participant_id>.csv files: timestamp, activity (counts per epoch)")],
    out: ImportOut = None,
    labels: Annotated[
        Path | None, typer.Option(help="participant_id,label (one per person) or participant_id,date,label")
    ] = None,
    min_wear_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Days worn less than this are missing")] = 0.7,
) -> None:
    """Turn minute-level activity counts into daily sleep, activity and circadian-rhythm features (docs/data-contract.md)."""
    out = out or state.path("actigraphy")
    try:
        r = import_actigraphy(ActigraphyImportConfig(path, out, labels, min_wear_share=min_wear_share))
    except ContractError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err
    epochs = sorted(set(r.epochs_seconds.values()))
    typer.echo(f"imported {r.n_participants} participants, {r.n_days} days (epochs {epochs} s) -> {r.features_path}")
    if r.outcomes_path:
        typer.echo(f"labels -> {r.outcomes_path}")


@app.command("import-long")
def import_long_cmd(
    path: Annotated[Path, typer.Argument(help="CSV: participant_id, timestamp, signal, value (one row per measurement)")],
    out: ImportOut = None,
) -> None:
    """Aggregate long-format measurements (as app backends export them) to the contract's daily table."""
    from earlywarn.data.long_format import LongImportConfig, import_long

    out = out or state.path("long-import")
    try:
        r = import_long(LongImportConfig(path, out))
    except ContractError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err
    typer.echo(f"imported {r.n_measurements} measurements: {r.n_participants} participants, {r.n_days} days -> {r.features_path}")


@app.command("import-apple-health")
def import_apple_health_cmd(
    export: Annotated[Path, typer.Argument(help="export.xml from the Health app's 'Export All Health Data'")],
    participant: Annotated[str, typer.Option(help="The participant id to file these days under")],
    out: ImportOut = None,
) -> None:
    """One person's Apple Health export to daily sleep, steps, energy, resting heart rate and HRV (SDNN) rows."""
    from earlywarn.data.apple_health import AppleHealthImportConfig, import_apple_health

    out = out or state.path("apple-health")
    try:
        r = import_apple_health(AppleHealthImportConfig(export, participant, out))
    except ContractError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from err
    typer.echo(f"read {r.n_records} records: {r.n_days} days -> {r.features_path}")
