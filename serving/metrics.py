"""The service's Prometheus metrics in one registry of its own, served at /metrics: bounded series (route templates,
never raw paths), live gauges read at scrape time, failure counters and the served model's version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from earlywarn.data.spool import Spool

REGISTRY = CollectorRegistry(auto_describe=True)

SCORED = Counter(
    "earlywarn_participants_scored", "Participants answered, by status and band", ["status", "band"], registry=REGISTRY
)
RATE_LIMITED = Counter("earlywarn_rate_limited", "Requests refused with 429 by the per-partner rate limit", registry=REGISTRY)
HTTP_REQUESTS = Counter(
    "earlywarn_http_requests",
    "HTTP requests by route template (`other` for any path that is not a route), method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "earlywarn_http_request_duration_seconds",
    "Time to answer, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
WEBHOOK_FAILURES = Counter(
    "earlywarn_webhook_failures", "Care-team webhook tries that failed, by outcome", ["outcome"], registry=REGISTRY
)
MODEL = Gauge("earlywarn_model_info", "The model version this replica serves (always 1)", ["version"], registry=REGISTRY)
SPOOL_BACKLOG = Gauge("earlywarn_spool_backlog_bytes", "Prediction-log bytes not yet in the store", registry=REGISTRY)
QUEUE_DEPTH = Gauge("earlywarn_scoring_queue_participants", "Participants waiting to be scored", registry=REGISTRY)


def live(gauge: Gauge, read: Callable[[], float]) -> None:
    """Read the gauge's value when scraped, so it is never older than the scrape."""
    gauge.set_function(read)


class _LiveCounter(Collector):
    def __init__(self, name: str, documentation: str, read: Callable[[], float]):
        self.name, self.documentation, self.read = name, documentation, read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.read())


def live_counter(name: str, documentation: str, read: Callable[[], float]) -> None:
    """A counter kept elsewhere (e.g. by the spool), read when scraped; registered once per process."""
    REGISTRY.register(_LiveCounter(name, documentation, read))


def watch(version: str, spool: Spool, waiting: Callable[[], float]) -> None:
    """What /metrics shows of this replica, read at each scrape."""
    MODEL.labels(version=version).set(1)
    live(SPOOL_BACKLOG, spool.backlog_bytes)
    live(QUEUE_DEPTH, waiting)
    stats = spool.stats
    live_counter("earlywarn_store_flush_failures", "Store writes from the spool that failed (retried)", lambda: stats.failures)


class MetricsEndpoint:
    """ASGI middleware: answers GET /metrics from this registry (BentoML's own request metrics are switched off: they
    label every request with its raw path, so made-up paths grew the scrape without bound)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != "/metrics":
            await self.app(scope, receive, send)
            return
        body = generate_latest(REGISTRY)
        headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
