"""The BentoML store under the state root: the champion brought in from the MLflow registry, and the bento built."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from earlywarn.data import state
from earlywarn.data.settings import MODEL_NAME
from earlywarn.training import supply_chain
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.code_copy import copy_package


def bentoml_home() -> Path:
    """BENTOML_HOME, defaulting to bentoml/ under the state root so `make run` writes nothing outside it."""
    return Path(os.environ.get("BENTOML_HOME") or state.path("bentoml")).resolve()


def use_bentoml_home() -> Path:
    """Point this process's BentoML at that store; call before the first `import bentoml`, which reads it once."""
    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    return Path(os.environ["BENTOML_HOME"])


@dataclass(frozen=True)
class ImportResult:
    tag: str
    mlflow_version: str


def import_model(alias: str = "champion") -> ImportResult:
    """Copy a registered version's verified bundle into the BentoML store, labelled with its registry version, with
    the signed promotion record that makes it champion (refused without one: moving the alias is not enough)."""
    use_bentoml_home()
    import bentoml

    from earlywarn.training import tracking

    tracking.configure()
    info = tracking.version_info(alias)
    if info is None:
        raise LookupError(f"no model version has alias '{alias}' in '{tracking.REGISTERED_MODEL}'; train and promote one first")
    tagged = tracking.promotion_records()
    with tempfile.TemporaryDirectory(prefix="earlywarn-import-") as tmp:
        folder = tracking.download_model(info.version, tmp) / supply_chain.BUNDLE_IN_MODEL
        record = supply_chain.check_champion(info.version, ModelBundle.load(folder), tagged)
        # Packaging the same version again reuses its copy; only the newest copy counts, as `:latest` is what serves.
        with contextlib.suppress(bentoml.exceptions.NotFound):
            latest = bentoml.models.get(f"{MODEL_NAME}:latest")
            if latest.info.metadata.get("mlflow_run_id") == info.run_id:
                return ImportResult(str(latest.tag), info.version)
        labels = {"mlflow_version": info.version, "alias": alias}
        with bentoml.models.create(MODEL_NAME, labels=labels, metadata={"mlflow_run_id": info.run_id}) as ref:
            shutil.copytree(folder, ref.path, dirs_exist_ok=True)  # as signed: packaging needs no signing key
            Path(ref.path, supply_chain.PROMOTION_FILE).write_text(tagged[record.version])
    return ImportResult(str(ref.tag), info.version)


def latest_model() -> str | None:
    use_bentoml_home()
    import bentoml

    try:
        return str(bentoml.models.get(f"{MODEL_NAME}:latest").tag)
    except bentoml.exceptions.NotFound:
        return None


def build_bento() -> str:
    """`bentoml build` of bentofile.yaml: the service code plus the packaged model, no MLflow needed to run it.
    The build context is a plain copy of the installed package, so a wheel builds the same bento as a checkout."""
    use_bentoml_home()
    import bentoml

    supply_chain.load_promoted(Path(bentoml.models.get(f"{MODEL_NAME}:latest").path))  # refuse an unvouched model
    with tempfile.TemporaryDirectory(prefix="earlywarn-bento-") as tmp:
        package = copy_package(Path(tmp), ("data", "training", "serving"))
        shutil.copy(package / "serving" / "bentofile.yaml", Path(tmp) / "bentofile.yaml")
        bento = bentoml.bentos.build_bentofile(str(Path(tmp) / "bentofile.yaml"), build_ctx=tmp)
    return str(bento.tag)
