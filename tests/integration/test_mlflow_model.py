"""The registered MLflow model as a data scientist uses it: in a clean environment made from its own requirements,
with no secret set, integer or decimal signals, through `mlflow models serve` as JSON and CSV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bench.launcher import free_port
from earlywarn.training.scoring import OUTPUTS
from tests.stack import clean_venv

pytestmark = pytest.mark.slow
COLUMNS = [name for name, _, _ in OUTPUTS]


@pytest.fixture(scope="module")
def champion(served_model, tmp_path_factory) -> Path:
    """The champion's MLflow model folder, downloaded and verified as `earlywarn models verify` does."""
    from earlywarn.training import supply_chain, tracking

    mp = pytest.MonkeyPatch()
    for k in ("MLFLOW_TRACKING_URI", "EARLYWARN_ARTIFACT_ROOT"):
        mp.setenv(k, served_model[k])
    tracking.configure()
    local = tracking.download_model("champion", str(tmp_path_factory.mktemp("champion")))
    supply_chain.check_model_dir(local)
    mp.undo()
    return local


def _days(small_cohort, n: int = 2) -> pd.DataFrame:
    """Two participants' last 60 days as a partner's export would hold them: steps as whole numbers."""
    table = pd.read_parquet(small_cohort.features_path)
    people = table["participant_id"].unique()[:n]
    days = table[table["participant_id"].isin(people)].groupby("participant_id").tail(60).copy()
    days["date"] = pd.to_datetime(days["date"]).dt.strftime("%Y-%m-%d")
    days["steps"] = days["steps"].fillna(0).round().astype("int64")
    return days.reset_index(drop=True)


def test_the_model_loads_and_predicts_in_a_clean_env_from_its_own_requirements(champion, small_cohort, tmp_path):
    python = clean_venv((champion / "requirements.txt").read_text(), tmp_path)
    _days(small_cohort).to_parquet(tmp_path / "days.parquet")
    script = (
        "import json, sys, importlib.util, mlflow, pandas as pd\n"
        "assert importlib.util.find_spec('earlywarn') is None  # only the model's own code\n"
        f"model = mlflow.pyfunc.load_model({str(champion)!r})\n"
        "out = model.predict(pd.read_parquet('days.parquet'))\n"
        "print(json.dumps({'columns': list(out.columns), 'status': list(out['status']),\n"
        "  'declared': model.metadata.get_output_schema().input_names()}))\n"
    )
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("EARLYWARN_", "PYTHONPATH"))}
    done = subprocess.run(
        [str(python), "-c", script],
        cwd=tmp_path,
        env=bare | {"EARLYWARN_MODE": "demo"},  # a demo-signed model; no secret of any kind is set
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["columns"] == got["declared"] == COLUMNS
    assert got["status"] == ["scored", "scored"]


def test_mlflow_models_serve_answers_json_and_csv(champion, small_cohort, tmp_path):
    port, days = free_port(), _days(small_cohort)
    env = os.environ | {"EARLYWARN_MODE": "demo", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    args = [mlflow, "models", "serve", "-m", str(champion), "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/invocations"
        as_csv = httpx.post(url, content=days.to_csv(index=False), headers={"Content-Type": "text/csv"}, timeout=60)
        split = json.loads(days.to_json(orient="split", index=False))
        as_json = httpx.post(url, json={"dataframe_split": split}, timeout=60)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    assert as_csv.status_code == 200, as_csv.text[:2000]
    assert as_json.status_code == 200, as_json.text[:2000]
    csv_rows, json_rows = as_csv.json()["predictions"], as_json.json()["predictions"]
    assert csv_rows == json_rows and [list(r) for r in csv_rows] == [COLUMNS, COLUMNS]
    assert {r["status"] for r in csv_rows} == {"scored"}
