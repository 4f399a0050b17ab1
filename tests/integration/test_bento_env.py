"""The built bento starts and scores in a clean virtualenv made only from its own requirements (what containerize ships)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import httpx
import pandas as pd
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bench.launcher import ROOT, Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from tests.stack import clean_venv, risk_request

pytestmark = pytest.mark.slow

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "serving" / "requirements.lock"


def _pins(text: str) -> dict[str, str]:
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M)}


def test_serving_extra_is_spelled_as_in_dependencies_and_the_lock_satisfies_it():
    base = {Requirement(r).name: str(Requirement(r)) for r in PYPROJECT["dependencies"]}
    serving = [Requirement(r) for r in PYPROJECT["optional-dependencies"]["serving"]]
    drifted = [str(r) for r in serving if base.get(r.name) != str(r)]
    assert not drifted, f"serving extra differs from dependencies for: {drifted}"
    pins = _pins(LOCK.read_text())
    for req in serving:
        name = canonicalize_name(req.name)  # fhir.resources is pinned as fhir-resources
        assert name in pins, f"{req.name} is in the serving extra but not in {LOCK.name}; run `make lock`"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (req, pins[name])
    assert pins["torch"].endswith("+cpu")
    training_only = {"mlflow", "pytorch-lightning", "lightning", "torchmetrics", "matplotlib", "optuna", "evidently"}
    assert not training_only & set(pins), training_only & set(pins)


@pytest.fixture(scope="module")
def bento(served_model, tmp_path_factory):
    """`earlywarn bento build` as a user runs it on the session's MLflow store; (tag, its folder in the store)."""
    env = os.environ | {k: v for k, v in served_model.items() if not k.startswith("_")}
    earlywarn = str(Path(sys.executable).with_name("earlywarn"))
    built = subprocess.run([earlywarn, "bento", "build"], env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().rsplit("bento ", 1)[1]
    shown = subprocess.run([earlywarn, "bento", "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert shown.strip() == f"export BENTOML_HOME={served_model['BENTOML_HOME']}"
    return tag, Path(served_model["BENTOML_HOME"], "bentos", *tag.split(":"))


def test_bento_carries_the_model_and_only_the_locked_packages(bento, served_model, tmp_path):
    import bentoml

    tag, folder = bento
    assert tag.startswith("earlywarn:")
    assert "relapse-risk:" in (folder / "bento.yaml").read_text()
    shipped = _pins((folder / "env" / "python" / "requirements.txt").read_text())
    assert {k: v for k, v in shipped.items() if k != "bentoml"} == {
        k: v for k, v in _pins(LOCK.read_text()).items() if k != "bentoml"
    }
    assert (
        "--extra-index-url https://download.pytorch.org/whl/cpu" in (folder / "env" / "python" / "requirements.txt").read_text()
    )
    # The exported archive carries the model itself, so a deployment needs no MLflow.
    archive = bentoml.export_bento(tag, str(tmp_path / "earlywarn.bento"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert any("models/relapse-risk" in n and n.endswith("weights.pt") for n in names), names[:20]


def test_bento_serves_from_a_clean_virtualenv_built_from_its_own_requirements(bento, served_model, small_cohort, tmp_path):
    tag, folder = bento
    # As the bento's Dockerfile does: `uv venv`, then `uv pip install -r env/python/requirements.txt`.
    python = clean_venv((folder / "env" / "python" / "requirements.txt").read_text(), tmp_path)
    venv = python.parents[1]
    # Nothing of the project or of training is importable there: what the service needs must come with the bento.
    unwanted = ("mlflow", "lightning", "pytorch_lightning", "optuna", "evidently", "earlywarn", "data", "serving")
    probe = f"import importlib.util as u; print([m for m in {unwanted!r} if u.find_spec(m)])"
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=bare, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]", found.stdout

    db = f"sqlite:///{tmp_path / 'log.db'}"
    key = create_key(store.engine_for(db), "acme").token
    env = {
        "BENTOML_HOME": served_model["BENTOML_HOME"],
        "EARLYWARN_DB_URL": db,
        "EARLYWARN_SPOOL_DIR": str(tmp_path / "spool"),
        "EARLYWARN_HOME": str(tmp_path / "state"),
        "PYTHONPATH": "",
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    srv = Server(env, tmp_path / "server.log", target=tag, bentoml=venv / "bin" / "bentoml", cwd=tmp_path).start(timeout=240)
    try:
        import psutil

        workers = psutil.Process(srv.proc.pid).children(recursive=True) if srv.proc else []
        assert workers and all(w.cmdline()[0].startswith(str(venv)) for w in workers), [w.cmdline()[:2] for w in workers]
        table = pd.read_parquet(small_cohort.features_path)
        body = risk_request(table, [table["participant_id"].iloc[0]], "bento-")
        r = httpx.post(
            f"{srv.url}/v1/risk-scores",
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        result = r.json()["results"][0]
        assert result["status"] == "scored" and 0 <= result["risk"] <= 1
    finally:
        srv.stop()
