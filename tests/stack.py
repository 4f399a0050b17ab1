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
from earlywarn.training.bundle import ModelBundle
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
    "bootstrap_reps": 20,  # the intervals are not what these tests check
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


def clean_venv(requirements: str, folder: Path) -> Path:
    """`uv venv` and `uv pip install -r` of these requirements only (as a bento's Dockerfile does); where pip is
    configured with a local wheel folder (this machine reaches PyPI but not PyTorch's index), the CPU torch comes from
    that folder instead of the index. Returns the environment's python."""
    import re
    import subprocess
    import sys

    uv, venv = str(Path(sys.executable).with_name("uv")), folder / "venv"
    source: list[str] = []
    if links := os.environ.get("PIP_FIND_LINKS"):
        requirements = re.sub(r"^--extra-index-url \S+$", "", requirements, flags=re.M)
        source = ["--find-links", links]
    (folder / "requirements.txt").write_text(requirements)
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", str(folder / "requirements.txt"), *source],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return venv / "bin" / "python"


def tiny_bundle() -> ModelBundle:
    """An untrained two-signal model with identity calibration: enough for the scoring rules and the signatures."""
    import numpy as np

    from earlywarn.data.windows import WindowConfig
    from earlywarn.training.calibration import Bands, Calibration
    from earlywarn.training.nets import build_net
    from earlywarn.training.preprocess import Preprocessor

    features = ["steps", "sleep_duration_h"]
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(8000, 2000, 500), rng.normal(7, 1, 500)]).astype(np.float32)
    window = WindowConfig(lookback=14, min_observed_days=7, washout_days=28, baseline_days=30)
    pre = Preprocessor.fit(rows, features, window.lookback, baseline_days=window.baseline_days)
    net = build_net("additive", len(features), window.lookback, {})
    return ModelBundle("additive", {}, pre, Calibration.identity(features), Bands(0.2, 0.5, 0.05, 0.15), window, net)
