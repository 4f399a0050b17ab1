"""`make bench` for serving: Locust against the real service, next to in-process scoring of the same payloads."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.launcher import Server
from data.keys import create_key
from data.prediction_log import engine_for

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchConfig:
    features: Path = Path("runs/cohort/features.parquet")
    rate: float = 200.0  # target single-participant requests per second
    seconds: int = 30
    users: int = 20
    big_requests: int = 5
    workdir: Path = Path("runs/bench")


def payload(table: pd.DataFrame, ids: list[str], days: int = 28) -> bytes:
    sub = table[table["participant_id"].isin(ids)].groupby("participant_id").tail(days)
    feats = [c for c in sub.columns if c not in ("participant_id", "date")]
    people = []
    for pid, g in sub.groupby("participant_id", sort=False):
        rows = g[feats].astype(float).round(3).to_numpy()
        dates = g["date"].dt.strftime("%Y-%m-%d").tolist()
        people.append(
            {
                "participant_id": f"bench-{pid}",
                "days": [
                    {"date": d} | {f: (None if np.isnan(v) else float(v)) for f, v in zip(feats, row, strict=True)}
                    for d, row in zip(dates, rows, strict=True)
                ],
            }
        )
    return json.dumps(_scored_as_of_newest(people), separators=(",", ":")).encode()


def _scored_as_of_newest(people: list[dict]) -> dict:
    """The request body, scored as of its newest day (the synthetic cohort lies in the past)."""
    return {"as_of": max(p["days"][-1]["date"] for p in people), "participants": people}


def in_process(body: bytes, repeats: int) -> float:
    """Median seconds to validate and score a body without HTTP, with the packaged model."""
    import bentoml

    from serving.config import ServeConfig
    from serving.schema import score_request_model
    from serving.scoring import assemble, score
    from training.bundle import ModelBundle

    bundle = ModelBundle.load(bentoml.models.get(ServeConfig.from_env().model_tag).path)
    model = score_request_model(bundle.features)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        req: Any = model.model_validate_json(body)
        rows = [
            (p.participant_id, [(d.date, [getattr(d, f) for f in bundle.features]) for d in p.days]) for p in req.participants
        ]
        score(bundle, assemble(rows, len(bundle.features)))  # results, summaries and inputs, as the service builds them
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _locust(url: str, body: Path, key: str, users: int, user_rate: float, seconds: int, prefix: Path) -> dict[str, float]:
    env = os.environ | {
        "EARLYWARN_BENCH_PAYLOAD": str(body),
        "EARLYWARN_BENCH_KEY": key,
        "EARLYWARN_BENCH_USER_RATE": str(user_rate),
    }
    cmd = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(ROOT / "serving" / "locustfile.py"),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--only-summary",
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    with open(f"{prefix}_stats.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return {
        "rps": float(row["Requests/s"]),
        "p50": float(row["50%"]),
        "p95": float(row["95%"]),
        "p99": float(row["99%"]),
        "requests": float(row["Request Count"]),
        "failures": float(row["Failure Count"]),
    }


def bench(cfg: BenchConfig) -> str:
    """Run the load tests and in-process timings; returns a Markdown table of what was measured."""
    from serving.config import bentoml_home
    from serving.packaging import latest_model

    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    if latest_model() is None:
        raise SystemExit("no packaged model: run `make run` (or `earlywarn serve --build`) first")
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    table = pd.read_parquet(cfg.features)
    ids = sorted(table["participant_id"].unique())
    single, big = cfg.workdir / "single.json", cfg.workdir / "big.json"
    single.write_bytes(payload(table, ids[:1]))
    people = json.loads(payload(table, ids[:1000]))["participants"]
    # The default cohort has 500 people: repeat them under distinct ids to reach 1,000.
    people = [
        dict(p, participant_id=f"{p['participant_id']}-{i // len(people)}")
        for i, p in enumerate(people * (1000 // len(people) + 1))
    ][:1000]
    big.write_bytes(json.dumps(_scored_as_of_newest(people), separators=(",", ":")).encode())
    db = f"sqlite:///{(cfg.workdir / 'bench.db').resolve()}"
    key = create_key(engine_for(db), "bench").token
    # One partner drives the whole load here, so its rate limit must not be what is measured.
    env = {
        "EARLYWARN_DB_URL": db,
        "EARLYWARN_SPOOL_DIR": str((cfg.workdir / "spool").resolve()),
        "EARLYWARN_RATE_LIMIT": "100000/second",
        "EARLYWARN_DAY_LIMIT": "100000000/second",
        "EARLYWARN_MODE": "demo",  # a throwaway store and the demo secret: nothing here is a real person
    }
    t_single = in_process(single.read_bytes(), 200)
    t_big = in_process(big.read_bytes(), 3)
    server = Server(env, cfg.workdir / "server.log").start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _locust(server.url, single, key, cfg.users, cfg.rate / cfg.users, 10, Path(tmp) / "warmup")  # not reported
            paced = _locust(server.url, single, key, cfg.users, cfg.rate / cfg.users, cfg.seconds, Path(tmp) / "paced")
            flat = _locust(server.url, single, key, cfg.users, 0, cfg.seconds, Path(tmp) / "flat")
        big_times = []
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as client:
            for _ in range(cfg.big_requests):
                t = time.perf_counter()
                r = client.post(server.url + "/v1/risk-scores", content=big.read_bytes())
                big_times.append(time.perf_counter() - t)
                r.raise_for_status()
    finally:
        server.stop()
    big_s = float(np.median(big_times))
    rows = [
        (
            f"single participant, paced at {cfg.rate:.0f} req/s for {cfg.seconds} s: achieved",
            f"{paced['rps']:.1f} req/s, {paced['failures']:.0f} failures of {paced['requests']:.0f}",
        ),
        ("… latency p50 / p95 / p99", f"{paced['p50']:.0f} / {paced['p95']:.0f} / {paced['p99']:.0f} ms"),
        (
            f"single participant, {cfg.users} users without pause: throughput",
            f"{flat['rps']:.1f} req/s ({flat['failures']:.0f} failures)",
        ),
        ("… latency p50 / p95 / p99", f"{flat['p50']:.0f} / {flat['p95']:.0f} / {flat['p99']:.0f} ms"),
        (
            f"1,000 participants x 28 days over HTTP (median of {cfg.big_requests})",
            f"{big_s:.2f} s = {1000 / big_s:.0f} participants/s",
        ),
        ("in-process: validate + score 1 participant", f"{t_single * 1000:.1f} ms"),
        ("in-process: validate + score 1,000 participants", f"{t_big:.2f} s = {1000 / t_big:.0f} participants/s"),
    ]
    lines = ["| measurement | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(bench(BenchConfig()))
