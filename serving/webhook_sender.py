"""Delivers the stored care-team notifications to each partner's webhook (Standard Webhooks), retrying with backoff."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time

import httpx
import sqlalchemy as sa
import standardwebhooks
from sqlalchemy.engine import Engine

from earlywarn.data.store.webhooks import Delivery, Webhook, claim_due, destination_problem, finish, webhook_for
from earlywarn.serving.metrics import WEBHOOK_FAILURES

log = logging.getLogger("earlywarn.webhooks")
ATTEMPTS = 8  # 1, 2, 4 ... 64 s between tries: about two minutes, then given up (and logged)
CACHE_S = 30.0  # a changed webhook reaches every replica within this
LEASE = dt.timedelta(seconds=60)  # a claimed delivery whose sender died is taken up again after this


class WebhookSender:
    """A background thread that sends what is due in the store's delivery queue; `wake()` after queueing one. The
    queue is in the store, so a restart or another replica takes up whatever is pending (each try claimed first)."""

    def __init__(
        self, engine: Engine, attempts: int = ATTEMPTS, first_delay_s: float = 1.0, poll_s: float = 1.0, production: bool = False
    ):
        self.engine, self.attempts, self.first_delay_s, self.poll_s = engine, attempts, first_delay_s, poll_s
        self.production = production
        self._wake = threading.Event()
        self._closed = False
        self._hooks: dict[str, tuple[float, Webhook | None]] = {}
        self._client = httpx.Client(timeout=10.0, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=15)
        self._client.close()

    def _run(self) -> None:
        while not self._closed:
            try:
                due = claim_due(self.engine, dt.datetime.now(dt.UTC), LEASE)
            except sa.exc.SQLAlchemyError as err:  # the store is away: the queue waits in it (or in the spool)
                log.warning("webhook queue unreadable (%s); retried", type(err).__name__)
                due = []
            for delivery in due:
                self._attempt(delivery)
            if not due:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _attempt(self, d: Delivery) -> None:
        error = None
        try:
            hook = self._hook(d.partner)
            if hook is None:  # no webhook: the escalation is in the API answers and the store; nothing to send
                finish(self.engine, d.record_id, delivered=False, attempts=d.attempts, retry_at=None, error="no webhook")
                return
            if destination_problem(hook.url, self.production):  # resolved again: DNS may point elsewhere by now
                self._retry(d, "destination refused")
                return
            body = json.dumps(d.payload, separators=(",", ":")).encode()
            now = dt.datetime.now(dt.UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": d.record_id,  # the same on every retry: receivers drop duplicates by it
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": standardwebhooks.Webhook(hook.secret).sign(d.record_id, now, body),
            }
            answer = self._client.post(hook.url, content=body, headers=headers)
            if answer.is_success:
                finish(self.engine, d.record_id, delivered=True, attempts=d.attempts + 1, retry_at=None, error=None)
                return
            error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as err:
            error = type(err).__name__
        except sa.exc.SQLAlchemyError:
            return  # the claim's lease runs out and the delivery is tried again
        self._retry(d, error)

    def _retry(self, d: Delivery, error: str | None) -> None:
        tries = d.attempts + 1
        WEBHOOK_FAILURES.labels(outcome="given_up" if tries >= self.attempts else "retried").inc()
        retry_at = (
            None
            if tries >= self.attempts
            else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.first_delay_s * 2 ** (tries - 1))
        )
        if retry_at is None:
            log.error(
                "webhook delivery %s (%s) to partner %s given up after %d tries (%s)",
                d.record_id,
                d.event,
                d.partner,
                tries,
                error,
            )
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # else the lease runs out and it is tried again
            finish(self.engine, d.record_id, delivered=False, attempts=tries, retry_at=retry_at, error=error)

    def _hook(self, partner: str) -> Webhook | None:
        cached = self._hooks.get(partner)
        if cached is None or time.monotonic() - cached[0] > CACHE_S:
            cached = (time.monotonic(), webhook_for(self.engine, partner))
            self._hooks[partner] = cached
        return cached[1]
