"""The audit trail is append-only in effect: any change, removal or reordering of an entry breaks its hash chain."""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from earlywarn.data import store
from earlywarn.data.store.audit import audit_log


def _trail(tmp_path, n: int = 4):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    for i in range(n):
        store.audit.record(engine, "ops", "key.create", f"acme/k{i}", {"expires_at": None, "nan": float("nan")})
    return engine


def test_an_intact_trail_verifies_and_holds_what_was_recorded(tmp_path):
    engine = _trail(tmp_path)
    entries = store.audit.entries(engine)
    assert [e.seq for e in entries] == [1, 2, 3, 4] and entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[2].subject == "acme/k2" and entries[2].detail == {"expires_at": None, "nan": None}
    assert store.audit.verify(engine) == (4, None)


def test_a_changed_entry_is_found(tmp_path):
    engine = _trail(tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 2).values(subject="acme/other"))
    assert store.audit.verify(engine) == (1, "entry 2 was changed after it was written")


def test_a_removed_entry_is_found(tmp_path):
    engine = _trail(tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 3))
    assert store.audit.verify(engine) == (2, "entry 3 is missing (found 4 next)")


def test_an_entry_pointed_at_another_predecessor_is_found(tmp_path):
    engine = _trail(tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 4).values(prev_hash="f" * 64))
    assert store.audit.verify(engine) == (3, "entry 4 does not follow entry 3")
