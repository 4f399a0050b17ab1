"""`make bench` for monitoring: one monitor run over a prediction log of N predictions (time, rows/s, peak memory)."""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from earlywarn.monitoring.demo_log import NOW, fill_log


def child(db: str, ref: str, out: str) -> None:
    """One monitor run in this (fresh) interpreter: its time, peak memory and verdict as JSON."""
    from earlywarn.monitoring.monitor import MonitorConfig, monitor

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    run = monitor(
        MonitorConfig(
            db_url=db,
            since=dt.timedelta(days=7),
            reference=Path(ref),
            out_dir=Path(out),
            workspace=Path(out) / "workspace",
            now=NOW + dt.timedelta(minutes=30),
        )
    )
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = {"seconds": seconds, "peak_mb": peak / 1024, "import_mb": base / 1024, "rows": run.overall.n_current}
    print(json.dumps(summary | {"scopes": len(run.scopes), "verdict": run.verdict}))


def bench_monitor(rows: int, reference: Path, workdir: Path) -> dict[str, float]:
    """Fill a fresh SQLite log with `rows` predictions, then time one monitor run in a clean process."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / f"monitor-{rows}.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db.resolve()}"
    fill_log(url, pd.read_parquet(reference), rows)
    out = subprocess.run(
        [sys.executable, "-m", "bench.monitor", "--child", url, str(reference), str(workdir / f"monitor-{rows}")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


def table(results: list[dict[str, float]]) -> str:
    lines = ["| logged predictions | scopes | monitor run | rows/s | peak memory (after imports) |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['rows']:,.0f} | {r['scopes']:.0f} | {r['seconds']:.1f} s | {r['rows_per_s']:,.0f} | "
            f"{r['peak_mb']:,.0f} MB ({r['import_mb']:,.0f} MB) |"
        )
    return "\n".join(lines)


def main(sizes: list[int]) -> None:
    from earlywarn.monitoring.inputs import champion_reference

    workdir = Path("runs/bench")
    workdir.mkdir(parents=True, exist_ok=True)
    reference = workdir / "reference.parquet"
    champion_reference().to_parquet(reference)
    print(table([bench_monitor(n, reference, workdir) for n in sizes]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:5])
    else:
        main([int(a) for a in sys.argv[1:]] or [100_000])
