"""The model supply chain on a real MLflow store: moving the alias by hand is not enough, planted code never runs,
and loading a model needs a public key, not the pseudonymisation secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from earlywarn.training.bundle import BundleError, ModelBundle
from tests.drill import record as drill_row
from tests.stack import tiny_bundle

FEATURES = ["steps", "sleep_duration_h"]
EARLYWARN = str(Path(sys.executable).with_name("earlywarn"))


def _tagged() -> dict[str, str]:
    from earlywarn.training import tracking

    return tracking.promotion_records()


def _stored_model_dir(version: str) -> Path:
    """Where the store keeps a version's files (a local artifact root): what someone with write access could edit."""
    from mlflow import MlflowClient

    from earlywarn.training import tracking

    return Path(MlflowClient().get_model_version_download_uri(tracking.REGISTERED_MODEL, version).removeprefix("file://"))


def _log(bundle: ModelBundle) -> str:
    from earlywarn.training import tracking

    with tracking.run(run_name="supply-chain"):
        version = tracking.log_model(bundle, register=True)
    assert version is not None
    return version


def _frame(days: int = 40) -> pd.DataFrame:
    dates = pd.date_range("2025-01-01", periods=days)
    return pd.DataFrame({"participant_id": "p1", "date": dates.strftime("%Y-%m-%d"), "steps": 8000.0, "sleep_duration_h": 7.0})


def test_an_alias_moved_by_hand_is_refused_by_packaging(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    from earlywarn.training import supply_chain, tracking
    from earlywarn.training.signing import Keys, keygen, parse_private

    bundle = tiny_bundle()
    first = _log(bundle)
    promoted = supply_chain.new_record("promote", first, "", tracking.load_bundle(first), by="test")
    tracking.tag_version(first, "", {supply_chain.PROMOTION_TAG: promoted.signed()})
    tracking.set_champion(first, [first])
    assert supply_chain.check_champion(first, tracking.load_bundle(first), _tagged()).version == first

    second = _log(bundle)  # never promoted: it passed no gates
    MlflowClient().set_registered_model_alias(tracking.REGISTERED_MODEL, "champion", second)  # what the UI does
    with pytest.raises(BundleError, match="moved outside `earlywarn promote`"):
        supply_chain.check_champion(second, tracking.load_bundle(second), _tagged())
    forger = Keys(parse_private(keygen()[0]), {})  # a record signed with a key the deployment does not trust
    forged = supply_chain.new_record("promote", second, "", tracking.load_bundle(second), by="mallory")
    tracking.tag_version(second, "", {supply_chain.PROMOTION_TAG: forged.signed(forger)})
    with pytest.raises(BundleError, match="newest signed promotion record is for version 1"):
        supply_chain.check_champion(second, tracking.load_bundle(second), _tagged())

    env = os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri, "EARLYWARN_HOME": str(tmp_path / "state")}
    env["BENTOML_HOME"] = str(tmp_path / "bentoml")
    done = subprocess.run([EARLYWARN, "bento", "build"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "moved outside `earlywarn promote`" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "bentoml" / "bentos").exists()  # nothing was built
    drill_row(
        "champion alias moved outside promotion (OWASP API5)",
        "alias moved by hand to a version that passed no gates; then a promotion record forged with another key",
        "`earlywarn bento build` refused both: no signed promotion record names that version",
    )


def test_planted_code_never_runs_and_loading_needs_no_pseudonymisation_secret(mlflow_uri, tmp_path, monkeypatch):
    from earlywarn.training import tracking
    from earlywarn.training.signing import keygen

    seed, public, _ = keygen()
    monkeypatch.setenv("EARLYWARN_MODE", "production")
    monkeypatch.setenv("EARLYWARN_SIGNING_KEY", seed)  # where training runs
    monkeypatch.delenv("EARLYWARN_HMAC_KEY", raising=False)
    version = _log(tiny_bundle())
    monkeypatch.delenv("EARLYWARN_SIGNING_KEY")  # a data scientist's notebook: the public key only
    monkeypatch.setenv("EARLYWARN_VERIFY_KEYS", public)
    scored = tracking.load_pyfunc(version).predict(_frame())
    assert list(scored["participant_id"]) == ["p1"] and scored["status"].iloc[0] == "scored"

    stored, marker = _stored_model_dir(version), tmp_path / "planted-code-ran"
    plant = f"\nopen({str(marker)!r}, 'w').write('ran')\n"
    init = stored / "code" / "earlywarn" / "data" / "__init__.py"
    original = init.read_text()
    init.write_text(original + plant)
    with pytest.raises(BundleError, match="differs from what was signed"):
        tracking.load_pyfunc(version)
    init.write_text(original)
    (stored / "code" / "earlywarn" / "sitecustom.py").write_text(plant)
    with pytest.raises(BundleError, match="does not cover"):
        tracking.load_pyfunc(version)
    assert not marker.exists()
    drill_row(
        "code planted in a registered MLflow model",
        "a line appended to a shipped module; a new module added beside them",
        "refused before MLflow ran any of it (code covered by the bundle's signature); loading needed only the public key",
    )


def test_a_packaged_model_serves_only_with_its_own_signed_promotion_record(tmp_path):
    from earlywarn.training import supply_chain
    from earlywarn.training.signing import Keys, keygen, parse_private

    bundle, other = tiny_bundle(), tiny_bundle()
    folder = bundle.save(tmp_path / "packaged")
    with pytest.raises(BundleError, match="no promotion record"):
        supply_chain.load_promoted(folder)
    other.save(tmp_path / "other", covers={"x.py": "0"})
    record_of_other = supply_chain.new_record("promote", "1", "", other)
    (folder / supply_chain.PROMOTION_FILE).write_text(record_of_other.signed())
    with pytest.raises(BundleError, match="names another model"):
        supply_chain.load_promoted(folder)
    forged = supply_chain.new_record("promote", "1", "", bundle).signed(Keys(parse_private(keygen()[0]), {}))
    (folder / supply_chain.PROMOTION_FILE).write_text(forged)
    with pytest.raises(BundleError, match="does not trust"):
        supply_chain.load_promoted(folder)
    (folder / supply_chain.PROMOTION_FILE).write_text(supply_chain.new_record("promote", "1", "", bundle).signed())
    assert supply_chain.load_promoted(folder).digest == bundle.digest
    drill_row(
        "packaged model without its promotion",
        "no record; another model's record; a record signed with an untrusted key",
        "the service refuses each at start; its own signed record serves",
    )
