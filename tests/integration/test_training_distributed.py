"""The same command trains with DDP, on real data with CV, under Optuna, and against PostgreSQL-backed services."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from earlywarn.training import tracking
from earlywarn.training.fit import FitConfig
from earlywarn.training.train import TrainConfig
from earlywarn.training.tune import TuneConfig, tune
from tests.pg import pg_url, require_postgres, scratch_database

pytestmark = pytest.mark.slow
EARLYWARN = str(Path(sys.executable).with_name("earlywarn"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "EARLYWARN_ARTIFACT_ROOT": str(tmp_path / "art"),
    }
    return env | extra


def _train_cmd(cohort, *args: str) -> list[str]:
    """`earlywarn train` on a cohort's tables, with extra arguments."""
    return [EARLYWARN, "train", "--features", str(cohort.features_path), "--outcomes", str(cohort.outcomes_path), *args]


def test_ddp_two_cpu_processes(small_cohort, tmp_path):
    cmd = _train_cmd(
        small_cohort, "--devices", "2", "--strategy", "ddp", "--max-epochs", "2", "--no-baseline", "--out", str(tmp_path / "out")
    )
    done = subprocess.run(cmd, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "registered version 1" in done.stdout
    assert "world_size: 2" in done.stderr or "distributed_backend=gloo" in done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0 <= metrics["auroc"] <= 1


def test_globem_assessment_mode_with_cross_validation(globem_path, tmp_path):
    env = _env(tmp_path)
    subprocess.run(
        [EARLYWARN, "data", "import-globem", str(globem_path), "--out", str(tmp_path / "g")],
        env=env,
        check=True,
        capture_output=True,
    )
    cmd = [
        EARLYWARN,
        "train",
        "--features",
        str(tmp_path / "g" / "features.parquet"),
        "--outcomes",
        str(tmp_path / "g" / "outcomes.csv"),
        "--cv-folds",
        "5",
        "--model",
        "additive",
        "--min-observed-days",
        "7",
        "--max-epochs",
        "8",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path / "out"),
    ]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["n_participants"] == 40 and m["n_windows"] >= 100
    assert m["auroc_ci_low"] <= m["auroc"] <= m["auroc_ci_high"]
    assert "oracle_auroc" not in m and "subgroup_platform_ios_auroc" in m


def test_tune_nested_runs_pruning_and_best_registered(small_cohort, mlflow_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = TrainConfig(
        features=small_cohort.features_path,
        outcomes=small_cohort.outcomes_path,
        out=tmp_path / "tune",
        fit=FitConfig(max_epochs=3, progress=False),
        bootstrap_reps=20,
        compare_baseline=False,
    )
    result = tune(TuneConfig(base, trials=4, study="t"))
    assert result.n_trials == 4 and result.final is not None and result.final.model_version == "1"
    study = optuna.load_study(
        study_name="t",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "runs/optuna/journal.log"))
        ),
    )
    assert len(study.trials) == 4
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id])
    parent = next(r for r in runs if r.info.run_name == "tune-t")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) >= 4  # every completed or pruned trial, plus the retrained best
    assert tracking.version_info("challenger").version == "1"


def test_two_tune_workers_share_a_postgresql_study(small_cohort, tmp_path):
    require_postgres()
    study = f"shared-{os.getpid()}-{int(time.time())}"
    with scratch_database() as db:
        storage = pg_url(db)
        optuna.create_study(study_name=study, storage=storage, direction="maximize")  # schema created once, no race
        # Both workers log to one MLflow store: create its tables first, as a deployment would.
        MlflowClient(tracking_uri=_env(tmp_path)["MLFLOW_TRACKING_URI"]).search_experiments()
        cmd = [
            EARLYWARN,
            "tune",
            "--trials",
            "1",
            "--storage",
            storage,
            "--study",
            study,
            "--max-epochs",
            "2",
            "--features",
            str(small_cohort.features_path),
            "--outcomes",
            str(small_cohort.outcomes_path),
            "--no-retrain-best",
        ]
        workers = [
            subprocess.Popen(cmd, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=600) for w in workers]
        assert all(w.returncode == 0 for w in workers), [o[1][-2000:] for o in outputs]
        trials = optuna.load_study(study_name=study, storage=storage).trials
        assert len(trials) == 2 and len({t.number for t in trials}) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_training_against_an_mlflow_server_on_postgresql(small_cohort, tmp_path):
    require_postgres()
    port = _free_port()
    with scratch_database() as db:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")),
                "server",
                "--backend-store-uri",
                pg_url(db),
                "--artifacts-destination",
                str(tmp_path / "server-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            uri = f"http://127.0.0.1:{port}"
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.5)
            env = _env(tmp_path, MLFLOW_TRACKING_URI=uri)
            # the sequence model only: the nested model choice is tested in test_model_choice.py
            cmd = _train_cmd(
                small_cohort, "--model", "additive", "--max-epochs", "2", "--no-baseline", "--out", str(tmp_path / "out")
            )
            done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            mv = client.get_model_version_by_alias("relapse-risk", "challenger")
            assert mv.version == "1" and client.get_run(mv.run_id).data.metrics["auroc"] > 0
            assert any((tmp_path / "server-artifacts").rglob("model_card.md"))
        finally:
            server.terminate()
            server.wait(timeout=30)
