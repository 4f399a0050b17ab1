"""`make bench-scale`: how time and peak memory grow with the cohort, each stage in a fresh process.

Stages: synthetic cohort generation, import + validation, window building, one training epoch (with evaluation),
batch scoring (`earlywarn score`) and one monitor run. Results go to BENCHMARKS.md-ready Markdown on stdout."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from earlywarn.data.ingest import DEFAULT_CHUNK_ROWS

WORK = Path("runs/bench-scale")


def _synth(p: dict[str, Any]) -> dict[str, float]:
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig

    return {"rows": synth(SynthConfig(participants=p["n"], days=p["days"], seed=1), p["dir"]).n_rows}


def _validate(p: dict[str, Any]) -> dict[str, float]:
    from earlywarn.data.ingest import load_grid

    d = load_grid(Path(p["dir"], "features.parquet"), Path(p["dir"], "outcomes.csv"), chunk_rows=p["chunk_rows"])
    return {"rows": d.participant_days}


def _windows(p: dict[str, Any]) -> dict[str, float]:
    from earlywarn.data.ingest import load_grid
    from earlywarn.data.windows import WindowConfig, build_windows

    d = load_grid(Path(p["dir"], "features.parquet"), Path(p["dir"], "outcomes.csv"), chunk_rows=p["chunk_rows"])
    t0 = time.perf_counter()
    w = build_windows(d.panel, d.outcomes, WindowConfig(), d.mode)
    return {"rows": len(w), "stage_seconds": time.perf_counter() - t0}


def _train_epoch(p: dict[str, Any]) -> dict[str, float]:
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{p['dir']}/mlflow.db"
    os.environ["EARLYWARN_ARTIFACT_ROOT"] = f"{p['dir']}/artifacts"
    from earlywarn.training.fit import FitConfig
    from earlywarn.training.train import TrainConfig, train

    r = train(
        TrainConfig(
            features=Path(p["dir"], "features.parquet"),
            outcomes=Path(p["dir"], "outcomes.csv"),
            out=Path(p["dir"], "train"),
            fit=FitConfig(max_epochs=1, progress=False, limit_batches=p["share"]),
            compare_baseline=False,
            bootstrap_reps=10,
            log_model=False,
            chunk_rows=p["chunk_rows"],
        )
    )
    return {"rows": r.metrics["n_windows"], "auroc": r.metrics["auroc"], "epoch_share": p["share"]}


def _score(p: dict[str, Any]) -> dict[str, float]:
    from earlywarn.serving.packaging import bentoml_home

    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))  # where `make run` packaged the model
    from earlywarn.serving.score_file import BatchScoreConfig, score_file

    r = score_file(BatchScoreConfig(Path(p["dir"], "features.parquet"), Path(p["dir"], "scores.parquet"), p["tag"]))
    return {"rows": r.participants}


def _monitor(p: dict[str, Any]) -> dict[str, float]:
    from bench.monitor import bench_monitor

    r = bench_monitor(p["n"], Path(p["reference"]), Path(p["dir"]))
    return {"rows": r["rows"], "stage_seconds": r["seconds"], "child_peak_mb": r["peak_mb"]}


STAGES: dict[str, Callable[[dict[str, Any]], dict[str, float]]] = {
    "synth": _synth,
    "validate": _validate,
    "windows": _windows,
    "train-epoch": _train_epoch,
    "score": _score,
    "monitor": _monitor,
}


def child(stage: str, params: str) -> None:
    """Run one stage in this (fresh) interpreter and print its time and this process's peak memory."""
    t = time.perf_counter()
    out = STAGES[stage](json.loads(params))
    out["seconds"] = time.perf_counter() - t
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def run_stage(stage: str, **params: object) -> dict[str, float]:
    """Each stage runs in its own interpreter so its peak resident memory is its own."""
    args = [sys.executable, "-m", "bench.scale", "--child", stage, json.dumps(params, default=str)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": 1.0, "stderr_tail": proc.stderr[-400:]}  # type: ignore[dict-item]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[7:])
    return result


def machine() -> str:
    kib = int(Path("/proc/meminfo").read_text().split()[1])
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, {kib // 1024**2} GiB, Python {platform.python_version()}"


def main(argv: list[str]) -> None:
    """python -m bench.scale STAGE SIZE [SIZE ...] (sizes in participants; days=365 unless STAGE=score).

    A size written N/K trains on 1/K of each epoch's batches (train-epoch only): for cohorts whose full epoch would
    take hours here; the data loading, windows, preprocessing fit and evaluation still cover the whole cohort.
    N@C reads the features file C rows at a time (default: the shipped default)."""
    stage = argv[0]
    for arg in argv[1:]:
        arg, _, chunk = arg.partition("@")
        size, _, k = arg.partition("/")
        n, share = int(size), 1 / int(k) if k else 1.0
        days = 28 if stage == "score" else 365
        folder = WORK / f"{stage if stage in ('score', 'monitor') else 'cohort'}-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        params = {
            "n": n,
            "days": days,
            "dir": folder.resolve(),
            "tag": "relapse-risk:latest",
            "reference": (WORK / "reference.parquet").resolve(),
            "share": share,
            "chunk_rows": int(chunk) if chunk else DEFAULT_CHUNK_ROWS,
        }
        if stage == "score" and not (folder / "features.parquet").exists():
            run_stage("synth", **params)
        result = {"stage": stage, "participants": n, "chunk_rows": params["chunk_rows"]} | run_stage(stage, **params)
        print(json.dumps(result), flush=True)


def reference() -> None:
    """The champion's reference sample, which the monitor stage reads."""
    from earlywarn.monitoring.inputs import champion_reference

    WORK.mkdir(parents=True, exist_ok=True)
    champion_reference().to_parquet(WORK / "reference.parquet")


if __name__ == "__main__":
    if sys.argv[1:] == ["machine"]:
        print(machine())
    elif sys.argv[1:] == ["reference"]:
        reference()
    elif sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:])
