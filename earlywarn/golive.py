"""Silent mode and going live: criteria fixed before a partner's silent mode, measured on its own traffic and outcomes."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from sqlalchemy.engine import Engine

from earlywarn.data import store
from earlywarn.monitoring.prospective import Check, Criteria, CriteriaError, judge, measure

__all__ = ["Check", "Criteria", "CriteriaError", "ModeError", "go_live", "go_silent"]


class ModeError(ValueError):
    """A mode change that is not allowed (criteria missing or changed while silent, or a partner never silent)."""


def go_silent(engine: Engine, partner: str, criteria: Criteria, now: dt.datetime) -> store.ModeChange:
    """Start silent mode with the go-live criteria recorded now, before any silent-mode data exists to tune them to."""
    current = store.current_mode(engine, partner)
    if current is not None and current.mode == store.SILENT:
        raise ModeError(f"{partner} is silent since {current.changed_at:%Y-%m-%d}; its criteria cannot change while silent")
    change = store.ModeChange(partner, store.SILENT, asdict(criteria), now)
    store.record_mode(engine, change)
    return change


def go_live(engine: Engine, partner: str, now: dt.datetime, override: str | None = None) -> tuple[bool, list[Check]]:
    """Go live when the recorded criteria hold on the partner's own data, or with an override's stated reason
    (recorded beside the figures); otherwise refuse and say which criteria fail."""
    current = store.current_mode(engine, partner)
    if current is None or current.mode != store.SILENT:
        raise ModeError(f"{partner} is not in silent mode (it is live already)")
    checks = judge(Criteria(**current.criteria), measure(engine, partner, now))
    met = all(c.met for c in checks)
    if met or (override and override.strip()):
        measured = {c.criterion: c.measured for c in checks}
        store.record_mode(
            engine, store.ModeChange(partner, store.LIVE, current.criteria, now, measured, None if met else override)
        )
        return True, checks
    return False, checks
