"""`simulate(cfg) -> SimulateResult`: replay a synthetic cohort against a running service, monitoring after each day."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from earlywarn.data import progress, state, store
from earlywarn.data.contract import DATE, EVENT, PARTICIPANT
from earlywarn.data.synth import COHORT_META
from earlywarn.monitoring.monitor import OVERALL, MonitorConfig, MonitorRun, monitor
from earlywarn.monitoring.rules import Thresholds

DEFAULT_PARTNERS = ("clinic-north", "app-south")


@dataclass(frozen=True)
class SimulateConfig:
    """Which cohort to replay against which service, over which days, and how to monitor it."""

    url: str  # the running service, e.g. http://127.0.0.1:3000
    db_url: str  # its prediction log: partner keys are issued there and the monitor reads it
    cohort: Path  # a folder written by `earlywarn data synth` (cohort.json says when its drift starts)
    first_day: dt.date | None = None  # default: 5 days before the drift, or the first day with a full lookback
    days: int = 30
    partners: tuple[str, ...] = DEFAULT_PARTNERS  # participants are dealt to partners in turn
    monitor_every: int = 1
    since: dt.timedelta = dt.timedelta(days=1)  # each run judges the latest day's requests (a daily job)
    horizon_days: int = 14
    outcome_window: dt.timedelta = dt.timedelta(days=28)
    reference: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    out_dir: Path = field(default_factory=lambda: state.path("simulate"))
    workspace: Path | None = None  # default: out_dir / "workspace"
    flush_timeout_s: float = 60.0


@dataclass
class SimulatedDay:
    day: dt.date
    scored: int
    outcomes: int
    run: MonitorRun | None
    in_washout: int = 0  # answered recent_event: an event was reported in the last washout_days

    def row(self) -> dict[str, Any]:
        """One line of the day's table: verdicts, alerts and headline values per scope."""
        out: dict[str, Any] = {
            "day": self.day.isoformat(),
            "scored": self.scored,
            "in_washout": self.in_washout,
            "outcomes": self.outcomes,
        }
        if self.run is None:
            return out
        for s in self.run.scopes:
            v = s.values
            out[s.scope] = {
                "verdict": s.verdict,
                "alerts": [f"{a.kind}:{a.subject}" for a in s.alerts],
                "risk_mean": v.get("MeanValue:risk"),
                "risk_drift": v.get("ValueDrift:risk"),
                "high_band_share": v.get("high_band_share"),
                "auroc": v.get("RocAuc"),
                "drifted": s.drifted_signals,
            }
        return out


@dataclass
class SimulateResult:
    drift: str | None
    drift_start: dt.date | None
    days: list[SimulatedDay]
    table_path: Path

    def runs(self, scope: str = OVERALL) -> list[tuple[dt.date, Any]]:
        return [(d.day, d.run.scope(scope)) for d in self.days if d.run is not None and _has(d.run, scope)]

    def first_alert(self, kind: str, scope: str = OVERALL, on_or_after: dt.date | None = None) -> tuple[dt.date, Any] | None:
        """The first simulated day (from a date) whose run raised an alert of this kind, with that alert."""
        for day, result in self.runs(scope):
            if on_or_after and day < on_or_after:
                continue
            hit = next((a for a in result.alerts if a.kind == kind), None)
            if hit:
                return day, hit
        return None

    def series(self, key: str, scope: str = OVERALL) -> list[tuple[dt.date, float]]:
        return [(day, r.values[key]) for day, r in self.runs(scope) if key in r.values]


def _has(run: MonitorRun, scope: str) -> bool:
    return any(s.scope == scope for s in run.scopes)


class _Cohort:
    """The cohort as a dense [participant, day, feature] array, so each simulated day is one slice."""

    def __init__(self, folder: Path):
        self.meta = json.loads((folder / COHORT_META).read_text()) if (folder / COHORT_META).exists() else {}
        table = pd.read_parquet(folder / "features.parquet")
        self.features = [c for c in table.columns if c not in (PARTICIPANT, DATE)]
        self.ids = np.asarray(sorted(table[PARTICIPANT].unique()), dtype=object)
        self.dates = pd.DatetimeIndex(sorted(table[DATE].unique()))
        cube = table.set_index([PARTICIPANT, DATE])[self.features].unstack(DATE)
        cube = cube.reindex(index=self.ids)
        self.values = cube.to_numpy(np.float64).reshape(len(self.ids), len(self.features), len(self.dates)).transpose(0, 2, 1)
        events = pd.read_csv(folder / "outcomes.csv", dtype={PARTICIPANT: str})
        self.events = events.groupby(DATE)

    def days_payload(self, who: np.ndarray, end: int, lookback: int) -> list[dict[str, Any]]:
        window = self.values[who, end - lookback + 1 : end + 1, :]
        stamps = [d.strftime("%Y-%m-%d") for d in self.dates[end - lookback + 1 : end + 1]]
        cells = np.round(window, 4).astype(object)
        cells[np.isnan(window)] = None
        return [
            {
                PARTICIPANT: str(self.ids[p]),
                "days": [{"date": s} | dict(zip(self.features, row, strict=True)) for s, row in zip(stamps, person, strict=True)],
            }
            for p, person in zip(who, cells.tolist(), strict=True)
        ]


def simulate(cfg: SimulateConfig) -> SimulateResult:
    """Post each simulated day's windows and reported outcomes to the service, then run the monitor."""
    from earlywarn.data.store.keys import create_key, revoke

    cohort = _Cohort(cfg.cohort)
    engine = store.engine_for(cfg.db_url)
    store.migrate(engine)
    client = httpx.Client(base_url=cfg.url, timeout=120)
    lookback = int(client.get("/v1/model").json()["window"]["lookback_days"])
    drift_start = dt.date.fromisoformat(cohort.meta["drift_start"]) if cohort.meta.get("drift_start") else None
    first = cfg.first_day or ((drift_start - dt.timedelta(days=5)) if drift_start else cohort.dates[lookback - 1].date())
    start = int(cohort.dates.searchsorted(pd.Timestamp(first)))
    if start >= len(cohort.dates) or cohort.dates[start].date() != first:
        raise ValueError(f"{first} is not a day of the cohort ({cohort.dates[0]:%Y-%m-%d} to {cohort.dates[-1]:%Y-%m-%d})")
    if start < lookback - 1 or start + cfg.days > len(cohort.dates):
        raise ValueError(f"the cohort cannot give {cfg.days} days of {lookback}-day windows from {first}")
    dealt = {p: np.arange(k, len(cohort.ids), len(cfg.partners)) for k, p in enumerate(cfg.partners)}
    keys = {p: create_key(engine, p) for p in cfg.partners}
    workspace = cfg.workspace or cfg.out_dir / "workspace"
    expected = {"predictions": store.count(engine, "predictions", cfg.partners)}
    expected["outcomes"] = store.count(engine, "outcomes", cfg.partners)
    days: list[SimulatedDay] = []
    try:
        for i in progress.track(range(cfg.days), f"simulate {cfg.days} days"):
            end = start + i
            day = cohort.dates[end].date()
            scored = reported = washout = 0
            todays = cohort.events.get_group(day.isoformat()) if day.isoformat() in cohort.events.groups else None
            for partner, who in dealt.items():
                auth = {"Authorization": f"Bearer {keys[partner].token}"}
                for chunk in np.array_split(who, max(1, -(-len(who) // 1000))):
                    r = client.post(
                        "/v1/risk-scores",
                        json={"as_of": day.isoformat(), "participants": cohort.days_payload(chunk, end, lookback)},
                        headers=auth,
                    )
                    r.raise_for_status()
                    statuses = [x["status"] for x in r.json()["results"]]
                    scored += statuses.count("scored")
                    washout += statuses.count("recent_event")
                    expected["predictions"] += len(chunk)
                mine = todays[todays[PARTICIPANT].isin(set(cohort.ids[who]))] if todays is not None else None
                if mine is not None and len(mine):
                    body = {
                        "outcomes": [
                            {PARTICIPANT: p, "date": day.isoformat(), "event": e}
                            for p, e in zip(mine[PARTICIPANT], mine[EVENT], strict=True)
                        ]
                    }
                    client.post("/v1/outcomes", json=body, headers=auth).raise_for_status()
                    reported += len(mine)
                    expected["outcomes"] += len(mine)
            run = None
            if (i + 1) % cfg.monitor_every == 0 or i == cfg.days - 1:
                _wait_for_log(engine, cfg.partners, expected, cfg.flush_timeout_s)
                run = monitor(
                    MonitorConfig(
                        db_url=cfg.db_url,
                        since=cfg.since,
                        partners=cfg.partners,
                        time_basis="window_end",
                        reference=cfg.reference,
                        horizon_days=cfg.horizon_days,
                        outcome_window=cfg.outcome_window,
                        thresholds=cfg.thresholds,
                        out_dir=cfg.out_dir,
                        workspace=workspace,
                        now=dt.datetime.combine(day, dt.time(23, 59), dt.UTC),
                    )
                )
            days.append(SimulatedDay(day, scored, reported, run, washout))
    finally:
        for key in keys.values():
            revoke(engine, key_id=key.key_id)
        client.close()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    table = cfg.out_dir / "simulation.json"
    table.write_text(json.dumps([d.row() for d in days], indent=1, default=float))
    return SimulateResult(cohort.meta.get("drift"), drift_start, days, table)


def _wait_for_log(engine: Any, partners: tuple[str, ...], expected: dict[str, int], timeout: float) -> None:
    """The service acknowledges after spooling; wait until its background flush has stored the day's records."""
    deadline = time.monotonic() + timeout
    while True:
        have = {t: store.count(engine, t, partners) for t in expected}
        if all(have[t] >= n for t, n in expected.items()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"prediction log holds {have}, expected {expected} after {timeout:.0f} s")
        time.sleep(0.1)
