"""MLflow in one place: where runs go, the `relapse-risk` registry, aliases and their history."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

from data import state
from data.contract import DATE, PARTICIPANT
from training.bundle import ModelBundle

REGISTERED_MODEL = "relapse-risk"
EXPERIMENT = "earlywarn"
CHAMPION, CHALLENGER = "champion", "challenger"
_HISTORY_TAG = "champion_history"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (a tracking server, PostgreSQL...), else an embedded SQLite store under runs/."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    store = state.path("mlflow")
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def configure(experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns its id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if not uri.startswith(("http://", "https://")):
        # Embedded stores keep artifacts beside the database, not in the current directory.
        root = Path(os.environ.get("EARLYWARN_ARTIFACT_ROOT") or state.path("mlflow", "artifacts")).resolve()
        root.mkdir(parents=True, exist_ok=True)
        location = root.as_uri()
    try:
        return client.create_experiment(experiment, artifact_location=location)
    except MlflowException:  # another process created it first
        found = client.get_experiment_by_name(experiment)
        assert found is not None
        return found.experiment_id


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version and the run that produced it."""

    version: str
    run_id: str
    aliases: tuple[str, ...]


def version_info(alias_or_version: str) -> VersionInfo | None:
    client = MlflowClient()
    try:
        mv = (
            client.get_model_version(REGISTERED_MODEL, alias_or_version)
            if alias_or_version.isdigit()
            else client.get_model_version_by_alias(REGISTERED_MODEL, alias_or_version)
        )
    except MlflowException:
        return None
    return VersionInfo(str(mv.version), str(mv.run_id), tuple(mv.aliases))


def load_bundle(alias_or_version: str) -> ModelBundle:
    """Download a registered version's bundle and load it (sha256-verified)."""
    ref = (
        f"models:/{REGISTERED_MODEL}/{alias_or_version}"
        if alias_or_version.isdigit()
        else f"models:/{REGISTERED_MODEL}@{alias_or_version}"
    )
    with tempfile.TemporaryDirectory(prefix="earlywarn-model-") as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=tmp)
        return ModelBundle.load(Path(path) / "artifacts" / "bundle")


def champion_history() -> list[str]:
    try:
        rm = MlflowClient().get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        return []
    return list(json.loads(rm.tags.get(_HISTORY_TAG, "[]")))


def set_alias(alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(REGISTERED_MODEL, alias, version)


def set_champion(version: str, history: list[str]) -> None:
    """Move `champion` and record the sequence of champions so a rollback knows where to go."""
    client = MlflowClient()
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    client.set_registered_model_tag(REGISTERED_MODEL, _HISTORY_TAG, json.dumps(history))


def _requirements() -> list[str]:
    reqs = []
    for dist in ("torch", "numpy", "pandas", "pyarrow", "scikit-learn", "pytorch-lightning", "mlflow"):
        try:
            reqs.append(f"{dist}=={version(dist).split('+')[0]}")
        except PackageNotFoundError:
            reqs.append(dist)
    return reqs


def log_model(bundle: ModelBundle, register: bool) -> str | None:
    """Log the bundle as an MLflow pyfunc (code, not pickle) with signature and a synthetic input example."""
    example = pd.DataFrame(
        {PARTICIPANT: "example", DATE: pd.date_range("2025-01-01", periods=bundle.window.lookback).strftime("%Y-%m-%d")}
        | {f: np.float32(c) for f, c in zip(bundle.features, bundle.preprocessor.center, strict=True)}
    )
    # What the data contract accepts: the date as a date or an ISO string, and any signal may be absent (missing).
    inputs: list[ColSpec | TensorSpec] = [ColSpec("string", PARTICIPANT), ColSpec(AnyType(), DATE)]
    inputs += [ColSpec("double", f, required=False) for f in bundle.features]
    outputs: list[ColSpec | TensorSpec] = [ColSpec("string", c) for c in (PARTICIPANT, "window_end", "status")]
    outputs += [ColSpec("double", "risk", required=False), ColSpec("string", "band", required=False)]
    code_root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="earlywarn-bundle-") as tmp:
        bundle.save(Path(tmp) / "bundle")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={"bundle": str(Path(tmp) / "bundle")},
            code_paths=[str(code_root / "data"), str(code_root / "training")],
            signature=ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs)),
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=REGISTERED_MODEL if register else None,
        )
    return str(info.registered_model_version) if register and info.registered_model_version is not None else None
