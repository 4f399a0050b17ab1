"""The prediction log and outcome store (SQLAlchemy; SQLite by default, PostgreSQL by URL): serving writes, others read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data import state
from data.episodes import Episode
from data.pseudonym import Pseudonymizer, SecretError
from data.settings import secret, settings

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),  # uuid; replays insert each record at most once
    sa.Column("request_id", sa.String(36), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("window_end", sa.Date, nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("risk", sa.Float),
    sa.Column("band", sa.String(16)),
    sa.Column("days_observed", sa.Integer, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),  # model-input summary for drift monitoring: per-signal mean and missing share
    # The model-input window itself ([lookback days][features], oldest first, ending on window_end), for retraining.
    sa.Column("inputs", sa.JSON),
    sa.Index("ix_predictions_partner_participant", "partner", "participant_key"),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Index("ix_outcomes_partner_participant", "partner", "participant_key"),
)

withdrawals = sa.Table(
    "withdrawals",
    metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("participant_key", sa.String(64), primary_key=True),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("predictions_deleted", sa.Integer, nullable=False),
    sa.Column("outcomes_deleted", sa.Integer, nullable=False),
    # Registered model versions trained before the withdrawal, whose training data may have included this person.
    sa.Column("models_trained_before", sa.JSON, nullable=False),
)

api_keys = sa.Table(  # partner API keys, stored as hashes (data/keys.py)
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("partner", sa.String(64), nullable=False, index=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),  # None: no expiry
)
escalation_changes = sa.Table(  # append-only facts about escalation episodes (data/episodes.py)
    "escalation_changes",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # open | high | close
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Index("ix_escalation_changes_partner_participant", "partner", "participant_key"),
)

alert_feedback = sa.Table(  # what a care team did about an escalation (POST /v1/alerts/{alert_id}/feedback)
    "alert_feedback",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(36), nullable=False, index=True),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("note", sa.String(500)),
)

webhooks = sa.Table(  # each partner's care-team webhook and its signing secret (data/webhooks.py)
    "webhooks",
    metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),  # the service must sign with it, so it cannot be a hash
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

store_settings = sa.Table(  # facts about the store itself, e.g. which HMAC key pseudonymised its ids
    "store_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

TABLES = {
    "predictions": predictions,
    "outcomes": outcomes,
    "escalation_changes": escalation_changes,
    "alert_feedback": alert_feedback,
}


def url_from_env() -> str:
    """EARLYWARN_DB_URL, or a file holding it (EARLYWARN_DB_URL_FILE: a URL with a password never sits in the
    repository or a command line), or the embedded SQLite default."""
    if url := secret(settings().db_url):
        return url
    state.home().mkdir(parents=True, exist_ok=True)  # the embedded default works on a fresh checkout
    return f"sqlite:///{state.path('earlywarn.db')}"


# JSON columns (summaries, input windows) through orjson: the standard encoder re-encoding every flushed record was
# the spool flusher's largest hold on the GIL.
_JSON: dict[str, Any] = {
    "json_serializer": lambda obj: orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
    "json_deserializer": orjson.loads,
}


def engine_for(url: str) -> Engine:
    """An engine with settings that suit a busy service: WAL, a busy timeout and secure delete on SQLite, pre-ping on
    servers."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **_JSON)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left readable in free pages
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 5}, **_JSON)


def create_schema(engine: Engine) -> None:
    """Create missing tables, and add columns that later versions added to existing ones (nullable, so old rows
    stay valid): a store from an earlier release keeps working."""
    metadata.create_all(engine)
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def check_key(engine: Engine, pseudonymizer: Pseudonymizer) -> None:
    """Record the HMAC key's fingerprint on first use; refuse a different key (its pseudonyms would match nobody,
    so a withdrawal would delete nothing and new records would split people in two)."""
    create_schema(engine)
    with engine.begin() as conn:
        stored = conn.execute(
            sa.select(store_settings.c.value).where(store_settings.c.name == "hmac_key_fingerprint")
        ).scalar_one_or_none()
        if stored is None:
            conn.execute(
                sa.insert(store_settings).values(
                    name="hmac_key_fingerprint", value=pseudonymizer.fingerprint, set_at=dt.datetime.now(dt.UTC)
                )
            )
        elif stored != pseudonymizer.fingerprint:
            raise SecretError(
                f"the HMAC key (fingerprint {pseudonymizer.fingerprint}) is not the one this store's ids were "
                f"pseudonymised with (fingerprint {stored}); set EARLYWARN_HMAC_KEY(_FILE) to that key"
            )


def _coerce(table: sa.Table, record: dict[str, Any]) -> dict[str, Any]:
    """Records arrive as JSON from the spool: turn ISO strings back into dates and times."""
    out = dict(record)
    for col in table.columns:
        v = out.get(col.name)
        if isinstance(v, str) and isinstance(col.type, sa.DateTime):
            out[col.name] = dt.datetime.fromisoformat(v)
        elif isinstance(v, str) and isinstance(col.type, sa.Date):
            out[col.name] = dt.date.fromisoformat(v)
    return out


def insert_ignoring_duplicates(engine: Engine, table_name: str, records: Iterable[dict[str, Any]]) -> int:
    """Insert records whose record_id is not stored yet; returns how many were new. Safe to repeat (exactly once)."""
    table = TABLES[table_name]
    rows = _not_withdrawn(engine, [_coerce(table, r) for r in records])
    if not rows:
        return 0
    stmt: sa.Executable
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table).on_conflict_do_nothing(index_elements=["record_id"])
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["record_id"])
    else:  # pragma: no cover - other databases are not supported
        raise ValueError(f"unsupported database {engine.dialect.name}")
    with engine.begin() as conn:
        result = conn.execute(stmt, rows)
    return int(result.rowcount or 0)


def _not_withdrawn(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop records of participants who withdrew consent — made before (a spool may still hold some) or after (the
    service answers them 'withdrawn' and stores nothing, but a replica may not have heard yet)."""
    if not rows:
        return rows
    gone = withdrawn(engine, {(r["partner"], r["participant_key"]) for r in rows})
    return [r for r in rows if (r["partner"], r["participant_key"]) not in gone] if gone else rows


def withdrawn(engine: Engine, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (partner, participant key) pairs have withdrawn consent."""
    out: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        for partner, keys in _keys_by_partner(pairs).items():
            c = withdrawals.c
            q = sa.select(c.participant_key).where(c.partner == partner, c.participant_key.in_(sorted(keys)))
            out |= {(partner, k) for (k,) in conn.execute(q)}
    return out


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)  # SQLite hands back naive times


def forget(engine: Engine, partner: str, participant_key: str, models_trained_before: list[str]) -> tuple[int, int]:
    """Delete a participant's predictions (with their inputs) and outcomes, and record the withdrawal; returns
    (predictions deleted, outcomes deleted)."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        n_pred = conn.execute(
            sa.delete(predictions).where(predictions.c.partner == partner, predictions.c.participant_key == participant_key)
        ).rowcount
        n_out = conn.execute(
            sa.delete(outcomes).where(outcomes.c.partner == partner, outcomes.c.participant_key == participant_key)
        ).rowcount
        for table in (escalation_changes, alert_feedback):
            conn.execute(sa.delete(table).where(table.c.partner == partner, table.c.participant_key == participant_key))
        conn.execute(
            sa.delete(withdrawals).where(withdrawals.c.partner == partner, withdrawals.c.participant_key == participant_key)
        )
        conn.execute(
            sa.insert(withdrawals).values(
                partner=partner,
                participant_key=participant_key,
                withdrawn_at=now,
                predictions_deleted=int(n_pred or 0),
                outcomes_deleted=int(n_out or 0),
                models_trained_before=models_trained_before,
            )
        )
    if engine.dialect.name == "sqlite":  # the WAL still holds the pages as they were before the delete
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return int(n_pred or 0), int(n_out or 0)


def retention_days() -> int:
    return settings().retention_days


def purge(engine: Engine, before: dt.datetime) -> dict[str, int]:
    """Delete predictions (with their inputs), outcomes, escalation changes and feedback stored before `before`;
    returns how many rows each table lost. Withdrawal records stay: they are what keeps a withdrawn person out."""
    create_schema(engine)
    deleted = {}
    with engine.begin() as conn:
        for name, table in TABLES.items():
            deleted[name] = int(conn.execute(sa.delete(table).where(table.c.created_at < before)).rowcount or 0)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return deleted


def read_withdrawals(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(withdrawals)).mappings().all())


def read_inputs(engine: Engine, since: dt.date | None = None) -> pd.DataFrame:
    """The daily inputs the service scored, one row per (partner, participant, day): where windows overlap, the
    latest prediction's copy of a day wins. Columns: partner, participant_key, date, then the window's features."""
    q = sa.select(
        predictions.c.partner,
        predictions.c.participant_key,
        predictions.c.window_end,
        predictions.c.created_at,
        predictions.c.inputs,
    ).where(predictions.c.inputs.is_not(None))
    if since is not None:
        q = q.where(predictions.c.window_end >= since)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(predictions.c.created_at)).all()
    parts = []
    for partner, key, end, _, window in rows:
        if not window:
            continue
        days = pd.date_range(end=pd.Timestamp(end), periods=len(window), freq="D")
        parts.append((partner, key, days, window))
    if not parts:
        return pd.DataFrame(columns=["partner", "participant_key", "date"])
    frame = pd.DataFrame([v for *_, w in parts for v in w], dtype="float64")
    frame.insert(0, "date", np.concatenate([d.to_numpy() for _, _, d, _ in parts]))
    frame.insert(0, "participant_key", np.repeat([k for _, k, _, _ in parts], [len(d) for _, _, d, _ in parts]))
    frame.insert(0, "partner", np.repeat([p for p, _, _, _ in parts], [len(d) for _, _, d, _ in parts]))
    return frame.drop_duplicates(["partner", "participant_key", "date"], keep="last").reset_index(drop=True)


def first_scored(engine: Engine, partner: str, keys: list[str]) -> dict[str, dt.date]:
    """The earliest window end this partner had scored for each of these participant keys (absent: never scored)."""
    if not keys:
        return {}
    c = predictions.c
    q = sa.select(c.participant_key, sa.func.min(c.window_end)).where(c.partner == partner, c.participant_key.in_(keys))
    with engine.connect() as conn:
        return {key: _day(first) for key, first in conn.execute(q.group_by(c.participant_key))}


def existing_ids(engine: Engine, table_name: str, record_ids: list[str]) -> set[str]:
    """Which of these record ids the table already holds."""
    table = TABLES[table_name]
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(table.c.record_id).where(table.c.record_id.in_(record_ids)))}


def _keys_by_partner(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    by_partner: dict[str, set[str]] = {}
    for partner, key in pairs:
        by_partner.setdefault(partner, set()).add(key)
    return by_partner


def latest_events(engine: Engine, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dt.date]:
    """The latest reported event date of each (partner, participant key) that has one."""
    by_partner = _keys_by_partner(pairs)
    out: dict[tuple[str, str], dt.date] = {}
    with engine.connect() as conn:
        for partner, keys in by_partner.items():
            q = (
                sa.select(outcomes.c.participant_key, sa.func.max(outcomes.c.date))
                .where(outcomes.c.partner == partner, outcomes.c.participant_key.in_(sorted(keys)))
                .group_by(outcomes.c.participant_key)
            )
            for key, day in conn.execute(q):
                out[(partner, key)] = _day(day)
    return out


def open_episodes(engine: Engine, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Episode]:
    """The open escalation episode (no close recorded) of each (partner, participant key) that has one."""
    by_partner = _keys_by_partner(pairs)
    c = escalation_changes.c
    closed = sa.func.max(sa.case((c.kind == "close", 1), else_=0))
    out: dict[tuple[str, str], Episode] = {}
    with engine.connect() as conn:
        for partner, keys in by_partner.items():
            q = (
                sa.select(c.participant_key, c.alert_id, sa.func.min(c.day), sa.func.max(c.day))
                .where(c.partner == partner, c.participant_key.in_(sorted(keys)))
                .group_by(c.participant_key, c.alert_id)
                .having(closed == 0)
            )
            for key, alert_id, first, last in conn.execute(q):
                out[(partner, key)] = Episode(alert_id, _day(first), _day(last))
    return out


def alert_participant(engine: Engine, partner: str, alert_id: str) -> str | None:
    """The participant key of this partner's escalation episode with this alert id (None: not theirs, or none)."""
    c = escalation_changes.c
    q = sa.select(c.participant_key).where(c.partner == partner, c.alert_id == alert_id, c.kind == "open").limit(1)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one_or_none()


ACTED_ON = ("contacted", "already_in_care")  # feedback saying care acted on (or was already around) an escalation


def read_alerts(engine: Engine, partner: str | Iterable[str] | None = None, since: dt.date | None = None) -> pd.DataFrame:
    """One row per escalation episode opened on or after `since`: partner, participant_key, alert_id, day, and the
    care team's latest feedback action (None: none yet)."""
    c, f = escalation_changes.c, alert_feedback.c
    q = sa.select(c.partner, c.participant_key, c.alert_id, c.day).where(c.kind == "open")
    if since is not None:
        q = q.where(c.day >= since)
    if partner is not None:
        q = q.where(c.partner.in_([partner] if isinstance(partner, str) else list(partner)))
    feedback = sa.select(f.alert_id, f.partner, f.action, f.created_at)
    with engine.connect() as conn:
        opened = pd.DataFrame(conn.execute(q).fetchall(), columns=["partner", "participant_key", "alert_id", "day"])
        actions = pd.DataFrame(conn.execute(feedback).fetchall(), columns=["alert_id", "partner", "action", "created_at"])
    latest = actions.sort_values("created_at").drop_duplicates(["partner", "alert_id"], keep="last")
    out = opened.merge(latest[["partner", "alert_id", "action"]], on=["partner", "alert_id"], how="left")
    out["day"] = out["day"].map(_day) if len(out) else out["day"]
    return out.astype({"action": object}).where(out.notna(), None)


def _day(v: Any) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))  # SQLite aggregates hand back strings


def read_predictions(
    engine: Engine,
    since: dt.datetime | None = None,
    partner: str | Iterable[str] | None = None,
    window_end: tuple[dt.date, dt.date] | None = None,
    sample: float = 1.0,
) -> pd.DataFrame:
    """Logged predictions (logged since a time, for some partners, with window ends in [first, last]),
    summaries expanded into columns (the heavy input windows are left out: see read_inputs).

    sample < 1 keeps that share of participants, all of their predictions: pseudonymous keys are HMAC hex, so a
    key-prefix cut is a uniform, repeatable sample of people, done by the database."""
    q = _filtered(sa.select(*[c for c in predictions.columns if c.name != "inputs"]), since, partner, window_end, sample)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).mappings().all())
    if frame.empty:
        return frame
    summary = pd.DataFrame.from_records(frame.pop("summary").tolist())
    summary = summary.drop(columns=[c for c in summary.columns if c in frame.columns])
    return pd.concat([frame.reset_index(drop=True), summary], axis=1)


def _filtered(
    q: Any,
    since: dt.datetime | None,
    partner: str | Iterable[str] | None,
    window_end: tuple[dt.date, dt.date] | None,
    sample: float = 1.0,
) -> Any:
    if since is not None:
        q = q.where(predictions.c.created_at >= since)
    if partner is not None:
        q = q.where(predictions.c.partner.in_([partner] if isinstance(partner, str) else list(partner)))
    if window_end is not None:
        q = q.where(predictions.c.window_end.between(*window_end))
    if sample < 1.0:
        q = q.where(predictions.c.participant_key < f"{min(int(sample * 16**6), 16**6 - 1):06x}")
    return q


def count_predictions(
    engine: Engine,
    since: dt.datetime | None = None,
    partner: str | Iterable[str] | None = None,
    window_end: tuple[dt.date, dt.date] | None = None,
) -> int:
    """How many predictions read_predictions would return (without sampling)."""
    q = _filtered(sa.select(sa.func.count()).select_from(predictions), since, partner, window_end)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def read_outcomes(engine: Engine, partner: str | Iterable[str] | None = None) -> pd.DataFrame:
    q = sa.select(outcomes)
    if partner is not None:
        q = q.where(outcomes.c.partner.in_([partner] if isinstance(partner, str) else list(partner)))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).mappings().all())


def count(engine: Engine, table_name: str, partners: Iterable[str] | None = None) -> int:
    """Records stored in a table, all of them or those of some partners."""
    table = TABLES[table_name]
    q = sa.select(sa.func.count()).select_from(table)
    if partners is not None:
        q = q.where(table.c.partner.in_(list(partners)))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())
