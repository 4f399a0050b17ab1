"""Delivers new escalations to each partner's care-team webhook: signed, retried with backoff, on one thread."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store.webhooks import SIGNATURE_HEADER, Webhook, sign, webhook_for

log = logging.getLogger("earlywarn.alerts")
ATTEMPTS = 6  # over about half a minute: 1, 2, 4, 8, 16 s between tries
CACHE_S = 30.0  # a changed webhook reaches every replica within this


class WebhookSender:
    """Queue `send(partner, payload)`; a background thread posts it, retrying failures (2xx = delivered)."""

    def __init__(self, engine: Engine, attempts: int = ATTEMPTS, first_delay_s: float = 1.0):
        self.engine, self.attempts, self.first_delay_s = engine, attempts, first_delay_s
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._hooks: dict[str, tuple[float, Webhook | None]] = {}
        self._client = httpx.Client(timeout=10.0, follow_redirects=False)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)
        self._thread.start()

    def send(self, partner: str, payload: dict[str, Any]) -> None:
        job = {"partner": partner, "payload": payload, "attempt": 0, "delivery": str(uuid.uuid4())}
        self._schedule(job, 0.0)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self._client.close()

    def _schedule(self, job: dict[str, Any], delay: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), job))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(timeout=None if not self._due else self._due[0][0] - time.monotonic())
                if self._closed:
                    return
                _, _, job = heapq.heappop(self._due)
            self._attempt(job)

    def _attempt(self, job: dict[str, Any]) -> None:
        try:
            hook = self._hook(job["partner"])
            if hook is None:
                return  # this partner has no webhook: the alert is in the API response and the store only
            body = json.dumps(job["payload"], separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "Earlywarn-Delivery": job["delivery"],  # the same on every retry, so receivers can drop duplicates
                SIGNATURE_HEADER: sign(hook.secret, int(time.time()), body),
            }
            if self._client.post(hook.url, content=body, headers=headers).is_success:
                return
            why = "the receiver did not answer 2xx"
        except (httpx.HTTPError, sa.exc.SQLAlchemyError) as err:
            why = type(err).__name__
        job["attempt"] += 1
        if job["attempt"] >= self.attempts:
            log.error(
                "webhook delivery of alert %s to partner %s failed %d times (%s)",
                job["payload"]["alert_id"],
                job["partner"],
                job["attempt"],
                why,
            )
            return
        self._schedule(job, self.first_delay_s * 2 ** (job["attempt"] - 1))

    def _hook(self, partner: str) -> Webhook | None:
        cached = self._hooks.get(partner)
        if cached is None or time.monotonic() - cached[0] > CACHE_S:
            cached = (time.monotonic(), webhook_for(self.engine, partner))
            self._hooks[partner] = cached
        return cached[1]
