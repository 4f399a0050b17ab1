"""`make bench` for serving: the service beside a bare server and BentoML's floor, same model, payloads and client (wrk)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from bench.launcher import ROOT, Server, free_port
from earlywarn.data.store import engine_for
from earlywarn.data.store.keys import create_key


@dataclass(frozen=True)
class BenchConfig:
    features: Path = Path("runs/cohort/features.parquet")
    seconds: int = 20
    connections: tuple[int, ...] = (4, 32)
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


def _thousand(table: pd.DataFrame) -> bytes:
    ids = sorted(table["participant_id"].unique())
    people = json.loads(payload(table, ids[:1000]))["participants"]
    # The default cohort has 500 people: repeat them under distinct ids to reach 1,000.
    people = [
        dict(p, participant_id=f"{p['participant_id']}-{i // len(people)}")
        for i, p in enumerate(people * (1000 // len(people) + 1))
    ][:1000]
    return json.dumps(_scored_as_of_newest(people), separators=(",", ":")).encode()


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"wrk latency {text!r}: not understood")
    value, unit = found.groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def wrk(url: str, body: Path, key: str | None, connections: int, seconds: int) -> dict[str, float]:
    """wrk with `connections` connections on one thread each side of the two cores: requests/s, p50, p99, non-2xx."""
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n{auth}'
            f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        )
    threads = str(min(2, connections))
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    if "Latency Distribution" not in out:  # no request completed
        raise RuntimeError(f"wrk against {url} measured nothing:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*?timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "timeouts": float(errors.group(1)) if errors else 0.0,
    }


def _big(url: str, body: bytes, key: str | None, repeats: int) -> float:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    times = []
    with httpx.Client(timeout=120, headers=headers) as client:
        for _ in range(repeats + 1):  # the first warms up
            t = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """A server command on `port`, ready once it answers any HTTP request."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(argv, cwd=ROOT, env=os.environ | env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/v1/risk-scores", timeout=2)
                break
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1/risk-scores"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


def _measure(url: str, key: str | None, single: Path, big: bytes, cfg: BenchConfig) -> dict[str, float]:
    wrk(url, single, key, 4, 5)  # warm-up, not reported
    row: dict[str, float] = {}
    for c in cfg.connections:
        for name, value in wrk(url, single, key, c, cfg.seconds).items():
            row[f"{name}@{c}"] = value
    row["big_s"] = _big(url, big, key, cfg.big_requests)
    return row


def bench(cfg: BenchConfig) -> str:
    """Measure the three servers one after another on this machine; returns the Markdown table."""
    from earlywarn.serving.packaging import bentoml_home, latest_model

    if shutil.which("wrk") is None:
        raise SystemExit("make bench needs wrk (Debian: apt-get install wrk)")
    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    tag = latest_model()
    if tag is None:
        raise SystemExit("no packaged model: run `make run` (or `earlywarn bento build`) first")
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    table = pd.read_parquet(cfg.features)
    single = cfg.workdir / "single.json"
    single.write_bytes(payload(table, sorted(table["participant_id"].unique())[:1]))
    big = _thousand(table)
    common = {"EARLYWARN_MODEL_TAG": tag, "EARLYWARN_MODE": "demo", "BENTOML_HOME": os.environ["BENTOML_HOME"]}
    rows: dict[str, dict[str, float]] = {}

    port = free_port()
    with _process(
        [sys.executable, "-m", "bench.bare", "--model-tag", tag, "--port", str(port)], common, port, cfg.workdir / "bare.log"
    ) as url:
        rows["bare Starlette + uvicorn (no auth, no log)"] = _measure(url, None, single, big, cfg)
    port = free_port()
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    argv = [bentoml, "serve", "bench.bento_min:Floor", "--host", "127.0.0.1", "--port", str(port)]
    with _process(argv, common, port, cfg.workdir / "floor.log") as url:
        rows["BentoML floor: the bare app in a minimal BentoML service"] = _measure(url, None, single, big, cfg)

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        key = create_key(engine_for(db), "bench").token
        # One partner drives the whole load here, so its rate limits must not be what is measured.
        env = common | {
            "EARLYWARN_DB_URL": db,
            "EARLYWARN_SPOOL_DIR": str(Path(tmp) / "spool"),
            "EARLYWARN_RATE_LIMIT": "100000/second",
            "EARLYWARN_DAY_LIMIT": "100000000/second",
        }
        server = Server(env, cfg.workdir / "server.log").start()
        try:
            rows["`earlywarn serve` (auth, rate limits, durable log, drivers)"] = _measure(
                f"{server.url}/v1/risk-scores", key, single, big, cfg
            )
        finally:
            server.stop()
    return _table(rows, cfg)


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _table(rows: dict[str, dict[str, float]], cfg: BenchConfig) -> str:
    cols = [f"req/s @{c}" for c in cfg.connections] + [f"p50 / p99 ms @{c}" for c in cfg.connections]
    lines = [
        f"Machine: {_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"wrk {cfg.seconds} s per cell, single-participant 28-day requests; the 1,000 x 28-day request is a median of "
        f"{cfg.big_requests}. Servers measured one after another, with wrk on the same cores.",
        "",
        "| server | " + " | ".join(cols) + " | errors (non-2xx, timeouts) | 1,000 x 28 days |",
        "|---|" + "---|" * (len(cols) + 2),
    ]
    bare = next(iter(rows.values()))
    for name, r in rows.items():
        rps = [f"{r[f'rps@{c}']:.0f} ({r[f'rps@{c}'] / bare[f'rps@{c}']:.2f}x)" for c in cfg.connections]
        lat = [f"{r[f'p50@{c}']:.1f} / {r[f'p99@{c}']:.1f}" for c in cfg.connections]
        bad = sum(r[f"non_2xx@{c}"] + r[f"timeouts@{c}"] for c in cfg.connections)
        lines.append(f"| {name} | " + " | ".join(rps + lat) + f" | {bad:.0f} | {r['big_s']:.2f} s |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(bench(BenchConfig()))
