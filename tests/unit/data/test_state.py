"""One state root: every store lives under EARLYWARN_HOME, whatever the working directory; explicit variables win."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from earlywarn.cli import app
from earlywarn.data import state, store
from earlywarn.data.settings import settings
from earlywarn.data.store.keys import list_keys
from earlywarn.serving.packaging import bentoml_home
from earlywarn.training import tracking


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var in ("EARLYWARN_DB_URL", "EARLYWARN_DB_URL_FILE", "BENTOML_HOME", "MLFLOW_TRACKING_URI", "EARLYWARN_SPOOL_DIR"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "state"
    monkeypatch.setenv(state.HOME_VAR, str(root))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root


def test_every_store_lives_under_the_state_root(home):
    assert store.url_from_env() == f"sqlite:///{home / 'earlywarn.db'}"
    assert settings().spool_path() == home / "spool"
    assert bentoml_home() == home / "bentoml"
    assert tracking.tracking_uri() == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"


def test_a_key_created_from_any_folder_is_in_the_store_the_service_reads(home):
    res = CliRunner().invoke(app, ["keys", "create", "--partner", "acme"])
    assert res.exit_code == 0, res.output
    keys = list_keys(store.engine_for(store.url_from_env()))
    assert [k["partner"] for k in keys] == ["acme"] and (home / "earlywarn.db").exists()
    assert not (home.parent / "elsewhere" / "runs").exists()


def test_explicit_variables_still_override_their_part(home, tmp_path, monkeypatch):
    monkeypatch.setenv("EARLYWARN_DB_URL", f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bento"))
    assert store.url_from_env().endswith("other.db")
    assert bentoml_home() == tmp_path / "bento"


def test_the_cli_pins_a_relative_root_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(state.HOME_VAR, "relative-home")
    assert state.pin_home() == tmp_path / "relative-home"
    assert os.environ[state.HOME_VAR] == str(tmp_path / "relative-home")
