"""The one `earlywarn` command line; it lives at the top of the dependency chain so it can reach every stage."""

from __future__ import annotations

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


def main() -> None:
    app()
