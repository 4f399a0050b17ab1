"""Shared fixtures: a tiny seeded synthetic cohort and an MLflow store under tmp_path."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import psutil
import pytest

for _var in ("BENTOML_DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ[_var] = "true"
# BentoML resolves its store from BENTOML_HOME once per process, so every fixture shares one store for the session
# (model tags are unique); servers get the same path in their environment.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="earlywarn-test-bentoml-")
# Production (a real secret) is the default; the suite runs as a demo unless a test asks for production.
os.environ.setdefault("EARLYWARN_MODE", "demo")

GLOBEM = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "globem-sample"


def _children() -> dict[int, str]:
    found = {}
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            found[p.pid] = " ".join(p.cmdline()[:4])
    return found


def _wait_until_gone(before: set[int]) -> dict[int, str]:
    deadline = time.time() + 15  # a stopped server's workers may take a moment to exit
    while (left := {pid: cmd for pid, cmd in _children().items() if pid not in before}) and time.time() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_session():
    """Module- and session-scoped servers are gone too once the suite ends."""
    before = set(_children())
    yield
    left = _wait_until_gone(before)
    assert not left, f"processes outlived the test session: {left}"


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    """Every process a test (or its function-scoped fixtures) starts is gone when it ends."""
    before = set(_children())
    yield
    left = _wait_until_gone(before)
    assert not left, f"processes outlived the test: {left}"


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory: pytest.TempPathFactory):
    """80 participants x 240 days, seed 7: small enough for seconds, big enough to have events."""
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig

    return synth(SynthConfig(participants=80, days=240, seed=7), tmp_path_factory.mktemp("cohort"))


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow at a fresh SQLite store and artifact folder under tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("EARLYWARN_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    return uri


@pytest.fixture(scope="session")
def globem_path() -> Path:
    if not GLOBEM.is_dir():
        pytest.skip(f"GLOBEM sample not found at {GLOBEM} (it lives in ../shared/datasets, never in this repo)")
    return GLOBEM


@pytest.fixture(scope="session")
def served_model(small_cohort, tmp_path_factory):
    """A model trained on the small cohort, promoted and imported into a BentoML store; returns the environment to serve it."""
    root = tmp_path_factory.mktemp("served")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "EARLYWARN_ARTIFACT_ROOT": str(root / "artifacts"),
        "BENTOML_HOME": os.environ["BENTOML_HOME"],
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    from earlywarn.data.windows import WindowConfig
    from earlywarn.serving.packaging import import_model
    from earlywarn.training.fit import FitConfig
    from earlywarn.training.promote import PromoteConfig, promote
    from earlywarn.training.train import TrainConfig, train
    from tests.stack import LOOSE_GATES

    cfg = TrainConfig(
        features=small_cohort.features_path,
        outcomes=small_cohort.outcomes_path,
        out=root / "train",
        window=WindowConfig(),
        fit=FitConfig(max_epochs=3, progress=False),
        bootstrap_reps=20,
        compare_baseline=False,
    )
    train(cfg)
    assert promote(PromoteConfig(**LOOSE_GATES)).promoted
    imported = import_model()
    mp.undo()
    return env | {"EARLYWARN_MODEL_TAG": imported.tag, "_root": str(root), "_mlflow_version": imported.mlflow_version}
