"""The built wheel installs one import name, `earlywarn`, and an installed wheel builds the bento like a checkout."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench.launcher import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(out)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    return next(out.glob("earlywarn-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; the project's dependencies are then borrowed from this venv's
    site-packages through a plain path line (its .pth files, the editable install's among them, are not run from
    there, so `earlywarn` resolves to the wheel's copy)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    own = Path(
        subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True).stdout.strip()
    )
    # Installed before the borrowed path exists: pip would otherwise find this venv's editable earlywarn there and
    # uninstall it.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)], check=True)
    (own / "borrowed-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    return venv


def test_the_wheel_holds_one_top_level_name_and_its_data_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "earlywarn",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    for shipped in ("earlywarn/py.typed", "earlywarn/serving/bentofile.yaml", "earlywarn/serving/requirements.lock"):
        assert shipped in names
    assert any(n.startswith("earlywarn/training/locales/") and n.endswith(".po") for n in names)
    assert {"earlywarn/data/contract.py", "earlywarn/training/train.py", "earlywarn/monitoring/monitor.py"} <= set(names)


def test_installed_earlywarn_is_the_only_name_and_imports_from_the_venv(installed, tmp_path):
    probe = (
        "import importlib.util as u, earlywarn, earlywarn.serving.results, earlywarn.training.train\n"
        "print(earlywarn.__file__)\n"
        "print([m for m in ('data', 'training', 'serving', 'monitoring') if u.find_spec(m)])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([installed / "bin" / "python", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    where, bare = out.stdout.splitlines()
    assert Path(sys.executable).with_name("earlywarn").is_file(), "installing the wheel removed this venv's own earlywarn"
    assert where.startswith(str(installed)), where
    assert bare == "[]", bare


def test_an_installed_wheel_builds_the_bento_and_reuses_the_packaged_model(installed, served_model, tmp_path, monkeypatch):
    import bentoml

    from earlywarn.serving.packaging import import_model

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        k: v for k, v in served_model.items() if not k.startswith("_")
    }
    run_id = bentoml.models.get(served_model["EARLYWARN_MODEL_TAG"]).info.metadata["mlflow_run_id"]

    def copies() -> int:
        return sum(m.info.metadata.get("mlflow_run_id") == run_id for m in bentoml.models.list("relapse-risk"))

    built = subprocess.run(
        [installed / "bin" / "earlywarn", "bento", "build"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stderr[-3000:]
    # Packaging the same registry version again (as every `bento build` and `serve --build` does) adds no copy.
    after_build = copies()
    for k, v in served_model.items():
        if not k.startswith("_"):
            monkeypatch.setenv(k, v)
    again = import_model()
    assert copies() == after_build and bentoml.models.get(again.tag).info.metadata["mlflow_run_id"] == run_id
    tag = built.stdout.strip().rsplit("bento ", 1)[1]
    src = Path(served_model["BENTOML_HOME"], "bentos", *tag.split(":"), "src")
    assert (src / "earlywarn" / "serving" / "service.py").is_file() and (src / "earlywarn" / "data" / "contract.py").is_file()
    assert not (src / "earlywarn" / "monitoring").exists()
