"""`make bench-scale`: how time and peak memory grow with the cohort, each stage in a fresh process.

Stages: synthetic cohort generation, import + validation, window building, one training epoch (with evaluation),
batch scoring (`earlywarn score`) and one monitor run. Results go to BENCHMARKS.md-ready Markdown on stdout."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

WORK = Path("runs/bench-scale")

# Each snippet runs in its own interpreter so its peak resident memory is its own; it prints {"seconds": ...}.
STAGES = {
    "synth": """
from data.synth import SynthConfig, synth
r = synth(SynthConfig(participants={n}, days={days}, seed=1), "{dir}")
out = {{"rows": r.n_rows}}
""",
    "validate": """
from data.validation import load_validated
d = load_validated("{dir}/features.parquet", "{dir}/outcomes.csv")
out = {{"rows": len(d.features)}}
""",
    "windows": """
from data.validation import load_validated
from data.windows import WindowConfig, build_windows
d = load_validated("{dir}/features.parquet", "{dir}/outcomes.csv")
t0 = time.perf_counter()
w = build_windows(d.features, d.outcomes, WindowConfig(), d.mode)
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
                      fit=FitConfig(max_epochs=1, progress=False), compare_baseline=False, bootstrap_reps=10, log_model=False))
out = {{"rows": 0, "auroc": r.metrics["auroc"]}}
""",
    "score": """
from pathlib import Path
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
    """python -m monitoring.scale_bench STAGE SIZE [SIZE ...] (sizes in participants; days=365 unless STAGE=score)."""
    stage, sizes = argv[0], [int(a) for a in argv[1:]]
    for n in sizes:
        days = 28 if stage == "score" else 365
        folder = WORK / f"{stage if stage in ('score', 'monitor') else 'cohort'}-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        params = {
            "n": n,
            "days": days,
            "dir": folder.resolve(),
            "tag": "relapse-risk:latest",
            "reference": (WORK / "reference.parquet").resolve(),
        }
        if stage == "score" and not (folder / "features.parquet").exists():
            run_stage("synth", **params)
        print(json.dumps({"stage": stage, "participants": n} | run_stage(stage, **params)), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["machine"]:
        print(machine())
    else:
        main(sys.argv[1:])
