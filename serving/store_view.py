"""The operational store as one replica sees it: reads fall back on what it last saw while the store is away, and
writes go straight in or to the spool, so no record is lost."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data import store
from earlywarn.data.episodes import Episode
from earlywarn.data.spool import Spool
from earlywarn.serving.problems import APIError

log = logging.getLogger("earlywarn.serving")
Pair = tuple[str, str]  # (partner, participant key)
SILENT_CACHE_S = 30.0
REMEMBERED = 200_000  # participants a replica keeps in each of its memories


def _bounded(memory: OrderedDict[Pair, Any], pair: Pair, value: Any) -> None:
    memory[pair] = value
    memory.move_to_end(pair)
    while len(memory) > REMEMBERED:
        memory.popitem(last=False)


class StoreView:
    """Reads and writes of the service's operational store, each with this replica's fallback."""

    def __init__(self, engine: Engine, spool: Spool):
        self.engine, self.spool = engine, spool
        self._first_scored: OrderedDict[Pair, dt.date] = OrderedDict()  # earliest window end this replica scored
        self._events: OrderedDict[Pair, dt.date] = OrderedDict()  # latest reported event day
        self._withdrawn: set[Pair] = set()  # a withdrawal is permanent, so a known one is never forgotten
        self._silent: set[str] = set()
        self._silent_read = -math.inf
        self.episodes: OrderedDict[Pair, Episode | None] = OrderedDict()  # last known latest episode, open or closed

    def silent(self, partners: set[str]) -> set[str]:
        """Which of these partners are in silent mode: re-read every 30 s (a change reaches every replica in that
        time); while the store is away, the last known set (a partner seen silent stays silent: fail closed)."""
        if time.monotonic() - self._silent_read > SILENT_CACHE_S:
            try:
                self._silent = store.silent_partners(self.engine)
                self._silent_read = time.monotonic()
            except sa.exc.SQLAlchemyError:
                log.warning("prediction store unreachable; partner modes are the ones this replica last read")
        return partners & self._silent

    def note_scored(self, pairs: list[Pair], window_ends: list[dt.date]) -> None:
        for pair, end in zip(pairs, window_ends, strict=True):
            _bounded(self._first_scored, pair, min(end, self._first_scored.get(pair, end)))

    def note_event(self, pair: Pair, day: dt.date) -> None:
        _bounded(self._events, pair, max(day, self._events.get(pair, day)))

    def note_episode(self, pair: Pair, episode: Episode | None) -> None:
        _bounded(self.episodes, pair, episode)

    def latest_events(self, pairs: list[Pair]) -> dict[Pair, dt.date]:
        """Each participant's latest reported event: the store's, and this replica's own not yet flushed from the
        spool. While the store is away, the events this replica has seen (its last known state, like keys)."""
        try:
            stored = store.latest_events(self.engine, pairs)
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable; washout uses the events this replica has seen")
            stored = {}
        for pair, day in stored.items():
            self.note_event(pair, day)
        return {pair: self._events[pair] for pair in pairs if pair in self._events}

    def withdrawn(self, pairs: list[Pair]) -> set[Pair]:
        """Who has withdrawn consent: the store's record, or while it is away the withdrawals this replica has seen."""
        try:
            self._withdrawn |= store.withdrawn(self.engine, pairs)
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable; withdrawals are the ones this replica has seen")
        return {pair for pair in pairs if pair in self._withdrawn}

    def refresh_episodes(self, pairs: list[Pair]) -> None:
        """Refresh the latest episodes of these participants from the store (kept as they were while it is away)."""
        try:
            stored = store.latest_episodes(self.engine, pairs)
            self.episodes.update({pair: stored.get(pair) for pair in pairs})
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable; escalation episodes go on from the ones this replica has seen")

    def first_scored(self, partner: str, keys: list[str], outcome_ids: list[str]) -> tuple[dict[str, dt.date], set[str] | None]:
        """Each participant's first scored window end (the store's, or what this replica saw and may not have flushed
        yet), and which outcome ids the store already holds (None while it is away)."""
        cached = {k: self._first_scored[(partner, k)] for k in keys if (partner, k) in self._first_scored}
        try:
            stored = store.first_scored(self.engine, partner, sorted(set(keys)))
            seen = store.existing_ids(self.engine, "outcomes", outcome_ids)
        except sa.exc.SQLAlchemyError:
            if len(cached) < len(set(keys)):
                raise APIError(503, "store_unavailable", "cannot check these participants right now; retry later") from None
            return cached, None
        both = stored.keys() | cached.keys()
        return {k: min(d for d in (stored.get(k), cached.get(k)) if d is not None) for k in both}, seen

    def alert_owner(self, partner: str, alert_id: str) -> str | None:
        """The participant key behind this partner's alert: from the store, or this replica's open episodes."""
        try:
            return store.alert_participant(self.engine, partner, alert_id)
        except sa.exc.SQLAlchemyError:
            mine = [k for (p, k), e in list(self.episodes.items()) if p == partner and e and e.alert_id == alert_id]
            if mine:
                return mine[0]
            raise APIError(503, "store_unavailable", "cannot check this alert right now; retry later") from None

    def store_now(self, table: str, records: list[dict[str, Any]]) -> None:
        """Straight into the store, so every replica sees the records at once; spooled while it is away."""
        try:
            store.insert_ignoring_duplicates(self.engine, table, records)
        except sa.exc.SQLAlchemyError:
            self.store(table, records)

    def store(self, table: str, records: list[dict[str, Any]]) -> None:
        """Durably, through the spool; refused with 503 when even the spool cannot take them."""
        try:
            self.spool.append(table, records)
        except OSError as err:
            log.error("could not spool %d %s records (%s)", len(records), table, type(err).__name__)
            raise APIError(503, "not_stored", "the record could not be stored durably; nothing was kept, retry later") from None
