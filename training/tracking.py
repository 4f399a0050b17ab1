"""MLflow in one place: where runs go, the `relapse-risk` registry, aliases and their history."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training.bundle import ModelBundle

REGISTERED_MODEL = "relapse-risk"
EXPERIMENT = "earlywarn"
CHAMPION, CHALLENGER = "champion", "challenger"
DEFAULT_STORE = Path("runs/mlflow")
_HISTORY_TAG = "champion_history"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (a tracking server, PostgreSQL...), else an embedded SQLite store under runs/."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    DEFAULT_STORE.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(DEFAULT_STORE / 'mlflow.db').resolve()}"


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
        root = Path(os.environ.get("EARLYWARN_ARTIFACT_ROOT", DEFAULT_STORE / "artifacts")).resolve()
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
