"""Closing the loop: retrain on what the service scored and partners reported; consent withdrawal."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pytest
from mlflow import MlflowClient

from earlywarn.data import store
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import SynthConfig
from earlywarn.monitoring.simulate import SimulateConfig, simulate
from earlywarn.training import tracking
from earlywarn.training.fit import FitConfig
from earlywarn.training.promote import PromoteConfig
from tests.drill import record as drill_row
from tests.stack import LOOSE_GATES, champion_served

pytestmark = pytest.mark.slow

LOOSE = PromoteConfig(**LOOSE_GATES)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A deliberately weak champion (one epoch at a tiny learning rate), served for real, then 40 days of traffic
    with reported outcomes from 200 people it never saw."""
    root = tmp_path_factory.mktemp("retrain")
    base = synth(SynthConfig(participants=300, days=150, seed=41), root / "base")
    traffic = synth(SynthConfig(participants=200, days=100, seed=42), root / "traffic")
    with champion_served(root, base, FitConfig(max_epochs=1, lr=1e-6, progress=False)) as (server, db, _):
        sim = SimulateConfig(
            server.url, db, traffic.out_dir, dt.date(2025, 2, 1), 40, ("clinic-east",), monitor_every=40, out_dir=root / "sim"
        )
        simulate(sim)
        server.stop()  # the tests below work on the log and the registry; MLflow stays on this stack's store
        store.allow_retraining(store.engine_for(db), "clinic-east", min_days=28, actor="test")
        yield {"db": db, "root": root, "traffic": traffic}


def test_retrain_beats_a_weak_champion_and_a_worse_challenger_is_refused(live):
    from earlywarn.training.retrain import RetrainConfig, retrain

    # Care teams acted on some escalations: the windows care may have changed are censored, not negatives.
    engine = store.engine_for(live["db"])
    opened = store.read_alerts(engine).sort_values("post_event", kind="stable")  # a post-event one says nothing of care
    acted = opened[~opened["post_event"]].head(max(1, len(opened) // 2))
    now = dt.datetime.now(dt.UTC)
    store.insert_ignoring_duplicates(
        engine,
        "alert_feedback",
        [
            {"record_id": str(uuid.uuid4()), "created_at": now, "partner": a.partner, "participant_key": a.participant_key}
            | {"alert_id": a.alert_id, "action": "contacted", "note": None}
            for a in acted.itertuples()
        ]
        + [  # a false alarm says nothing about prevention: not censored
            {"record_id": str(uuid.uuid4()), "created_at": now, "partner": a.partner, "participant_key": a.participant_key}
            | {"alert_id": a.alert_id, "action": "false_alarm", "note": None}
            for a in opened.iloc[len(acted) :].itertuples()
        ],
    )
    good = retrain(RetrainConfig(db_url=live["db"], out=live["root"] / "retrain", fit=FitConfig(max_epochs=3), gates=LOOSE))
    assert good.left_out_partners == 0 and good.left_out_people == 0  # 40 days each, minimum 28
    assert len(opened) and good.escalations_acted_on == len(acted)
    care = pd.read_csv(good.features_path.parent / "care.csv")
    assert sorted(care["participant_id"]) == sorted(acted["partner"] + ":" + acted["participant_key"])
    skipped = json.loads(good.train.bundle.meta["model_card"]["data"]["windows_skipped"])
    assert skipped["censored_after_care"] > 0, skipped
    assert good.logged_participants == 200 and good.logged_days >= 200 * 40 and good.reported_events > 0
    champ, chall = good.promotion.comparison["champion"], good.promotion.comparison["challenger"]
    assert chall["auroc"] > champ["auroc"] + 0.05 and good.promotion.promoted
    assert tracking.version_info(tracking.CHAMPION).version == good.train.model_version
    print(f"\nretrain comparison (champion = weak model, challenger = retrained):\n{good.comparison}\n{good.promotion.message}")
    artifacts = {a.path for a in MlflowClient().list_artifacts(good.train.run_id)}
    assert {"retrain_comparison.txt", "retrain.json"} <= artifacts

    worse = retrain(
        RetrainConfig(db_url=live["db"], out=live["root"] / "retrain", fit=FitConfig(max_epochs=1, lr=1e-6), gates=LOOSE)
    )
    assert not worse.promotion.promoted and any(g.name == "auroc" for g in worse.promotion.failed)
    assert tracking.version_info(tracking.CHAMPION).version == good.train.model_version


def _traces(live, pid: str, key: str) -> dict[str, set]:
    """What would give a person away: their pseudonym (alone and as the retrain id), their reference-sample tag, and
    the exact signal values they sent (distinctive to the 6th significant digit; the log and snapshots keep them)."""
    from earlywarn.data.pseudonym import Pseudonymizer

    table = pd.read_parquet(live["traffic"].features_path)
    mine = table[table["participant_id"] == pid].drop(columns=["participant_id", "date"])
    others = pd.concat([table[table["participant_id"] != pid], pd.read_parquet(live["root"] / "base" / "features.parquet")])
    rest = others.drop(columns=["participant_id", "date"]).to_numpy(float).ravel()
    values = {v for v in mine.round(4).stack().tolist() if v != round(v)} - set(rest.round(4).tolist())
    texts = {key, f"clinic-east:{key}", Pseudonymizer.from_env(True).row_tag(f"clinic-east:{key}")}
    return {"texts": texts, "values": {v for v in values if abs(v) >= 100}}  # big enough not to be a count or a share


def _search(root, traces) -> list:
    """Files under root holding any trace: raw bytes for the texts, decoded tables for the values."""
    import sqlite3

    import numpy as np

    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        if path.name == "log.db":  # the withdrawal record keeps the pseudonym (so later data is refused), nothing else
            copy = root.parent / f"{root.name}-log-copy.db"
            with sqlite3.connect(path) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
                dst.execute("PRAGMA secure_delete = ON")
                dst.execute("DELETE FROM withdrawals")
            with sqlite3.connect(copy) as dst:
                dst.execute("VACUUM")
            raw = copy.read_bytes()
            copy.unlink()
        if path.name.startswith("log.db-"):
            continue  # the WAL and shared memory of the live log: searched through the backup above
        hit = any(t.encode() in raw for t in traces["texts"])
        if not hit and path.suffix in (".parquet", ".csv"):
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            cells = frame.select_dtypes("number").to_numpy(np.float64).ravel()
            hit = bool(np.isin(np.round(cells[np.isfinite(cells)], 4), list(traces["values"])).any())
            hit |= any(frame[c].astype(str).isin(traces["texts"]).any() for c in frame.select_dtypes("object"))
        if not hit and path.suffix not in (".parquet",):
            hit = any(f"{v}".encode() in raw for v in traces["values"])
        if hit:
            found.append(path)
    return found


def test_forget_deletes_a_participant_and_records_the_models_that_saw_them(live, monkeypatch):
    from typer.testing import CliRunner

    from earlywarn.cli import app
    from earlywarn.data.pseudonym import Pseudonymizer

    engine = store.engine_for(live["db"])
    pid = "P000"  # dealt to the only partner
    key = Pseudonymizer.from_env(True)("clinic-east", pid)
    traces = _traces(live, pid, key)
    found_before = _search(live["root"], traces)
    # The retrain snapshots and the retrained models' reference samples hold this person (the test above retrained).
    assert {"features.parquet", "reference.parquet"} <= {p.name for p in found_before}, sorted(map(str, found_before))
    monkeypatch.setenv("EARLYWARN_DB_URL", live["db"])
    monkeypatch.setenv("EARLYWARN_HOME", str(live["root"]))
    res = CliRunner().invoke(app, ["participants", "forget", "--partner", "clinic-east", "--participant", pid])  # as users run it
    assert res.exit_code == 0, res.output
    versions = tracking.model_versions()
    assert "deleted 40 predictions (with their inputs) and 0 outcomes; removed their rows from " in res.output
    assert "model versions trained before the withdrawal: " + ", ".join(versions) in res.output
    # Nothing under the state root holds them any more: not the log (SQLite free pages and WAL included), the spool,
    # the retrain snapshots, the MLflow store and its artifacts, nor the monitoring reports and workspace.
    assert _search(live["root"], traces) == []
    drill_row(
        "withdrawal: every copy (item 2)",
        "`participants forget` after 40 days of traffic, a monitoring run and two retrains",
        f"found in {len(found_before)} files before (snapshots, reference samples); in none of the state root's files after",
    )
    assert store.read_inputs(engine).query("participant_key == @key").empty
    gone = store.read_withdrawals(engine)
    assert gone.iloc[0]["participant_key"] == key and pid not in gone.to_string()
    version = versions[-1]
    tags = MlflowClient().get_model_version(tracking.REGISTERED_MODEL, version).tags
    assert tags["earlywarn.withdrawals_after_training"] == "1"
    # A record still in a spool from before the withdrawal is not stored when it is replayed, nor is a later one
    # (a replica that has not heard of the withdrawal yet).
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    record = {
        "partner": "clinic-east",
        "participant_key": key,
        "date": dt.date(2025, 3, 1),
        "event": "relapse",
    }
    assert (
        store.insert_ignoring_duplicates(engine, "outcomes", [record | {"record_id": str(uuid.uuid4()), "created_at": before}])
        == 0
    )
    assert (
        store.insert_ignoring_duplicates(engine, "outcomes", [record | {"record_id": str(uuid.uuid4()), "created_at": after}])
        == 0
    )


def test_store_purge_reaches_every_copy_of_expired_traffic(live, monkeypatch):
    """b9b83e2 purged database rows only: 2,332 rows of 64 purged people stayed in a retrain snapshot, and reference
    samples and reports never expired. Every byte under the state root is searched after `store purge`."""
    from typer.testing import CliRunner

    from earlywarn.cli import app
    from earlywarn.data.pseudonym import Pseudonymizer

    pid = "P001"
    key = Pseudonymizer.from_env(True)("clinic-east", pid)
    traces = _traces(live, pid, key)
    found_before = _search(live["root"], traces)
    assert {"features.parquet", "reference.parquet"} <= {p.name for p in found_before}, sorted(map(str, found_before))
    monkeypatch.setenv("EARLYWARN_DB_URL", live["db"])
    monkeypatch.setenv("EARLYWARN_HOME", str(live["root"]))
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()  # the pilot ends: all traffic goes
    res = CliRunner().invoke(app, ["store", "purge", "--before", tomorrow])
    assert res.exit_code == 0, res.output
    assert _search(live["root"], traces) == []
    assert store.count(store.engine_for(live["db"]), "predictions") == 0
    reference = pd.read_parquet(tracking.download(tracking.version_info(tracking.CHAMPION).run_id, "reference.parquet"))
    assert len(reference) and not reference["logged"].any()  # the training cohort's own rows stay
    drill_row(
        "retention: every copy (item 1)",
        "`store purge --before` after 40 days of traffic, a monitoring run and two retrains",
        f"one person found in {len(found_before)} files before; in none of the state root's files after",
    )
