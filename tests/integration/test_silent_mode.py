"""Silent mode over HTTP: a partner's scores are kept for validation and not shown, no webhook fires, and going live
waits for the criteria recorded before silent mode began, or an override whose reason is recorded (issue 29)."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.launcher import Server
from earlywarn.cli import app
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.monitoring.monitor import MonitorConfig, monitor
from tests.stack import days_of

pytestmark = pytest.mark.slow
DAYS = 30


def test_a_silent_partner_is_scored_and_stored_but_shown_nothing_until_it_goes_live(
    served_model, small_cohort, tmp_path, monkeypatch
):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("EARLYWARN_DB_URL", db)
    engine = store.engine_for(db)
    key = create_key(engine, "pilot").token
    cli = CliRunner()
    refused = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--silent"])
    assert refused.exit_code == 1 and "--criteria" in refused.output
    criteria = tmp_path / "criteria.toml"
    criteria.write_text("[criteria]\nmin_people = 30\nmin_events = 3\nmin_auroc_lower = 0.5\nmax_high_band_gap = 0.3\n")
    made = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--silent", "--criteria", str(criteria)])
    assert made.exit_code == 0, made.output
    again = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--silent", "--criteria", str(criteria)])
    assert again.exit_code == 1 and "cannot change while silent" in again.output
    hook = cli.invoke(app, ["keys", "webhook", "--partner", "pilot", "--url", "http://127.0.0.1:9/never"])
    assert hook.exit_code == 0

    table = pd.read_parquet(small_cohort.features_path)
    ids = sorted(table["participant_id"].unique())[:40]
    first = table["date"].max() - pd.Timedelta(days=DAYS - 1)
    env = {k: v for k, v in served_model.items() if not k.startswith("_")} | {
        "EARLYWARN_DB_URL": db,
        "EARLYWARN_SPOOL_DIR": str(tmp_path / "spool"),
    }
    srv = Server(env, tmp_path / "server.log").start()
    try:
        for n in range(DAYS):
            today = first + pd.Timedelta(days=n)
            people = [{"participant_id": f"s-{p}", "days": days_of(table[table["date"] <= today], p)} for p in ids]
            body = {"as_of": today.strftime("%Y-%m-%d"), "participants": people}
            r = httpx.post(srv.url + "/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120)
            assert r.status_code == 200, r.text
            for res in r.json()["results"]:
                assert res["status"] == "silent" and "silent mode" in res["reason"]
                assert not {"risk", "risk_interval", "band", "band_text", "drivers", "escalate", "escalation"} & set(res)
        events = pd.read_csv(small_cohort.outcomes_path, parse_dates=["date"])
        window = events[events["participant_id"].isin(ids) & events["date"].between(first, first + pd.Timedelta(days=DAYS))]
        reported = [
            {"participant_id": f"s-{e.participant_id}", "date": e.date.strftime("%Y-%m-%d"), "event": "relapse"}
            for e in window.itertuples()
        ]
        if reported:
            out = httpx.post(
                srv.url + "/v1/outcomes", json={"outcomes": reported}, headers={"Authorization": f"Bearer {key}"}, timeout=60
            )
            assert out.status_code == 202, out.text
    finally:
        srv.stop()

    logged = store.read_predictions(engine, partner="pilot")
    assert len(logged) == DAYS * len(ids) and logged["risk"].notna().all()  # everything kept for validation
    assert store.read_deliveries(engine) == [] and store.read_alerts(engine).empty  # nothing escalated, nothing sent
    # Monitoring writes the prospective validation report for the silent partner.
    for k, v in served_model.items():
        if not k.startswith("_"):
            monkeypatch.setenv(k, v)
    run = monitor(MonitorConfig(db, partners=("pilot",), time_basis="window_end", workspace=None, out_dir=tmp_path / "mon"))
    [note] = [n for n in run.overall.notes if "prospective validation report" in n]
    assert note.startswith("pilot is silent:")
    report = json.loads(next((tmp_path / "mon" / "reports").glob("*-pilot-prospective.json")).read_text())
    assert report["criteria"]["min_people"] == 30 and {c["criterion"] for c in report["checks"]} >= {"min_people", "min_events"}
    # Going live: judged on the partner's own data against the criteria recorded before it began.
    live = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--live"])
    lines = {line.split()[1]: line for line in live.output.splitlines() if line.startswith(("met ", "FAIL"))}
    assert set(lines) == {
        "min_people",
        "min_events",
        "min_auroc_lower",
        "max_high_band_gap",
        "max_alerts_per_100_participant_months",
    }
    assert lines["min_people"].startswith("met ") and "measured 40" in lines["min_people"]
    assert lines["min_events"].startswith("met " if len(window) >= 3 else "FAIL")
    print(f"\ngo-live check after {DAYS} silent days:\n{live.output}")
    measured = {c["criterion"]: c["measured"] for c in report["checks"]}
    for name, line in lines.items():  # the report and the gate measure the same figures
        assert f"measured {measured[name]:.3g}" in line, (name, line, measured[name])
    history = store.mode_history(engine, "pilot")
    if live.exit_code == 0:  # every criterion held
        assert all(line.startswith("met ") for line in lines.values()) and history[-1].mode == "live"
        assert history[-1].override is None and history[-1].measured["min_people"] == 40
    else:  # some did not (too few matured predictions in 30 days): refused, then an override with its reason
        assert any(line.startswith("FAIL") for line in lines.values()) and history[-1].mode == "silent"
        forced = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--live", "--override", "board approved 2026-12-07"])
        assert forced.exit_code == 0 and "by override" in forced.output
        assert store.mode_history(engine, "pilot")[-1].override == "board approved 2026-12-07"
    assert store.current_mode(engine, "pilot").mode == "live" and store.silent_partners(engine) == set()
    assert cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--live"]).exit_code == 1  # live already
