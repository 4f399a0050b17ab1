"""Guards the operators' endpoints (/metrics, /v1/status) with a bearer token of their own."""

from __future__ import annotations

import hmac
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import limits
import limits.storage
import limits.strategies

from earlywarn.serving import logs
from earlywarn.serving.edge import PARTNER
from earlywarn.serving.problems import request_id, send_problem

OPS_PATHS = ("/metrics", "/v1/status")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class OpsGate:
    """ASGI middleware: the operators' endpoints need `Authorization: Bearer <EARLYWARN_OPS_TOKEN>`. Without a token
    configured they are open in demo mode and closed in production (fail closed: they reveal traffic and errors).
    An address that sends `FAILURES` wrong tokens is refused (429) before its token is compared, so the token cannot
    be guessed at speed."""

    FAILURES = "10/minute"

    def __init__(self, app: Any, token: str | None, demo: bool):
        self.app, self.token, self.demo = app, token, demo
        self.failures = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
        self.rate = limits.parse(self.FAILURES)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") not in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown",))[0]
        if self.token is not None and not self.failures.test(self.rate, "ops", address):
            wait = max(1, math.ceil(self.failures.get_window_stats(self.rate, "ops", address).reset_time - time.time()))
            detail = "too many wrong operators' tokens from this address; retry later"
            await send_problem(send, 429, "rate_limited", detail, request_id(scope), {"Retry-After": str(wait)})
            return
        if self._allowed(scope):
            await self.app(scope, receive, send)
            return
        if self.token is not None:
            self.failures.hit(self.rate, "ops", address)
        status, detail = (
            (401, "send the operators' token as 'Authorization: Bearer <token>'")
            if self.token
            else (403, "set EARLYWARN_OPS_TOKEN to read this endpoint in production")
        )
        headers = {"WWW-Authenticate": "Bearer"} if self.token else None
        await send_problem(send, status, "ops_token_required", detail, request_id(scope), headers)

    def _allowed(self, scope: dict[str, Any]) -> bool:
        if self.token is None:
            return self.demo
        sent = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        return hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode())


class RouteMetrics:
    """ASGI middleware: requests and their latency by route template, method and status. Any path that is not a
    route counts as `other`, so requests to made-up paths add no series here. (BentoML's own request metrics, in a
    middleware outside ours, still label each request with its raw path; its `skip_paths` setting does not stop that,
    and switching them off removes `/metrics`.)"""

    METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})

    def __init__(self, app: Any, api: Any, prefix: str, system: tuple[str, ...], requests: Any, latency: Any):
        self.app, self.requests, self.latency = app, requests, latency
        self.routes = route_patterns(prefix, list(route_paths(api.routes)), system)

    def route(self, path: str) -> str:
        if CONTROL.search(path):  # Starlette's mount does not match a path with a line break: answered here instead
            return "other"
        return next((name for name, pattern in self.routes if pattern.fullmatch(path)), "other")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.route(scope["path"])
        method = scope["method"] if scope["method"] in self.METHODS else "other"
        status = {"code": 500}
        if route == "other":  # answered here, in the service's one error shape
            await send_problem(send, 404, "not_found", "no such endpoint; see /v1/docs", request_id(scope))
            self.requests.labels(route=route, method=method, status="404").inc()
            return

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - start
            self.latency.labels(route=route).observe(seconds)
            self.requests.labels(route=route, method=method, status=str(status["code"])).inc()
            logs.access(request_id(scope), scope.get(PARTNER), route, method, status["code"], seconds)


def route_paths(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """Every path template of an app's routes, inside included routers too (BentoML includes a class's API routes
    as a router)."""
    for r in routes:
        if hasattr(r, "original_router"):
            yield from route_paths(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
        elif getattr(r, "path", None):
            yield prefix + r.path


def route_patterns(prefix: str, paths: list[str], system: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    """(template, regex) for each route: `/v1/alerts/{alert_id}/feedback` matches any one path segment for the id;
    a template ending in `/*` matches everything below it (BentoML's static files)."""
    templates = [prefix + p for p in paths] + list(system)
    return [(t, re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)).replace(r"/\*", "/.*"))) for t in templates]
