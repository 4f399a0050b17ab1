"""Who is calling and whether they may: partner keys, throttled failed authentications, per-partner limits."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import limits
from fastapi import Request

from earlywarn.serving.key_verifier import KeyVerifier
from earlywarn.serving.problems import APIError
from earlywarn.serving.ratelimit import Limiter

BUDGETS = {"days": "participant-days", "outcomes": "outcomes"}  # what each budget counts, as `spend` names it


class Gate:
    """Authenticates requests and charges each partner's limits, refusing with 401 or 429 and Retry-After."""

    def __init__(
        self,
        keys: KeyVerifier,
        limiter: Limiter,
        *,
        requests: str,
        days: str,
        outcomes: str,
        auth_failures: str,
        on_refused: Callable[[], None] = lambda: None,
        audit: Callable[[str, str, dict], None] = lambda action, subject, detail: None,
    ):
        self.keys, self.limiter, self.on_refused, self.audit = keys, limiter, on_refused, audit
        self.requests, self.days = limits.parse_many(requests), limits.parse_many(days)
        self.outcomes, self.auth_failures = limits.parse_many(outcomes), limits.parse_many(auth_failures)

    def partner(self, request: Request) -> str:
        """The partner whose key the request carries, within its request rate. An address that keeps failing with
        one key id is refused for a while before that key is looked up again (guessing costs the guesser); failures
        are counted per address *and* key id, so a guesser sharing a proxy or NAT with partners locks out only the
        key id it is guessing, never theirs."""
        authorization = request.headers.get("authorization")
        host = request.client.host if request.client else "unknown"
        key_id = self.keys.key_id(authorization)
        address = f"auth-failures:{host}:{key_id}"
        if not all(self.limiter.test(rate, address) for rate in self.auth_failures):
            self.audit("auth.locked_out", host, {"key_id": key_id})
            self._refuse(self.auth_failures, address, "failed authentications from this address with this key id")
        partner = self.keys.partner_for(authorization)
        if partner is None:
            self.audit("auth.failure", host, {"key_id": key_id})  # the claimed id only: never the secret part
            for rate in self.auth_failures:
                self.limiter.hit(rate, address)
            raise APIError(
                401, "unauthorized", "send a valid API key as 'Authorization: Bearer <key>'", {"WWW-Authenticate": "Bearer"}
            )
        self.spend(self.requests, partner, 1, "requests")
        return partner

    def has_budget(self, budget: str, partner: str) -> None:
        """Refuse (429) before a body is read when the partner has nothing left of `budget` ("days", "outcomes")."""
        what = BUDGETS[budget]
        exhausted = [rate for rate in getattr(self, budget) if not self.limiter.test(rate, f"{what}:{partner}")]
        if exhausted:
            self._refuse(exhausted, f"{what}:{partner}", f"{what} for this partner")

    def spend(self, rates: list[limits.RateLimitItem], partner: str, cost: int, what: str) -> None:
        """Count `cost` against each of the partner's limits for `what`, or refuse with 429 and Retry-After."""
        for rate in rates:
            if not self.limiter.hit(rate, f"{what}:{partner}", cost=cost):
                self._refuse([rate], f"{what}:{partner}", f"{what} for this partner")

    def _refuse(self, rates: list[limits.RateLimitItem], key: str, what: str) -> None:
        reset = max(self.limiter.reset_time(rate, key) for rate in rates)
        wait = max(1, math.ceil(reset - time.time()))
        self.on_refused()
        limit = "; ".join(str(r) for r in rates)
        raise APIError(429, "rate_limited", f"more than {limit} {what}; retry later", {"Retry-After": str(wait)})
