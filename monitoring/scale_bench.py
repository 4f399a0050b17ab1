"""`make bench-scale`: how time and peak memory grow with the cohort, each stage in a fresh process.

Stages: synthetic cohort generation, import + validation, window building, one training epoch (with evaluation),
batch scoring (`earlywarn score`) and one monitor run. Results go to BENCHMARKS.md-ready Markdown on stdout."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

from data.ingest import DEFAULT_CHUNK_ROWS

WORK = Path("runs/bench-scale")

# Each snippet runs in its own interpreter so its peak resident memory is its own; it prints {"seconds": ...}.
STAGES = {
    "synth": """
from data.synth import SynthConfig, synth
r = synth(SynthConfig(participants={n}, days={days}, seed=1), "{dir}")
out = {{"rows": r.n_rows}}
""",
    "validate": """
from data.ingest import load_grid
d = load_grid("{dir}/features.parquet", "{dir}/outcomes.csv", chunk_rows={chunk_rows})
out = {{"rows": d.participant_days}}
""",
    "windows": """
from data.ingest import load_grid
from data.windows import WindowConfig, build_windows
d = load_grid("{dir}/features.parquet", "{dir}/outcomes.csv", chunk_rows={chunk_rows})
t0 = time.perf_counter()
w = build_windows(d.panel, d.outcomes, WindowConfig(), d.mode)
out = {{"rows": len(w), "stage_seconds": time.perf_counter() - t0}}
""",
    "train-epoch": """
import os
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///{dir}/mlflow.db"
os.environ["EARLYWARN_ARTIFACT_ROOT"] = "{dir}/artifacts"
from pathlib import Path
from training.fit import FitConfig
from training.train import TrainConfig, train
r = train(TrainConfig(features=Path("{dir}/features.parquet"), outcomes=Path("{dir}/outcomes.csv"), out=Path("{dir}/train"),
                      fit=FitConfig(max_epochs=1, progress=False, limit_batches={share}), compare_baseline=False,
                      bootstrap_reps=10, log_model=False, chunk_rows={chunk_rows}))
out = {{"rows": r.metrics["n_windows"], "auroc": r.metrics["auroc"], "epoch_share": {share}}}
""",
    "score": """
import os
from pathlib import Path
from serving.config import bentoml_home
os.environ.setdefault("BENTOML_HOME", str(bentoml_home().resolve()))  # where `make run` packaged the model
from serving.batch import BatchScoreConfig, score_file
r = score_file(BatchScoreConfig(Path("{dir}/features.parquet"), Path("{dir}/scores.parquet"), "{tag}"))
out = {{"rows": r.participants}}
""",
    "monitor": """
from pathlib import Path
from monitoring.bench import bench_monitor
r = bench_monitor({n}, Path("{reference}"), Path("{dir}"))
out = {{"rows": r["rows"], "stage_seconds": r["seconds"], "child_peak_mb": r["peak_mb"]}}
""",
}

_RUNNER = """
import json, resource, time
t = time.perf_counter()
{body}
out["seconds"] = time.perf_counter() - t
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def run_stage(stage: str, **params: object) -> dict[str, float]:
    code = _RUNNER.format(body=STAGES[stage].format(**params))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": 1.0, "stderr_tail": proc.stderr[-400:]}  # type: ignore[dict-item]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[7:])
    return result


def machine() -> str:
    import os

    kib = int(Path("/proc/meminfo").read_text().split()[1])
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, {kib // 1024**2} GiB, Python {platform.python_version()}"


def main(argv: list[str]) -> None:
    """python -m monitoring.scale_bench STAGE SIZE [SIZE ...] (sizes in participants; days=365 unless STAGE=score).

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


if __name__ == "__main__":
    if sys.argv[1:] == ["machine"]:
        print(machine())
    else:
        main(sys.argv[1:])
