"""MLflow in one place: where runs go, what they log, the typed training-data record, the `relapse-risk` registry,
aliases and their history. No other module calls MLflow (the pyfunc model file, which MLflow itself loads, aside)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PyFuncModel
from mlflow.types.schema import ColSpec, Schema, TensorSpec
from pytorch_lightning.loggers import MLFlowLogger

from earlywarn.data import state
from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.settings import MODEL_NAME, settings
from earlywarn.data.windows import WindowConfig
from earlywarn.training import supply_chain
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.code_copy import copy_package, model_requirements
from earlywarn.training.configs import EXPERIMENT
from earlywarn.training.scoring import OUTPUTS
from earlywarn.training.splits import Folds

REGISTERED_MODEL = MODEL_NAME
CHAMPION, CHALLENGER = "champion", "challenger"
_HISTORY_TAG = "champion_history"
_WITHDRAWALS_TAG = "earlywarn.withdrawals_after_training"


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
        root = (settings().artifact_root or state.path("mlflow", "artifacts")).resolve()
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


def _ref(alias_or_version: str) -> str:
    return f"models:/{REGISTERED_MODEL}{'/' if alias_or_version.isdigit() else '@'}{alias_or_version}"


def download_model(alias_or_version: str, dst: str) -> Path:
    """A registered version's MLflow model folder, downloaded under `dst`."""
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=_ref(alias_or_version), dst_path=dst))


def load_bundle(alias_or_version: str) -> ModelBundle:
    """Download a registered version's bundle and load it (signature and sha256 verified)."""
    with tempfile.TemporaryDirectory(prefix="earlywarn-model-") as tmp:
        return ModelBundle.load(download_model(alias_or_version, tmp) / supply_chain.BUNDLE_IN_MODEL)


def load_pyfunc(alias_or_version: str) -> PyFuncModel:
    """The registered version as an MLflow pyfunc, its code checked against the signature before MLflow runs it,
    from the store the environment names now (`configure` first: MLflow keeps the last URI for the whole process)."""
    configure()
    local = download_model(alias_or_version, tempfile.mkdtemp(prefix="earlywarn-pyfunc-"))
    supply_chain.check_model_dir(local)
    return mlflow.pyfunc.load_model(str(local))


def champion_history() -> list[str]:
    try:
        rm = MlflowClient().get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        return []
    return list(json.loads(rm.tags.get(_HISTORY_TAG, "[]")))


def tag_version(version: str, prefix: str, record: dict[str, str]) -> None:
    """Tags on a model version: overrides (`promotion_`), validations (`validation_`), the signed promotion record."""
    client = MlflowClient()
    for key, value in record.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, f"{prefix}{key}", value[:5000])


def version_tags(version: str, prefix: str) -> dict[str, str]:
    tags = MlflowClient().get_model_version(REGISTERED_MODEL, version).tags
    return {k.removeprefix(prefix): v for k, v in tags.items() if k.startswith(prefix)}


def promotion_records() -> dict[str, str]:
    """Each version's signed promotion record as stored (version -> text); versions never promoted left out."""
    return {v: t for v in model_versions() if (t := version_tags(v, "").get(supply_chain.PROMOTION_TAG))}


def set_alias(alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(REGISTERED_MODEL, alias, version)


def set_champion(version: str, history: list[str]) -> None:
    """Move `champion` and record the sequence of champions so a rollback knows where to go."""
    client = MlflowClient()
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    client.set_registered_model_tag(REGISTERED_MODEL, _HISTORY_TAG, json.dumps(history))


def log_model(bundle: ModelBundle, register: bool) -> str | None:
    """Log the bundle as an MLflow pyfunc (code, not pickle) with signature and a synthetic input example."""
    example = pd.DataFrame(
        {PARTICIPANT: "example", DATE: pd.date_range("2025-01-01", periods=bundle.window.lookback).strftime("%Y-%m-%d")}
        | {f: np.float32(c) for f, c in zip(bundle.features, bundle.preprocessor.center, strict=True)}
    )
    # Outputs exactly as predict returns them. No input schema: MLflow's would refuse int64 signals (no "safe" cast to
    # double) or, typed loosely, CSV; the data contract's own validation checks inputs and names the field. The
    # accepted columns are in the model's metadata instead.
    outputs: list[ColSpec | TensorSpec] = [ColSpec(t, c, required=r) for c, t, r in OUTPUTS]
    accepts = {PARTICIPANT: "text", DATE: "date or YYYY-MM-DD"} | dict.fromkeys(bundle.features, "number, may be absent")
    with tempfile.TemporaryDirectory(prefix="earlywarn-bundle-") as tmp:
        code, model_file = copy_package(Path(tmp) / "code", ("data", "training")), Path(__file__).with_name("pyfunc_model.py")
        bundle.save(Path(tmp) / "bundle", covers=supply_chain.covers(model_file, code))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(model_file),
            artifacts={"bundle": str(Path(tmp) / "bundle")},
            code_paths=[str(code)],
            signature=ModelSignature(inputs=None, outputs=Schema(outputs)),
            metadata={"inputs": accepts, "history_days": bundle.input_days},
            input_example=example,
            pip_requirements=model_requirements(),
            registered_model_name=REGISTERED_MODEL if register else None,
        )
    return str(info.registered_model_version) if register and info.registered_model_version is not None else None


@dataclass(frozen=True)
class TrainingData:
    """What a run learned from, logged with it as `training_data.json` and read back as this type: the data files
    with their fingerprints, the window settings and the split that held participants out."""

    features_path: str
    outcomes_path: str
    features_sha256: str
    outcomes_sha256: str
    window: dict[str, int]
    split_seed: int
    cv_folds: Folds
    heldout_sha256: str
    original_features_path: str | None = None  # a retrained model's first training data, where it started from
    original_outcomes_path: str | None = None

    def window_config(self) -> WindowConfig:
        return WindowConfig(**self.window)

    def original_paths(self) -> tuple[Path, Path]:
        """The data a retraining starts from: the first model's own, never a retrained model's live snapshot."""
        return Path(self.original_features_path or self.features_path), Path(self.original_outcomes_path or self.outcomes_path)


_TRAINING_DATA = "training_data.json"


def training_data(run_id: str) -> TrainingData:
    """The typed training-data record of a run."""
    return TrainingData(**json.loads(download(run_id, _TRAINING_DATA).read_text()))


def start_run(experiment: str, run_name: str | None = None, nested: bool = False) -> str:
    configure(experiment)
    mlflow.set_experiment(experiment)
    return str(mlflow.start_run(run_name=run_name, nested=nested).info.run_id)


def end_run() -> None:
    mlflow.end_run()


@contextmanager
def run(experiment: str = EXPERIMENT, run_name: str | None = None, run_id: str | None = None) -> Iterator[str]:
    """An MLflow run (a new one, or an existing one resumed by id) for the duration of the block."""
    configure(experiment)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, run_id=run_id) as active:
        yield str(active.info.run_id)


def lightning_logger(run_id: str) -> MLFlowLogger:
    """Lightning's MLflow logger writing per-epoch metrics into the given run."""
    return MLFlowLogger(tracking_uri=tracking_uri(), run_id=run_id)


def log_run(
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: list[Path],
    record: TrainingData | None = None,
    texts: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Everything a stage logs to the active run, in one call: parameters, finite metrics, files, the typed
    training-data record, small text artifacts and tags."""
    if params:
        mlflow.log_params(params)
    finite = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    if finite:
        mlflow.log_metrics(finite)
    for path in artifacts:
        mlflow.log_artifact(str(path))
    if record is not None:
        mlflow.log_dict(asdict(record), _TRAINING_DATA)
    for name, text in (texts or {}).items():
        mlflow.log_text(text, name)
    if tags:
        mlflow.set_tags(tags)


def download(run_id: str, artifact: str) -> Path:
    """One artifact of a run, downloaded to a local path."""
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact))


def rewrite_artifact(artifact: str, change: Callable[[Path], bool]) -> list[str]:
    """Apply `change` to a downloaded copy of this artifact in every run of the experiment that has one and upload
    it back over the old one where it returns True (consent withdrawn); returns the runs changed."""
    client = MlflowClient()
    changed = []
    for r in client.search_runs([configure()], max_results=50_000):
        if not any(a.path == artifact for a in client.list_artifacts(r.info.run_id)):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path=artifact, dst_path=tmp))
            if change(local):
                client.log_artifact(r.info.run_id, str(local))
                changed.append(r.info.run_id)
    return changed


def model_versions() -> list[str]:
    """Every registered version of the model, oldest first."""
    found = MlflowClient().search_model_versions(f"name='{REGISTERED_MODEL}'")
    return [str(v) for v in sorted(int(v.version) for v in found)]


def count_withdrawal(versions: list[str]) -> None:
    """Tag each version trained before a withdrawal with how many withdrawals followed (a count, never who)."""
    client = MlflowClient()
    for v in versions:
        current = client.get_model_version(REGISTERED_MODEL, v).tags.get(_WITHDRAWALS_TAG, "0")
        client.set_model_version_tag(REGISTERED_MODEL, v, _WITHDRAWALS_TAG, str(int(current) + 1))
