"""Re-key the store's pseudonyms from the old HMAC secret to the new one in one transaction, given each person's
old and new pseudonym; refused where anyone would be left under the old key."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store.base import metadata
from earlywarn.data.store.key_fingerprint import store_settings


class RekeyError(ValueError):
    """Re-keying would lose someone: their records would match no listed id under the new secret."""


def keyed_tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if "participant_key" in t.c]


def unmatched(conn: sa.Connection, pairs: dict[str, str], drop_unmatched: bool = False) -> set[str]:
    """The old pseudonyms `pairs` does not name; RekeyError where any is a withdrawal, or any at all without
    `drop_unmatched` (their records would match nobody under the new secret)."""
    lost = {t.name: set(conn.execute(sa.select(t.c.participant_key).distinct()).scalars()) - pairs.keys() for t in keyed_tables()}
    people = set().union(*lost.values())
    if lost.get("withdrawals"):
        raise RekeyError(
            f"{len(lost['withdrawals'])} withdrawn people are not in the id list; list them too, or their withdrawal "
            "would stop matching them and their data could arrive again. Nothing was changed"
        )
    if people and not drop_unmatched:
        where = ", ".join(f"{name}: {len(keys)}" for name, keys in lost.items() if keys)
        raise RekeyError(
            f"{len(people)} people's records match no listed id ({where}); list every participant of every partner, "
            "or add --drop-unmatched to delete their records. Nothing was changed"
        )
    return people


def rekey(engine: Engine, pairs: dict[str, str], fingerprint: str, drop_unmatched: bool = False) -> tuple[dict[str, int], int]:
    """Rename every old pseudonym in `pairs` to its new one and record the new secret's fingerprint; returns rows
    re-keyed per table and the people dropped (`unmatched` decides who may be)."""
    with engine.begin() as conn:
        people = unmatched(conn, pairs, drop_unmatched)
        changed = dict.fromkeys((t.name for t in keyed_tables()), 0)
        for table in keyed_tables():
            if people:
                conn.execute(sa.delete(table).where(table.c.participant_key.in_(people)))
            for old, new in pairs.items():
                done = conn.execute(sa.update(table).where(table.c.participant_key == old).values(participant_key=new))
                changed[table.name] += done.rowcount
        conn.execute(
            sa.update(store_settings)
            .where(store_settings.c.name == "hmac_key_fingerprint")
            .values(value=fingerprint, set_at=dt.datetime.now(dt.UTC))
        )
    return changed, len(people)
