"""Writes the service's audit entries (failed authentications, lockouts, model loads) off the request path."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import audit

log = logging.getLogger("earlywarn.audit")
ACTOR = "service"


class AuditWriter:
    """A thread appending entries from a bounded queue, so a flood of bad keys cannot stall answers; entries it had
    to drop (queue full, or the store away for good) are counted and recorded as one `audit.dropped` entry."""

    def __init__(self, engine: Engine, capacity: int = 10_000):
        self.engine = engine
        self._queue: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue(capacity)
        self.dropped = 0
        threading.Thread(target=self._run, name="audit-writer", daemon=True).start()

    def __call__(self, action: str, subject: str, detail: dict[str, Any] | None = None) -> None:
        try:
            self._queue.put_nowait((action, subject, detail or {}))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            action, subject, detail = self._queue.get()
            try:
                if self.dropped:
                    dropped, self.dropped = self.dropped, 0
                    audit.record(self.engine, ACTOR, "audit.dropped", "service", {"entries": dropped})
                audit.record(self.engine, ACTOR, action, subject, detail)
            except (sa.exc.SQLAlchemyError, RuntimeError) as err:
                self.dropped += 1
                log.warning("audit entry not written (%s); counted as dropped", type(err).__name__)
