"""What vouches for a model: its signed bundle covers the code an MLflow model ships, and a signed promotion record
says who let it past which gates; packaging and serving refuse a champion without one."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from earlywarn.training.bundle import MANIFEST_FILE, BundleError, ModelBundle, sha256
from earlywarn.training.signing import Keys, SigningError, keys

PROMOTION_TAG, PROMOTION_FILE = "earlywarn.promotion", "promotion.json"
BUNDLE_IN_MODEL = Path("artifacts") / "bundle"
# Files MLflow may import or unpickle when it loads a model: each must be one the signature covers.
RUNNABLE = (".py", ".pyc", ".pth", ".so", ".pkl", ".pickle", ".cloudpickle", ".joblib")
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
FIGURES = ("auroc", "auroc_ci_low", "ece", "calibration_slope", "calibration_intercept", "events")


def covers(python_model: Path, code: Path) -> dict[str, str]:
    """The sha256 of the model file and each code file, by their paths inside the logged MLflow model."""
    out = {python_model.name: sha256(python_model)}
    for f in sorted(code.rglob("*")):
        if f.is_file():
            out[f"code/{code.name}/{f.relative_to(code).as_posix()}"] = sha256(f)
    return out


def check_model_dir(model: Path, trusted: Keys | None = None) -> ModelBundle:
    """Verify a downloaded MLflow model before MLflow runs any of it: the bundle's signature, every covered code file,
    no runnable file the signature does not cover, and MLflow's loader pointed at the covered model file."""
    bundle = ModelBundle.load(model / BUNDLE_IN_MODEL, trusted)
    covered: dict[str, str] = json.loads((model / BUNDLE_IN_MODEL / MANIFEST_FILE).read_text()).get("covers", {})
    for rel, digest in covered.items():
        if not (model / rel).is_file() or sha256(model / rel) != digest:
            raise BundleError(f"{model / rel}: the model's code differs from what was signed; refusing to run it")
    for f in model.rglob("*"):
        rel = f.relative_to(model).as_posix()
        if f.suffix in RUNNABLE and rel not in covered and not rel.startswith(BUNDLE_IN_MODEL.as_posix()):
            raise BundleError(f"{f}: code the model's signature does not cover; refusing to run it")
    pyfunc = (yaml.safe_load((model / "MLmodel").read_text()) or {}).get("flavors", {}).get("python_function", {})
    if pyfunc.get("loader_module") != CODE_LOADER or Path(str(pyfunc.get("model_code_path"))).name not in covered:
        raise BundleError(f"{model / 'MLmodel'}: loads something other than the signed model file; refusing to run it")
    return bundle


@dataclass(frozen=True)
class PromotionRecord:
    """One decision that made a version champion (`promote`) or champion again (`rollback`), signed."""

    action: str
    version: str
    run_id: str
    manifest_sha256: str
    by: str
    at: str
    gates: list[dict[str, Any]] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)
    reason: str | None = None
    figures: dict[str, float] = field(default_factory=dict)

    def payload(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), default=str).encode()

    def signed(self, signer: Keys | None = None) -> str:
        return json.dumps({"record": asdict(self), "signature": (signer or keys()).sign(self.payload())}, default=str)

    @classmethod
    def verified(cls, text: str, trusted: Keys | None = None, what: str = "promotion record") -> PromotionRecord:
        try:
            doc = json.loads(text)
            record = cls(**doc["record"])
        except (ValueError, TypeError, KeyError) as err:
            raise SigningError(f"{what}: not a promotion record ({type(err).__name__})") from None
        (trusted or keys()).verify(record.payload(), str(doc.get("signature", "")), what)
        return record


def new_record(action: str, version: str, run_id: str, bundle: ModelBundle, **decision: Any) -> PromotionRecord:
    """A record of now, by the operator running the command (`by` overrides)."""
    by = decision.pop("by", None) or getpass.getuser()
    figures = {k: round(float(v), 4) for k, v in decision.pop("figures", {}).items() if k in FIGURES and pd.notna(v)}
    gates = [g | {"detail": str(g.get("detail", ""))[:300]} for g in decision.pop("gates", [])]  # a tag holds 5,000
    at = pd.Timestamp.now(tz="UTC").isoformat(timespec="microseconds")
    return PromotionRecord(action, version, run_id, bundle.digest, by, at, gates=gates, figures=figures, **decision)


def override_tags(by: str, reason: str | None, failed: list[Any]) -> dict[str, str]:
    """Who forced a version past which failed gates and why, as tags on the version; a reason is required."""
    if not reason or not reason.strip():
        raise ValueError("--force needs --reason: say why the failed gates do not apply")
    at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    gates = "; ".join(f"{g.name}: {g.detail}" for g in failed)
    return {"override_by": by, "override_reason": reason.strip(), "override_at": at, "override_gates": gates}


def newest_record(tagged: dict[str, str], trusted: Keys | None = None) -> PromotionRecord | None:
    """The latest decision among each version's signed record (version -> tag text); records that fail to verify
    are ignored, as if absent."""
    found = []
    for version, text in tagged.items():
        try:
            record = PromotionRecord.verified(text, trusted, f"version {version}'s promotion record")
        except SigningError:
            continue
        if record.version == version:
            found.append(record)
    return max(found, key=lambda r: r.at, default=None)


def check_champion(version: str, bundle: ModelBundle, tagged: dict[str, str], trusted: Keys | None = None) -> PromotionRecord:
    """The record that makes `version` champion, or BundleError: moving the alias in the MLflow UI is not enough."""
    record = newest_record(tagged, trusted)
    if record is None or record.version != version:
        named = (
            f"the newest signed promotion record is for version {record.version}"
            if record
            else "no signed promotion record exists"
        )
        raise BundleError(
            f"version {version} is champion but {named}: the alias was moved outside `earlywarn promote`; "
            "promote it (or roll back) with `earlywarn promote`"
        )
    if record.manifest_sha256 != bundle.digest:
        raise BundleError(f"version {version}'s model is not the one its promotion record names; refusing to package it")
    return record


def load_promoted(model_dir: Path, trusted: Keys | None = None) -> ModelBundle:
    """A packaged model only with the signed promotion record packaged beside it, naming exactly this bundle."""
    bundle = ModelBundle.load(model_dir, trusted)
    path = model_dir / PROMOTION_FILE
    if not path.is_file():
        raise BundleError(f"{model_dir}: no promotion record beside the model; package a champion with `earlywarn bento build`")
    try:
        record = PromotionRecord.verified(path.read_text(), trusted, str(path))
    except SigningError as err:
        raise BundleError(f"{err}; refusing to serve the model") from None
    if record.manifest_sha256 != bundle.digest:
        raise BundleError(f"{path}: names another model than the one beside it; refusing to serve it")
    return bundle
