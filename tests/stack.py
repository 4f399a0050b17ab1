"""Test helpers for a whole stack in a folder: its own MLflow store and BentoML home, a champion, a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from bench.launcher import Server
from earlywarn.data.synth import SynthResult
from earlywarn.training.fit import FitConfig

# The first champion of a tiny test cohort only has to exist: no floor on events or AUROC, no calibration limits.
LOOSE_GATES = {
    "max_ece": 1.0,
    "max_subgroup_drop": 1.0,
    "min_events": 0,
    "min_auroc_lower": -1.0,
    "max_high_band_gap": 1.0,
    "min_slope": -1e9,
    "max_slope": 1e9,
}


def model_env(root: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "EARLYWARN_ARTIFACT_ROOT": str(root / "artifacts"),
        "BENTOML_HOME": os.environ["BENTOML_HOME"],  # the session's one store (see conftest)
    }


@contextmanager
def champion_served(root: Path, cohort: SynthResult, fit: FitConfig) -> Iterator[tuple[Server, str, dict[str, str]]]:
    """Train on the cohort, promote, import into BentoML and serve with a SQLite prediction log under root;
    yields (server, log URL, environment). MLflow and BentoML point at root for as long as the block runs."""
    from earlywarn.serving.packaging import import_model
    from earlywarn.training.promote import PromoteConfig, promote
    from earlywarn.training.train import TrainConfig, train

    env = model_env(root)
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    try:
        train(
            TrainConfig(
                cohort.features_path, cohort.outcomes_path, out=root / "train", fit=fit, compare_baseline=False, bootstrap_reps=20
            )
        )
        assert promote(PromoteConfig(**LOOSE_GATES)).promoted
        db = f"sqlite:///{root / 'log.db'}"
        serve_env = env | {
            "EARLYWARN_MODEL_TAG": import_model().tag,
            "EARLYWARN_DB_URL": db,
            "EARLYWARN_SPOOL_DIR": str(root / "spool"),
        }
        server = Server(serve_env, root / "server.log").start()
        try:
            yield server, db, env
        finally:
            server.stop()
    finally:
        mp.undo()


def days_of(table: pd.DataFrame, pid: str, n: int = 28, signals: list[str] | None = None) -> list[dict]:
    """One participant's last n days as the API's `days` entries (every signal, or only the ones named)."""
    person = table[table["participant_id"] == pid].tail(n)
    feats = person[signals] if signals is not None else person.drop(columns=["participant_id", "date"])
    return [
        {"date": d.strftime("%Y-%m-%d")} | {k: (None if pd.isna(v) else float(v)) for k, v in r.items()}
        for d, r in zip(person["date"], feats.to_dict("records"), strict=True)
    ]


def scoring(participants: list[dict]) -> dict:
    """A `POST /v1/risk-scores` body scored as of its newest day (synthetic cohorts lie in the past; scored as of
    today they would be stale)."""
    newest = max((p["days"][-1]["date"] for p in participants if p["days"]), default=None)
    return ({"as_of": newest} if newest else {}) | {"participants": participants}


def risk_request(table: pd.DataFrame, people: list[str], prefix: str, signals: list[str] | None = None) -> dict:
    """A `POST /v1/risk-scores` body for these participants, their ids prefixed so each test's people are its own."""
    return scoring([{"participant_id": f"{prefix}{p}", "days": days_of(table, p, signals=signals)} for p in people])
