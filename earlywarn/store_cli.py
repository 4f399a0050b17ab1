"""`earlywarn store migrate | purge | rekey`: the operational store's schema, retention and secret rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="The operational store: schema migrations, retention, rotating the pseudonymisation secret.", no_args_is_help=True
)


@app.command("migrate")
def store_migrate() -> None:
    """Bring the store (EARLYWARN_DB_URL, else the embedded SQLite file) to the newest schema, in place; the service
    does this at start. A store written before migrations existed is adopted as it is."""
    from earlywarn.data import store

    url = store.url_from_env()
    result = store.migrate(store.engine_for(url))
    if result.adopted:
        typer.echo(f"adopted a store written before migrations; now at revision {result.after}")
    elif result.before == result.after:
        typer.echo(f"already at the newest revision {result.after}")
    else:
        typer.echo(f"migrated from {result.before or 'an empty store'} to revision {result.after}")


@app.command("purge")
def store_purge(
    days: Annotated[
        int | None, typer.Option(min=1, help="Keep this many days (default: EARLYWARN_RETENTION_DAYS, else 400)")
    ] = None,
    before: Annotated[
        str | None, typer.Option(help="Instead of --days: delete everything before this day (YYYY-MM-DD), e.g. to end a pilot")
    ] = None,
) -> None:
    """Delete predictions, inputs, outcomes, escalations and feedback older than the retention period, and the same
    traffic in retrain snapshots, MLflow reference samples and monitoring reports (the service purges the store daily)."""
    import datetime as dt

    from earlywarn.data import store
    from earlywarn.retention import PurgeConfig, purge

    if days is not None and before is not None:
        raise typer.BadParameter("give --days or --before, not both", param_hint="--before")
    if before is not None:
        try:
            cut = dt.datetime.combine(dt.date.fromisoformat(before), dt.time(), dt.UTC)
        except ValueError:
            raise typer.BadParameter("a day as YYYY-MM-DD", param_hint="--before") from None
        kept = f"kept nothing before {before}"
    else:
        try:
            keep = days or store.retention_days()
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        cut, kept = dt.datetime.now(dt.UTC) - dt.timedelta(days=keep), f"kept {keep} days"
    r = purge(PurgeConfig(store.url_from_env(), cut))
    typer.echo(
        f"{kept}; deleted "
        + ", ".join(f"{n} {table}" for table, n in r.deleted.items())
        + f"; {len(r.files)} files under the state root and {len(r.runs)} MLflow reference samples rewritten or deleted"
    )


@app.command("rekey")
def store_rekey(
    ids: Annotated[Path, typer.Option(help="CSV of every participant: columns partner,participant_id (the partners' own ids)")],
    drop_unmatched: Annotated[
        bool, typer.Option(help="Delete the records of people the list does not name, instead of refusing")
    ] = False,
) -> None:
    """Rotate the pseudonymisation secret: with EARLYWARN_HMAC_KEY_PREVIOUS (the store's secret) and EARLYWARN_HMAC_KEY
    (the new one), move every pseudonym in the store, retrain snapshots and reference samples to the new secret.
    Pseudonyms are one-way, so the partners' ids are needed; anyone not listed is refused (withdrawn people always)."""
    from earlywarn.data import store
    from earlywarn.rekey import RekeyConfig, rekey

    r = rekey(RekeyConfig(store.url_from_env(), ids, drop_unmatched))
    moved = ", ".join(f"{n} {table}" for table, n in r.rows.items() if n)
    typer.echo(
        f"re-keyed {r.people} listed participants ({moved or 'no rows'}); {r.dropped} unlisted people dropped; "
        f"{len(r.files)} files and {len(r.runs)} MLflow reference samples renamed. Serve with the new secret now."
    )
