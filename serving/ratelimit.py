"""Per-partner limits shared by every replica through Redis; this replica's own counts in memory while Redis is away."""

from __future__ import annotations

import logging
import time

import limits
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage

log = logging.getLogger("earlywarn.limits")
RETRY_SECONDS = 5.0  # while Redis is away, how long to count in memory before trying it again


class Limiter:
    """Sliding-window counters (two counters per key and window, so a request's cost is one increment, not one list
    entry per participant-day). With `redis_url` the counts live in Redis, so a partner's limit holds across replicas;
    if Redis fails, this replica counts in memory (its own share only) and tries Redis again every few seconds."""

    def __init__(self, redis_url: str | None, prefix: str = "earlywarn", retry_seconds: float = RETRY_SECONDS):
        self.memory = limits.strategies.SlidingWindowCounterRateLimiter(MemoryStorage())
        self.redis = None
        if redis_url:
            storage: Storage = RedisStorage(redis_url, key_prefix=prefix, wrap_exceptions=True, socket_timeout=0.5)
            self.redis = limits.strategies.SlidingWindowCounterRateLimiter(storage)
        self.retry_seconds = retry_seconds
        self._down_until = 0.0

    @property
    def shared(self) -> bool:
        """Whether counts are going to Redis now (false without Redis, or while it is away)."""
        return self.redis is not None and time.monotonic() >= self._down_until

    def _strategy(self) -> limits.strategies.RateLimiter:
        return self.redis if self.redis is not None and self.shared else self.memory

    def _call(self, name: str, *args: object, **kwargs: object) -> object:
        strategy = self._strategy()
        try:
            return getattr(strategy, name)(*args, **kwargs)
        except StorageError as err:  # only Redis raises it (wrap_exceptions)
            log.warning(
                "rate-limit store unreachable (%s); counting in memory for %.0f s",
                type(err.__cause__).__name__,
                self.retry_seconds,
            )
            self._down_until = time.monotonic() + self.retry_seconds
            return getattr(self.memory, name)(*args, **kwargs)

    def hit(self, rate: limits.RateLimitItem, key: str, cost: int = 1) -> bool:
        return bool(self._call("hit", rate, key, cost=cost))

    def test(self, rate: limits.RateLimitItem, key: str) -> bool:
        return bool(self._call("test", rate, key))

    def reset_time(self, rate: limits.RateLimitItem, key: str) -> float:
        stats = self._call("get_window_stats", rate, key)
        return float(stats.reset_time)  # type: ignore[attr-defined]
