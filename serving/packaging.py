"""Bring the champion from the MLflow registry into the BentoML model store, and build the bento."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serving.config import MODEL_NAME, bentoml_home

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ImportResult:
    tag: str
    mlflow_version: str


def import_model(alias: str = "champion") -> ImportResult:
    """Copy a registered version's verified bundle into the BentoML store, labelled with its registry version."""
    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    import bentoml

    from training import tracking

    tracking.configure()
    info = tracking.version_info(alias)
    if info is None:
        raise LookupError(f"no model version has alias '{alias}' in '{tracking.REGISTERED_MODEL}'; train and promote one first")
    bundle = tracking.load_bundle(info.version)
    with bentoml.models.create(
        MODEL_NAME, labels={"mlflow_version": info.version, "alias": alias}, metadata={"mlflow_run_id": info.run_id}
    ) as ref:
        bundle.save(ref.path)
    return ImportResult(str(ref.tag), info.version)


def latest_model() -> str | None:
    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    import bentoml

    try:
        return str(bentoml.models.get(f"{MODEL_NAME}:latest").tag)
    except bentoml.exceptions.NotFound:
        return None


def build_bento() -> str:
    """`bentoml build` of bentofile.yaml: the service code plus the packaged model, no MLflow needed to run it."""
    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    import bentoml

    bento = bentoml.bentos.build_bentofile(str(ROOT / "bentofile.yaml"), build_ctx=str(ROOT))
    return str(bento.tag)
