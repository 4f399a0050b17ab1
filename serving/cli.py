"""`earlywarn serve` and `earlywarn keys …`: package and start the service, manage partner API keys."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from earlywarn.data import state
from earlywarn.data.cli import BatchRows
from earlywarn.data.settings import settings
from earlywarn.serving.packaging import bentoml_home, use_bentoml_home

app = typer.Typer()
keys_app = typer.Typer(help="Partner API keys and care-team webhooks.", no_args_is_help=True)
# The folder that holds the `earlywarn` package as imported (the checkout, or site-packages for a wheel): the server
# imports the service from there.
PACKAGE_PARENT = Path(__file__).parents[2]


def _service_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BENTOML_HOME=str(bentoml_home()), BENTOML_DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true"
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    return env


def write_example_request(features_path: Path, out: Path, days: int = 90) -> Path:
    """A request body with one synthetic participant's last 90 days (the window and the personal baseline before it),
    scored as of the newest of them."""
    import pandas as pd

    table = pd.read_parquet(features_path)
    person = table[table["participant_id"] == table["participant_id"].iloc[0]].tail(days)
    rows = [
        {"date": d.strftime("%Y-%m-%d")} | {k: (None if pd.isna(v) else round(float(v), 3)) for k, v in r.items()}
        for d, r in zip(person["date"], person.drop(columns=["participant_id", "date"]).to_dict("records"), strict=True)
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    # Scored as of its newest day: the synthetic cohort lies in the past, and as of today it would be stale.
    body = {"as_of": rows[-1]["date"], "participants": [{"participant_id": "demo-participant-1", "days": rows}]}
    out.write_text(json.dumps(body))
    return out


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port the service listens on")] = 3000,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default)")] = "127.0.0.1",
    build: Annotated[
        bool, typer.Option(help="Import the champion from MLflow into the BentoML store and build the bento first")
    ] = False,
    demo: Annotated[bool, typer.Option(help="Create a demo partner key and print an example request")] = False,
    example_from: Annotated[
        Path | None, typer.Option(help="Features file the printed example request is cut from (default: the cohort's)")
    ] = None,
) -> None:
    """Start the risk-score API from the packaged champion."""
    from earlywarn.data.pseudonym import run_mode
    from earlywarn.serving.packaging import latest_model

    if demo and run_mode() != "demo":
        typer.echo("error: --demo mints a demo partner key; it needs EARLYWARN_MODE=demo (`make run` sets it)", err=True)
        raise typer.Exit(1)
    state.pin_home()  # the server runs from the repository, so the state root must be absolute before it starts
    use_bentoml_home()
    if build:
        bento_build()
    elif latest_model() is None:
        typer.echo("no model in the BentoML store; run `earlywarn serve --build` first", err=True)
        raise typer.Exit(1)
    if demo:
        from earlywarn.data.store import engine_for, url_from_env
        from earlywarn.data.store.keys import create_key, revoke

        demo_store = engine_for(url_from_env())
        revoke(demo_store, partner="demo")  # one live demo key at a time: each `make run` replaces the last
        key = create_key(demo_store, "demo")
        body = write_example_request(example_from or state.path("cohort", "features.parquet"), state.path("example-request.json"))
        typer.echo("\nExample request (demo partner key):")
        typer.echo(
            f"  curl -s -X POST http://{host}:{port}/v1/risk-scores -H 'Authorization: Bearer {key.token}' "
            f"-H 'Content-Type: application/json' -d @{body}\n"
            f"  OpenAPI: http://{host}:{port}/v1/docs   model card: http://{host}:{port}/v1/model\n"
        )
    cmd = [
        str(Path(sys.executable).with_name("bentoml")),
        "serve",
        "earlywarn.serving.service:RiskService",
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(PACKAGE_PARENT),
    ]
    os.execve(cmd[0], cmd, _service_env())


@keys_app.command("create")
def keys_create(
    partner: Annotated[str, typer.Option(help="Partner name (lowercase letters, digits, - and _)")],
    expires: Annotated[str | None, typer.Option(help="Expire after this long, e.g. 90d (default: never)")] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    from earlywarn.data.store import engine_for, url_from_env
    from earlywarn.data.store.keys import create_key

    if expires is not None and not (expires.endswith("d") and expires[:-1].isdigit() and int(expires[:-1]) > 0):
        raise typer.BadParameter("use a number of days, e.g. 90d", param_hint="--expires")
    lifetime = dt.timedelta(days=int(expires[:-1])) if expires else None
    try:
        key = create_key(engine_for(url_from_env()), partner, lifetime)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created key {key.key_id} for partner {key.partner}; store it now, it cannot be shown again:")
    typer.echo(key.token)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str | None, typer.Option(help="Revoke this key (see `keys list`)")] = None,
    partner: Annotated[str | None, typer.Option(help="Revoke every key of this partner")] = None,
) -> None:
    """Revoke one key (--key-id) or every key of a partner (--partner)."""
    from earlywarn.data.store import engine_for, url_from_env
    from earlywarn.data.store.keys import revoke

    n = revoke(engine_for(url_from_env()), key_id, partner)
    typer.echo(f"revoked {n} key(s)")
    if n == 0:
        raise typer.Exit(1)


@keys_app.command("webhook")
def keys_webhook(
    partner: Annotated[str, typer.Option(help="Partner whose new escalations are posted")],
    url: Annotated[str, typer.Option(help="The care team's HTTPS endpoint")],
) -> None:
    """Send a partner's new escalations to a webhook; prints its new signing secret once, alone on the last line."""
    from earlywarn.data.settings import settings
    from earlywarn.data.store import engine_for, url_from_env
    from earlywarn.data.store.webhooks import set_webhook

    try:
        hook = set_webhook(engine_for(url_from_env()), partner, url, production=not settings().demo)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"new escalations of partner {partner} go to {url}; signing secret (verify Earlywarn-Signature with it):")
    typer.echo(hook.secret)


@keys_app.command("list")
def keys_list() -> None:
    """Key ids, partners, and whether each is active, expired (with when) or revoked (never the keys)."""
    from earlywarn.data.store import engine_for, url_from_env
    from earlywarn.data.store.keys import key_state, list_keys

    for k in list_keys(engine_for(url_from_env())):
        typer.echo(f"{k['key_id']}  {k['partner']:<20} created {k['created_at']:%Y-%m-%d %H:%M}  {key_state(k)}")


@app.command("score")
def score_cmd(
    features: Annotated[Path, typer.Option(help="Daily features (parquet; each participant's rows together)")],
    out: Annotated[Path, typer.Option(help="Output parquet: one row per participant")],
    as_of: Annotated[
        str | None,
        typer.Option(help="Score windows ending on this day (default: each one's last day, scored for the file's newest day)"),
    ] = None,
    model_tag: Annotated[str | None, typer.Option(help="Packaged model (default: EARLYWARN_MODEL_TAG or the latest)")] = None,
    batch_rows: BatchRows = 500_000,
    partner: Annotated[
        str | None, typer.Option(help="Whose people these are: withdrawn ones are left out, ids written as pseudonyms")
    ] = None,
    raw_ids: Annotated[bool, typer.Option(help="With --partner: write the partner's own ids instead of pseudonyms")] = False,
) -> None:
    """Score a whole cohort from a file with the packaged model, without HTTP (nightly batch scoring). Production
    needs --partner: withdrawn people are never scored, and the output holds pseudonyms unless --raw-ids."""
    import datetime as dt

    from earlywarn.data import store
    from earlywarn.serving.score_file import BatchScoreConfig, score_file

    use_bentoml_home()
    if partner is None and not settings().demo:
        raise typer.BadParameter("production needs --partner, so withdrawals are honoured", param_hint="--partner")
    cfg = BatchScoreConfig(
        partner=partner,
        raw_ids=raw_ids,
        features=features,
        out=out,
        model_tag=model_tag or settings().model_tag,
        as_of=dt.date.fromisoformat(as_of) if as_of else None,
        batch_rows=batch_rows,
    )
    r = score_file(cfg)
    engine = store.engine_for(store.url_from_env())
    store.audit.record(engine, store.audit.cli_actor(), "scores.export", r.out.name, {"participants": r.participants})
    left = f"; {r.withdrawn} withdrawn left out" if r.withdrawn else ""
    typer.echo(f"{r.participants} participants ({r.scored} scored{left}) in {r.seconds:.1f} s -> {r.out}")


bento_app = typer.Typer(
    help="The bento: build it, containerize it, point plain `bentoml` commands at our store.", no_args_is_help=True
)


@bento_app.command("build")
def bento_build() -> None:
    """Import the champion from MLflow into the BentoML store under the state root and build the bento."""
    from earlywarn.serving.packaging import build_bento, import_model

    use_bentoml_home()
    imported = import_model()
    typer.echo(f"packaged MLflow version {imported.mlflow_version} as {imported.tag}; bento {build_bento()}")


@bento_app.command("containerize")
def bento_containerize(
    tag: Annotated[str, typer.Argument(help="The bento to containerize")] = "earlywarn:latest",
    image: Annotated[str | None, typer.Option(help="Image tag (default: the bento's tag)")] = None,
) -> None:
    """`bentoml containerize` of a bento from our store (needs Docker); the image installs serving/requirements.lock."""
    import shutil
    import subprocess

    bentoml = shutil.which("bentoml") or str(Path(sys.executable).with_name("bentoml"))
    argv = [bentoml, "containerize", tag, *(["--image-tag", image] if image else [])]
    raise typer.Exit(subprocess.run(argv, env=_service_env()).returncode)


@bento_app.command("env")
def bento_env() -> None:
    """Print `export BENTOML_HOME=…` for the state root, so `eval "$(earlywarn bento env)"` points plain `bentoml`
    commands (list, serve, export) at our store."""
    import shlex

    typer.echo(f"export BENTOML_HOME={shlex.quote(str(bentoml_home()))}")
