"""From a partner's retrospective file to live (issue 29): `evaluate` reports and records, then 60 silent days over
HTTP (nothing shown, no webhook, everything logged), `--live` refused with the criteria table, outcomes reported,
`monitor run` writing the prospective report, and `--live` accepted once the criteria fixed in advance hold."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from bench.launcher import Server
from earlywarn.cli import app
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.monitoring.monitor import MonitorConfig, monitor
from tests.stack import days_of

pytestmark = pytest.mark.slow
DAYS = 60
CRITERIA = """[criteria]
min_people = 30
min_events = 5
min_auroc_lower = 0.5
max_high_band_gap = 0.3
max_alerts_per_100_participant_months = 100
"""


def _checks(output: str) -> dict[str, str]:
    return {line.split()[1]: line for line in output.splitlines() if line.startswith(("met ", "FAIL"))}


def test_a_partner_goes_from_retrospective_validation_through_silent_mode_to_live(
    served_model, small_cohort, tmp_path, monkeypatch
):
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig
    from earlywarn.training.external import validations

    for k, v in served_model.items():
        if not k.startswith("_"):
            monkeypatch.setenv(k, v)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("EARLYWARN_DB_URL", db)
    cli, criteria = CliRunner(), tmp_path / "criteria.toml"
    criteria.write_text(CRITERIA)

    # 1. The partner's retrospective file: a report, recorded with the model version.
    past = synth(SynthConfig(participants=30, days=120, seed=31), tmp_path / "retrospective")
    args = ["evaluate", "--features", str(past.features_path), "--outcomes", str(past.outcomes_path), "--synthetic"]
    evaluated = cli.invoke(app, [*args, "--criteria", str(criteria), "--out", str(tmp_path / "evaluation")])
    assert evaluated.exit_code == 0, evaluated.output
    assert len(_checks(evaluated.output)) == 5 and list((tmp_path / "evaluation").glob("*/validation.html"))
    assert validations(served_model["_mlflow_version"])[-1]["data_sha256"]

    # 2. Silent mode, its criteria fixed first.
    engine = store.engine_for(db)
    key = create_key(engine, "pilot").token
    refused = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--silent"])
    assert refused.exit_code == 1 and "--criteria" in refused.output
    made = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--silent", "--criteria", str(criteria)])
    assert made.exit_code == 0, made.output
    again = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--silent", "--criteria", str(criteria)])
    assert again.exit_code == 1 and "cannot change while silent" in again.output
    assert cli.invoke(app, ["keys", "webhook", "--partner", "pilot", "--url", "http://127.0.0.1:9/never"]).exit_code == 0

    table = pd.read_parquet(small_cohort.features_path)
    ids = sorted(table["participant_id"].unique())[:40]
    first = table["date"].max() - pd.Timedelta(days=DAYS - 1)
    env = {k: v for k, v in served_model.items() if not k.startswith("_")} | {
        "EARLYWARN_DB_URL": db,
        "EARLYWARN_SPOOL_DIR": str(tmp_path / "spool"),
    }
    auth = {"Authorization": f"Bearer {key}"}
    srv = Server(env, tmp_path / "server.log").start()
    try:
        for n in range(DAYS):
            today = first + pd.Timedelta(days=n)
            people = [{"participant_id": f"s-{p}", "days": days_of(table[table["date"] <= today], p)} for p in ids]
            r = httpx.post(
                srv.url + "/v1/risk-scores",
                json={"as_of": f"{today:%Y-%m-%d}", "participants": people},
                headers=auth,
                timeout=120,
            )
            assert r.status_code == 200, r.text
            for res in r.json()["results"]:
                assert res["status"] == "silent" and "silent mode" in res["reason"]
                assert not {"risk", "risk_interval", "band", "band_text", "drivers", "escalate", "escalation"} & set(res)
            if n == DAYS // 2:  # 3. half-way, no outcomes yet: refused, each criterion with its figure
                early = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--live"])
                assert early.exit_code == 1 and "stays silent" in early.output
                assert _checks(early.output)["min_events"].startswith("FAIL")
        # 4. The partner reports what happened.
        events = pd.read_csv(small_cohort.outcomes_path, parse_dates=["date"])
        window = events[events["participant_id"].isin(ids) & events["date"].between(first, first + pd.Timedelta(days=DAYS))]
        reported = [
            {"participant_id": f"s-{e.participant_id}", "date": f"{e.date:%Y-%m-%d}", "event": "relapse"}
            for e in window.itertuples()
        ]
        out = httpx.post(srv.url + "/v1/outcomes", json={"outcomes": reported}, headers=auth, timeout=60)
        assert out.status_code == 202, out.text
    finally:
        srv.stop()

    logged = store.read_predictions(engine, partner="pilot")
    assert len(logged) == DAYS * len(ids) and logged["risk"].notna().all()  # everything kept for validation
    assert store.read_deliveries(engine) == [] and store.read_alerts(engine).empty  # nothing escalated, nothing sent

    # 5. Monitoring writes the prospective validation report for the silent partner.
    run = monitor(MonitorConfig(db, partners=("pilot",), time_basis="window_end", workspace=None, out_dir=tmp_path / "mon"))
    [note] = [n for n in run.overall.notes if "prospective validation report" in n]
    assert note.startswith("pilot is silent:")
    [folder] = (tmp_path / "mon" / "reports").glob("*-pilot-prospective")
    report = json.loads((folder / "validation.json").read_text())
    assert report["criteria"]["min_events"] == 5 and (folder / "validation.html").exists()
    assert {"roc.png", "calibration.png", "decision_curve.png"} <= {p.name for p in (folder / "figures").iterdir()}
    # The report's figures against what happened, counted here without the project's metric code: each matured
    # prediction is a case when the partner reported an event in the 14 days after its window end.
    events = store.read_outcomes(engine, partner="pilot")
    happened = {(k, pd.Timestamp(d)) for k, d in zip(events["participant_key"], events["date"], strict=True)}
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)  # the monitor's clock; the cohort lies in the past
    rows = logged[pd.to_datetime(logged["window_end"]) + pd.Timedelta(days=14) <= today]
    label = [
        any((k, pd.Timestamp(end) + pd.Timedelta(days=d)) in happened for d in range(1, 15))
        for k, end in zip(rows["participant_key"], rows["window_end"], strict=True)
    ]
    section = report["sections"]
    assert section["cohort"]["windows"] == len(rows) and section["cohort"]["prevalence"] == pytest.approx(sum(label) / len(rows))
    assert section["discrimination"]["auroc"] == pytest.approx(roc_auc_score(label, rows["risk"]))
    high = (rows["band"] == "high").to_numpy()
    assert section["decisions"]["ppv_high"] == pytest.approx(pd.Series(label)[high].mean())  # the bands as shown

    # 6. Going live: judged on the partner's own data against the criteria recorded before it began.
    live = cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--live"])
    checks = _checks(live.output)
    print(f"\ngo-live check after {DAYS} silent days and {len(reported)} events:\n{live.output}")
    measured = {c["criterion"]: c["measured"] for c in report["checks"]}
    for name, line in checks.items():  # the report and the gate measure the same figures
        assert f"measured {measured[name]:.3g}" in line, (name, line, measured[name])
    assert live.exit_code == 0 and all(line.startswith("met ") for line in checks.values()), live.output
    history = store.mode_history(engine, "pilot")
    assert [h.mode for h in history] == ["silent", "live"] and history[-1].override is None
    assert history[-1].measured["min_people"] == 40 and store.silent_partners(engine) == set()
    assert cli.invoke(app, ["partners", "mode", "--partner", "pilot", "--live"]).exit_code == 1  # live already
    forced = cli.invoke(app, ["partners", "mode", "--partner", "other", "--live", "--override", "x"])
    assert forced.exit_code == 1 and "not in silent mode" in forced.output
