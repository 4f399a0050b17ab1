"""Test helpers for a whole stack in a folder: its own MLflow store and BentoML home, a champion, a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from data.synth import SynthResult
from serving.launcher import Server
from training.fit import FitConfig

LOOSE_GATES = {"max_ece": 1.0, "max_subgroup_drop": 1.0}  # the first champion only has to exist


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
    from serving.packaging import import_model
    from training.promote import PromoteConfig, promote
    from training.train import TrainConfig, train

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
