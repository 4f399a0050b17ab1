"""The data commands parse arguments, call the stage and report errors without a traceback."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from earlywarn.cli import app

runner = CliRunner()


def test_synth_then_validate(tmp_path):
    out = tmp_path / "c"
    res = runner.invoke(app, ["data", "synth", "--participants", "12", "--days", "80", "--seed", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {"features.parquet", "outcomes.csv", "oracle.parquet", "participants.csv"} <= {p.name for p in out.iterdir()}
    res = runner.invoke(
        app, ["data", "validate", "--features", str(out / "features.parquet"), "--outcomes", str(out / "outcomes.csv")]
    )
    assert res.exit_code == 0, res.output
    assert "valid" in res.output and "windows:" in res.output


def test_validate_reports_the_broken_cell(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"participant_id": ["a"], "date": ["2025-01-01"], "steps": [-4]}).to_csv(bad, index=False)
    res = runner.invoke(app, ["data", "validate", "--features", str(bad)])
    assert res.exit_code == 1
    assert f"{bad}, row 1, column 'steps'" in res.output and "Traceback" not in res.output


def test_unknown_drift_is_refused(tmp_path):
    res = runner.invoke(app, ["data", "synth", "--out", str(tmp_path), "--drift", "weather"])
    assert res.exit_code != 0
