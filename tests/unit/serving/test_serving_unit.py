"""Scoring, schema, keys, pseudonyms and the spool as plain functions (no server)."""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pytest
import sqlalchemy as sa

from earlywarn.data import store
from earlywarn.data.pseudonym import DEMO_KEY, Pseudonymizer, SecretError
from earlywarn.data.spool import Spool
from earlywarn.data.store.keys import create_key, revoke
from earlywarn.serving.key_verifier import KeyVerifier
from earlywarn.serving.results import assemble
from earlywarn.serving.schema import day_order_errors, loc_path, score_request_model
from earlywarn.training.scoring import HISTORY_DAYS
from tests.drill import record

D0 = dt.date(2025, 3, 1)


def test_assemble_places_days_on_a_grid_ending_at_the_last_day():
    rows = [
        ("a", [(D0, [1.0, None]), (D0 + dt.timedelta(days=2), [3.0, 4.0])]),
        ("b", [(D0 - dt.timedelta(days=200), [9.0, 9.0]), (D0, [5.0, 6.0])]),
    ]
    batch = assemble(rows, 2)
    assert batch.end_dates == [D0 + dt.timedelta(days=2), D0]
    h = batch.values
    assert h.shape == (2, HISTORY_DAYS, 2)
    assert h[0, -1].tolist() == [3.0, 4.0] and np.isnan(h[0, -2]).all() and h[0, -3, 0] == 1.0 and np.isnan(h[0, -3, 1])
    assert np.count_nonzero(~np.isnan(h[1])) == 2  # the day 200 days earlier is outside the 90-day history


def test_schema_paths_and_day_order():
    assert loc_path(("participants", 3, "days", 5, "steps")) == "participants[3].days[5].steps"
    model = score_request_model(["steps"])
    req = model.model_validate_json(
        json.dumps(
            {
                "participants": [
                    {"participant_id": "x", "days": [{"date": "2025-01-02"}, {"date": "2025-01-02"}]},
                    {"participant_id": "y", "days": [{"date": "2025-01-02"}, {"date": "2025-01-01"}]},
                    {"participant_id": "x", "days": [{"date": "2025-01-01"}]},
                ]
            }
        )
    )
    errors = {e["field"]: e["message"] for e in day_order_errors(req.participants)}
    assert "duplicated" in errors["participants[0].days[1].date"] and "out of order" in errors["participants[1].days[1].date"]
    assert "duplicate of participants[0]" in errors["participants[2].participant_id"]


def test_keys_are_hashed_revocable_and_partner_bound(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'k.db'}")
    key = create_key(engine, "acme")
    verifier = KeyVerifier(engine)
    assert verifier.partner_for(f"Bearer {key.token}") == "acme"
    stored = engine.connect().execute(sa.text("select secret_sha256 from api_keys")).scalar_one()
    assert key.token.split("_", 2)[2] not in stored
    for bad in (
        None,
        "",
        "Bearer",
        f"Basic {key.token}",
        f"Bearer {key.token}x",
        f"Bearer ew_{key.key_id}_nope",
        "Bearer ew_ffffffffffff_x",
    ):
        assert verifier.partner_for(bad) is None
    assert revoke(engine, key_id=key.key_id) == 1
    time.sleep(1.1)  # verified keys are cached for a second: revocation reaches every replica within it
    assert verifier.partner_for(f"Bearer {key.token}") is None


def test_keys_expire_and_outages_keep_a_key_only_briefly(tmp_path, monkeypatch):
    import datetime as dt
    import time

    engine = store.engine_for(f"sqlite:///{tmp_path / 'k.db'}")
    short = create_key(engine, "acme", expires_in=dt.timedelta(seconds=1))
    lasting = create_key(engine, "acme", expires_in=dt.timedelta(days=90))
    verifier = KeyVerifier(engine, last_known_seconds=60)
    assert verifier.partner_for(f"Bearer {short.token}") == "acme"
    time.sleep(1.2)
    assert verifier.partner_for(f"Bearer {short.token}") is None  # expired
    assert verifier.partner_for(f"Bearer {lasting.token}") == "acme"

    def store_away(*_, **__):
        raise sa.exc.OperationalError("select", {}, Exception("store away"))

    monkeypatch.setattr(engine, "connect", store_away)
    assert verifier.partner_for(f"Bearer {lasting.token}") == "acme"  # a short outage: the last known state
    clock = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: clock)
    assert verifier.partner_for(f"Bearer {lasting.token}") is None  # a long one: fail closed
    record(
        "keys: expiry and outages (item 8)",
        "a 1-second key; then the store away for a short and for a long time",
        "expired key refused; last known state kept only 60 s here (5 min in the service), then refused",
    )


def test_a_store_from_an_earlier_release_gains_the_new_columns(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # api_keys as it was before keys could expire
        conn.exec_driver_sql(
            "CREATE TABLE api_keys (key_id VARCHAR(16) PRIMARY KEY, partner VARCHAR(64) NOT NULL, "
            "secret_sha256 VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL, revoked_at DATETIME)"
        )
    key = create_key(engine, "acme")
    assert KeyVerifier(engine).partner_for(f"Bearer {key.token}") == "acme"


def test_pseudonyms_are_keyed_stable_and_partner_specific(monkeypatch):
    p = Pseudonymizer(b"k" * 32)
    assert p("a", "123") == p("a", "123") != p("b", "123") and "123" not in p("a", "123")
    assert Pseudonymizer(b"other-key-xxxxxxxx")("a", "123") != p("a", "123")
    monkeypatch.delenv("EARLYWARN_HMAC_KEY", raising=False)
    monkeypatch.delenv("EARLYWARN_HMAC_KEY_FILE", raising=False)
    with pytest.raises(SecretError):
        Pseudonymizer.from_env(demo=False)
    monkeypatch.setenv("EARLYWARN_HMAC_KEY", DEMO_KEY)
    with pytest.raises(SecretError, match="demo"):
        Pseudonymizer.from_env(demo=False)
    assert Pseudonymizer.from_env(demo=True).key == DEMO_KEY.encode()


def _record(i: int) -> dict:
    return {
        "record_id": f"r{i:05d}",
        "created_at": "2025-01-01T00:00:00+00:00",
        "partner": "p",
        "participant_key": f"k{i}",
        "date": "2025-01-01",
        "event": "relapse",
    }


def test_spool_survives_a_store_outage_and_delivers_exactly_once(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    store.migrate(engine)
    up = {"ok": True}

    def writer(table, records):
        if not up["ok"]:
            raise sa.exc.OperationalError("insert", {}, Exception("store down"))
        return store.insert_ignoring_duplicates(engine, table, records)

    spool = Spool(tmp_path / "spool", writer, batch=7)
    spool.append("outcomes", [_record(i) for i in range(10)])
    assert spool.flush() == 10
    up["ok"] = False
    spool.append("outcomes", [_record(i) for i in range(10, 25)])
    with pytest.raises(sa.exc.OperationalError):
        spool.flush()
    assert spool.backlog_bytes() > 0 and store.count(engine, "outcomes") == 10
    up["ok"] = True
    pending = spool.path.read_text()
    spool.flush()
    # Flushed files are deleted at once: no copy of a stored record stays on local disk.
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [spool.path.name] and spool.path.stat().st_size == 0
    # Replaying the same records again (as after a crash that lost the offset) adds nothing twice.
    (tmp_path / "spool" / "spool-99998-lost.jsonl").write_text(pending)
    spool.flush()
    assert store.count(engine, "outcomes") == 25 and spool.backlog_bytes() == 0
    spool.close()
    record("spool segments (item 3)", "25 records through a store outage", "each segment deleted once flushed; 25 stored once")


def test_orphaned_spool_files_are_replayed_by_the_next_process(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    store.migrate(engine)
    (tmp_path / "spool").mkdir()
    orphan = tmp_path / "spool" / "spool-99999-dead.jsonl"
    orphan.write_text(
        "".join(json.dumps({"t": "outcomes", "r": _record(i)}) + "\n" for i in range(5)) + '{"t": "outc'
    )  # torn last line
    spool = Spool(tmp_path / "spool", lambda t, r: store.insert_ignoring_duplicates(engine, t, r))
    spool.flush()
    assert store.count(engine, "outcomes") == 5 and not orphan.exists()
    spool.close()


def test_yes_no_settings_accept_true_and_refuse_anything_unclear(monkeypatch):
    from earlywarn.data.settings import settings

    for raw, expected in (("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False), ("", False)):
        monkeypatch.setenv("EARLYWARN_SPOOL_FSYNC", raw)
        assert settings().spool_fsync is expected, raw
    monkeypatch.setenv("EARLYWARN_SPOOL_FSYNC", "maybe")
    with pytest.raises(ValueError, match="EARLYWARN_SPOOL_FSYNC"):
        settings()


def test_the_scoring_queue_is_bounded():
    """Beyond `max_waiting` items waiting or running, a submission is refused at once (the API answers 503 with
    Retry-After), and once the queue drains the next one is accepted."""
    import asyncio
    import threading

    from earlywarn.serving.batcher import MicroBatcher, QueueFull

    gate = threading.Event()

    def run(jobs: list[int]) -> list[int]:
        gate.wait(10)
        return jobs

    async def scenario() -> tuple[int, int]:
        batcher: MicroBatcher[int, int] = MicroBatcher(run, size=lambda n: n, max_waiting=5)
        first = asyncio.create_task(batcher.submit(3))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await batcher.submit(3)
        gate.set()
        return await first, await batcher.submit(3)

    assert asyncio.run(scenario()) == (3, 3)
    record(
        "bounded scoring queue (item 6)",
        "a submission beyond the bound while the model is busy",
        "refused at once (503 + Retry-After)",
    )
