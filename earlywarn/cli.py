"""The `earlywarn` command line, assembled above the stages; cross-stage commands (`run`, `participants`) live here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from earlywarn.data.cli import app as data_app
from earlywarn.monitoring.cli import app as monitor_app
from earlywarn.serving.cli import app as serving_app
from earlywarn.serving.cli import bento_app, keys_app
from earlywarn.store_cli import app as store_app
from earlywarn.training.cli import app as training_app
from earlywarn.training.models_cli import app as models_app

# Plain help: Rich markup would eat bracketed words such as "[thresholds]" in option texts.
app = typer.Typer(
    help="earlywarn: relapse-risk scores from behavioural time series.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(data_app, name="data")
app.add_typer(training_app)  # train, promote, retrain, tune sit at the top level
app.add_typer(serving_app)  # serve, score
app.add_typer(keys_app, name="keys")
app.add_typer(bento_app, name="bento")
app.add_typer(monitor_app, name="monitor")
app.add_typer(models_app, name="models")

participants_app = typer.Typer(help="Participants' data rights.", no_args_is_help=True)
app.add_typer(participants_app, name="participants")
partners_app = typer.Typer(
    help="Partners' modes: silent (scored and stored, not shown) until their criteria hold.", no_args_is_help=True
)
app.add_typer(partners_app, name="partners")
app.add_typer(store_app, name="store")
audit_app = typer.Typer(help="The audit trail: who changed keys, partners, consent, retention and models.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@app.callback()
def _options(
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the libraries' INFO lines (MLflow's)")] = False,
) -> None:
    """earlywarn: relapse-risk scores from behavioural time series."""
    import os

    # MLflow's INFO lines (creating tables, validating the input example) say nothing a user acts on; MLflow reads
    # this when it is first imported, which is after this.
    os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO" if verbose else os.environ.get("MLFLOW_LOGGING_LEVEL", "WARNING")


@audit_app.command("show")
def audit_show(
    since: Annotated[str | None, typer.Option(help="Only entries from this day (YYYY-MM-DD)")] = None,
    verify: Annotated[bool, typer.Option(help="Check the hash chain end to end; exit 1 if any entry was changed")] = False,
) -> None:
    """Print the audit trail, oldest first; with --verify, check that no entry was changed, removed or reordered."""
    import datetime as dt

    from earlywarn.data import store

    engine = store.engine_for(store.url_from_env())
    try:
        start = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC) if since else None
    except ValueError:
        raise typer.BadParameter("use a day, e.g. 2026-12-01", param_hint="--since") from None
    for e in store.audit.entries(engine, start):
        typer.echo(f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<24} {e.action:<20} {e.subject}  {e.detail}")
    if verify:
        checked, problem = store.audit.verify(engine)
        typer.echo(f"chain broken after {checked} entries: {problem}" if problem else f"chain intact: {checked} entries")
        if problem:
            raise typer.Exit(1)


@participants_app.command("forget")
def participants_forget(
    partner: Annotated[str, typer.Option(help="The partner the participant belongs to")],
    participant: Annotated[str, typer.Option(help="The partner's id for the participant (pseudonymised here, not stored)")],
    not_yet_seen: Annotated[
        bool, typer.Option(help="Record the withdrawal although nothing is held yet, so they are never scored")
    ] = False,
) -> None:
    """Consent withdrawn: delete the participant's logged inputs, predictions and outcomes; record which models saw them."""
    from earlywarn.consent import ForgetConfig, NoRecord, UnknownPartner, forget
    from earlywarn.data.pseudonym import SecretError
    from earlywarn.data.settings import SettingsError
    from earlywarn.data.store import url_from_env

    try:
        result = forget(ForgetConfig(url_from_env(), partner, participant, not_yet_seen=not_yet_seen))
    except (SecretError, SettingsError, UnknownPartner, NoRecord) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"deleted {result.predictions_deleted} predictions (with their inputs) and {result.outcomes_deleted} outcomes; "
        f"removed their rows from {len(result.files_rewritten)} files and {len(result.runs_rewritten)} MLflow reference "
        f"samples; model versions trained before the withdrawal: {', '.join(result.models_trained_before) or 'none'}"
    )


@app.command("evaluate")
def evaluate_cmd(
    features: Annotated[Path, typer.Option(help="The partner's daily features (CSV or Parquet, the data contract)")],
    outcomes: Annotated[Path, typer.Option(help="The partner's outcomes: dated events, or a dated label per day")],
    model: Annotated[str, typer.Option(help="Registered model: an alias (champion) or a version number")] = "champion",
    out: Annotated[Path | None, typer.Option(help="Report folder (default: evaluate/ under EARLYWARN_HOME)")] = None,
    criteria: Annotated[Path | None, typer.Option(help="TOML [criteria] for the verdict (default: the built-in ones)")] = None,
    synthetic: Annotated[bool, typer.Option(help="The data are synthetic: recorded so, never counted as real evidence")] = False,
) -> None:
    """External validation on a partner's own labelled data: an HTML and JSON report, recorded with the model version."""
    from earlywarn.data import state
    from earlywarn.training.criteria import Criteria
    from earlywarn.training.external import EvaluateConfig, evaluate_external

    cfg = EvaluateConfig(
        features,
        outcomes,
        model,
        out or state.path("evaluate"),
        Criteria.load(criteria) if criteria else Criteria(),
        real=not synthetic,
    )
    result = evaluate_external(cfg)
    for c in result.checks:
        typer.echo(f"{'met ' if c.met else 'FAIL'}  {c.criterion:<40} limit {c.limit:g}  measured {c.measured:.3g}")
    verdict = "meets every criterion" if result.meets else "does not meet every criterion"
    typer.echo(f"version {result.version} {verdict}; report {result.report_html}; recorded as MLflow run {result.run_id}")


@partners_app.command("mode")
def partners_mode(
    partner: Annotated[str, typer.Option(help="The partner")],
    silent: Annotated[bool, typer.Option("--silent/--live", help="Silent: scores kept, not shown; live: shown")],
    criteria: Annotated[
        Path | None, typer.Option(help="TOML [criteria] for going live, recorded now (required with --silent)")
    ] = None,
    override: Annotated[str | None, typer.Option(help="Go live without the criteria met; the reason is recorded")] = None,
) -> None:
    """Put a partner in silent mode with its go-live criteria fixed in advance, or take it live once they hold."""
    import datetime as dt

    from earlywarn import golive
    from earlywarn.data.store import engine_for, url_from_env

    engine, now = engine_for(url_from_env()), dt.datetime.now(dt.UTC)
    try:
        if silent:
            if criteria is None:
                raise golive.ModeError("--silent needs --criteria FILE: the go-live criteria are fixed before silent mode")
            golive.go_silent(engine, partner, golive.Criteria.load(criteria), now)
            typer.echo(f"{partner} is silent: scored and stored, not shown; criteria recorded from {criteria}")
            return
        live, checks = golive.go_live(engine, partner, now, override)
    except (golive.ModeError, golive.CriteriaError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    for c in checks:
        typer.echo(f"{'met ' if c.met else 'FAIL'}  {c.criterion:<40} limit {c.limit:g}  measured {c.measured:.3g}")
    if not live:
        typer.echo(f"error: {partner} stays silent: criteria not met (or --override REASON, recorded)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{partner} is live" + ("" if all(c.met for c in checks) else f" by override: {override}"))


@partners_app.command("retraining")
def partners_retraining(
    partner: Annotated[str, typer.Option(help="The partner")],
    allow: Annotated[bool, typer.Option("--allow/--deny", help="Let this partner's traffic train new models, or stop it")],
    min_days: Annotated[int, typer.Option(min=1, help="Logged days a person needs before their data is used")] = 28,
) -> None:
    """A partner opts in (or out) to its scored traffic and reported outcomes training new models (`earlywarn
    retrain`); nothing of a partner that has not opted in is used."""
    from earlywarn.data import store

    engine = store.engine_for(store.url_from_env())
    if allow:
        store.allow_retraining(engine, partner, min_days)
        typer.echo(f"{partner}'s traffic may train new models (people with at least {min_days} logged days)")
    else:
        store.deny_retraining(engine, partner)
        typer.echo(f"{partner}'s traffic is no longer used for training")


@app.command("run")
def run_cmd(
    port: Annotated[int, typer.Option(help="Port the service listens on (loopback)")] = 3000,
    cohort: Annotated[Path | None, typer.Option(help="Cohort folder (default: cohort/ under EARLYWARN_HOME)")] = None,
) -> None:
    """The main job on embedded defaults: cohort -> validation -> (train + promote if no champion) -> package -> serve."""
    from earlywarn.data import state
    from earlywarn.data.ingest import load_grid
    from earlywarn.data.pseudonym import run_mode
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig
    from earlywarn.serving.cli import serve_cmd
    from earlywarn.training import tracking
    from earlywarn.training.promote import PromoteConfig, promote
    from earlywarn.training.train import TrainConfig, train

    if run_mode() != "demo":  # the demo mints a partner key and pseudonymises with the published demo secret
        typer.echo("error: `earlywarn run` is the demo: set EARLYWARN_MODE=demo (`make run` does)", err=True)
        raise typer.Exit(1)
    folder = cohort or state.path("cohort")
    made = synth(SynthConfig(), folder)
    grid = load_grid(made.features_path, made.outcomes_path)
    typer.echo(f"cohort {folder}: {grid.participant_days:,} participant-days valid against the data contract")
    tracking.configure()
    if tracking.version_info(tracking.CHAMPION) is None:
        typer.echo("no champion yet: training on the cohort")
        train(TrainConfig(features=made.features_path, outcomes=made.outcomes_path))
        result = promote(PromoteConfig())
        typer.echo(result.message)
        if not result.promoted:  # nothing to serve: say so rather than fail later in packaging
            typer.echo("error: the model did not clear the promotion gates (above); nothing is served", err=True)
            raise typer.Exit(1)
    serve_cmd(port=port, build=True, demo=True, example_from=made.features_path)


def user_errors() -> tuple[type[Exception], ...]:
    """What a person can cause and fix (a missing file, a bad value, a missing secret): one line and exit 2, not a
    traceback. EARLYWARN_DEBUG=1 shows the traceback."""
    from earlywarn.data.pseudonym import SecretError
    from earlywarn.data.validation import ContractError
    from earlywarn.training.bundle import BundleError
    from earlywarn.training.signing import SigningError
    from earlywarn.training.splits import TrainingDataError

    return (OSError, ValueError, LookupError, ContractError, SecretError, TrainingDataError, BundleError, SigningError)


def main() -> None:
    import sys

    from earlywarn.data import progress, state
    from earlywarn.data.settings import SettingsError, settings

    try:
        debug = settings().debug  # every variable checked before anything runs: a bad value stops here, named
    except SettingsError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    progress.show(sys.stderr.isatty())  # bars for a person watching, not in logs or pipes
    state.pin_home()  # resolved once: every command, and the server `serve` starts, shares the same state root
    state.private_files()  # inherited by the server `serve` starts
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.exceptions.TyperException as usage:  # usage errors (Typer's own click): its message, exit 2
        show = getattr(usage, "show", None)
        show() if show else typer.echo(f"error: {usage}", err=True)
        sys.exit(getattr(usage, "exit_code", 2))
    except user_errors() as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
