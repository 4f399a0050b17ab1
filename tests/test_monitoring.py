"""Monitoring over a real prediction log with real Evidently reports: quiet when nothing changed, specific when it did."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest

from data import prediction_log
from data.summary import summary_columns
from monitoring.monitor import MonitorConfig, Thresholds, monitor

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def reference(served_model):
    import glob

    return pd.read_parquet(glob.glob(f"{served_model['_root']}/train/reference.parquet")[0])


def _log(engine, rows: pd.DataFrame, partner: str = "acme", day: dt.date = dt.date(2025, 5, 30)) -> None:
    names = [
        c
        for c in summary_columns(
            [c for c in rows.columns if c not in ("risk", "band", "label", "days_observed") and not c.endswith("__missing")]
        )
    ]
    records = []
    for i, r in enumerate(rows.to_dict("records")):
        records.append(
            {
                "record_id": str(uuid.uuid4()),
                "request_id": str(uuid.uuid4()),
                "created_at": NOW - dt.timedelta(hours=1),
                "partner": partner,
                "participant_key": f"k{i}",
                "model_version": "1",
                "window_end": day,
                "status": "scored",
                "risk": float(r["risk"]),
                "band": r["band"],
                "days_observed": int(r["days_observed"]),
                "summary": {k: (None if pd.isna(r[k]) else float(r[k])) for k in names},
            }
        )
    prediction_log.insert_ignoring_duplicates(engine, "predictions", records)


def _cfg(tmp_path, reference, **kw) -> MonitorConfig:
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path)
    return MonitorConfig(
        db_url=f"sqlite:///{tmp_path / 'log.db'}",
        reference=path,
        out_dir=tmp_path / "mon",
        workspace=tmp_path / "ws",
        now=NOW,
        **kw,
    )


def _engine(tmp_path):
    engine = prediction_log.engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.create_schema(engine)
    return engine


def test_same_distribution_raises_no_alert(tmp_path, reference):
    _log(_engine(tmp_path), reference.sample(400, random_state=3))
    result = monitor(_cfg(tmp_path, reference))
    assert result.verdict == "ok", [a.message for a in result.alerts]
    assert result.report_html.exists() and result.snapshot_id
    assert not (tmp_path / "mon" / "alerts.jsonl").exists()


def test_device_change_on_steps_is_named(tmp_path, reference):
    current = reference.sample(400, random_state=4).copy()
    current["steps"] *= 0.6
    _log(_engine(tmp_path), current)
    result = monitor(_cfg(tmp_path, reference))
    assert result.verdict == "alert" and result.drifted_signals == ["steps"]
    alert = next(a for a in result.alerts if a.kind == "input_drift")
    assert "steps" in alert.message and alert.value > 0
    saved = json.loads((tmp_path / "mon" / "alerts.jsonl").read_text().splitlines()[-1])
    assert saved["alerts"][0]["subject"] == "steps"


def test_too_little_data_is_said_not_tested(tmp_path, reference):
    _log(_engine(tmp_path), reference.sample(10, random_state=5))
    result = monitor(_cfg(tmp_path, reference))
    assert result.verdict == "insufficient_data" and "at least 50" in result.notes[0]


def test_rising_risk_raises_prediction_drift_and_high_band_alerts_to_a_webhook(tmp_path, reference):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    risky = reference.sort_values("risk").tail(300).copy()
    _log(_engine(tmp_path), risky)
    result = monitor(_cfg(tmp_path, reference, webhook=f"http://127.0.0.1:{server.server_port}/alerts"))
    server.shutdown()
    kinds = {a.kind for a in result.alerts}
    assert {"prediction_drift", "high_band_share"} <= kinds
    assert received and {a["kind"] for a in received[0]["alerts"]} >= {"prediction_drift"}


def test_matured_outcomes_give_auroc_and_a_stale_model_alerts(tmp_path, reference):
    engine = _engine(tmp_path)
    rows = reference.sample(600, random_state=6).reset_index(drop=True)
    _log(engine, rows, day=dt.date(2025, 5, 1))
    rng = np.random.default_rng(0)
    # Outcomes unrelated to the scores: the model has gone stale.
    events = [
        {
            "record_id": str(uuid.uuid4()),
            "created_at": NOW,
            "partner": "acme",
            "participant_key": f"k{i}",
            "date": dt.date(2025, 5, 8),
            "event": "relapse",
        }
        for i in rng.choice(len(rows), 120, replace=False)
    ]
    prediction_log.insert_ignoring_duplicates(engine, "outcomes", events)
    result = monitor(_cfg(tmp_path, reference, thresholds=Thresholds(min_auroc=0.65)))
    assert 0.35 < result.values["RocAuc"] < 0.65
    assert any(a.kind == "performance" for a in result.alerts)
