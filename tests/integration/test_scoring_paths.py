"""The API, `earlywarn score`, the MLflow pyfunc and the Ray Data path give identical results through the one core."""

from __future__ import annotations

import bentoml
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from earlywarn.cli import app
from earlywarn.serving.results import assemble, score
from earlywarn.training import tracking
from earlywarn.training.bundle import ModelBundle

pytestmark = pytest.mark.slow


def _table(small_cohort) -> pd.DataFrame:
    """Four participants' last 90 days (window and personal baseline), and one whose days hold only 5 with any signal
    (too little data)."""
    full = pd.read_parquet(small_cohort.features_path)
    people = sorted(full["participant_id"].unique())[:5]
    table = full[full["participant_id"].isin(people)].groupby("participant_id").tail(90).reset_index(drop=True)
    sparse = table["participant_id"] == people[-1]
    signals = [c for c in table.columns if c not in ("participant_id", "date")]
    blank = table.index[sparse][:-5]
    table.loc[blank, signals] = np.nan
    return table


def _api(bundle: ModelBundle, table: pd.DataFrame) -> pd.DataFrame:
    rows = [
        (
            pid,
            [
                (d.date(), [None if pd.isna(v) else float(v) for v in r])
                for d, r in zip(g["date"], g[bundle.features].to_numpy(), strict=True)
            ],
        )
        for pid, g in table.groupby("participant_id", sort=True)
    ]
    results, _, _ = score(bundle, assemble(rows, len(bundle.features)), explain=False)
    return pd.DataFrame(results).set_index("participant_id")[["window_end", "status", "risk", "band"]]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.sort_index(), b.sort_index()
    assert list(a.index) == list(b.index)
    assert list(a["status"]) == list(b["status"])
    assert list(a["band"].fillna("-")) == list(b["band"].fillna("-"))
    assert list(a["window_end"].astype(str)) == list(b["window_end"].astype(str))
    np.testing.assert_allclose(a["risk"].to_numpy(float), b["risk"].to_numpy(float), atol=1e-5)  # NaN == NaN here


def test_api_batch_and_pyfunc_paths_agree_including_too_little_data(served_model, small_cohort, tmp_path, monkeypatch):
    for k, v in served_model.items():
        if not k.startswith("_"):
            monkeypatch.setenv(k, v)
    tag = served_model["EARLYWARN_MODEL_TAG"]
    bundle = ModelBundle.load(bentoml.models.get(tag).path)
    table = _table(small_cohort)
    table.to_parquet(tmp_path / "features.parquet", index=False)

    api = _api(bundle, table)
    assert (api["status"] == "scored").sum() == 4 and api["status"].iloc[-1] == "insufficient_data"

    res = CliRunner().invoke(
        app, ["score", "--features", str(tmp_path / "features.parquet"), "--out", str(tmp_path / "s.parquet")]
    )
    assert res.exit_code == 0, res.output
    _same(api, pd.read_parquet(tmp_path / "s.parquet").set_index("participant_id"))

    # An earlier command in this process may have pointed MLflow at another store (the full suite does): the pyfunc
    # must still come from the store the environment names.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", served_model["MLFLOW_TRACKING_URI"])  # MLflow wrote its own there
    pyfunc = tracking.load_pyfunc(served_model["_mlflow_version"])  # the very version packaged for the API
    as_text = table.assign(date=table["date"].dt.strftime("%Y-%m-%d"))  # ISO strings, as a CSV export gives them
    _same(api, pyfunc.predict(as_text).set_index("participant_id"))
    as_dates = table.assign(date=table["date"].dt.date)
    _same(api, pyfunc.predict(as_dates).set_index("participant_id"))
    # An absent signal is missing, exactly as if the column were there and empty.
    gone = bundle.features[0]
    _same(
        pyfunc.predict(table.assign(**{gone: np.nan})).set_index("participant_id"),
        pyfunc.predict(table.drop(columns=gone)).set_index("participant_id"),
    )


def test_the_ray_path_agrees_with_the_api(served_model, small_cohort, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is optional (pip install -e '.[scale]'); the other three paths are compared above")
    from earlywarn.serving.ray_score import score_with_ray

    tag = served_model["EARLYWARN_MODEL_TAG"]
    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    bundle = ModelBundle.load(bentoml.models.get(tag).path)
    table = _table(small_cohort)
    table.to_parquet(tmp_path / "features.parquet", index=False)
    score_with_ray(tmp_path / "features.parquet", tmp_path / "ray", bentoml.models.get(tag).path)
    _same(_api(bundle, table), pd.read_parquet(tmp_path / "ray").set_index("participant_id"))
