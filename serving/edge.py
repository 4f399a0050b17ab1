"""In front of the BentoML API methods: the key checked first, the body read within its limit, parsed into our errors."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from earlywarn.serving.gate import Gate
from earlywarn.serving.http import parse, read_body
from earlywarn.serving.problems import PROBLEM, APIError, request_id, send_problem

PARTNER = "earlywarn.partner"  # scope keys the API methods read back through `ctx.request.scope`
PARSED = "earlywarn.parsed"
INLINE_PARSE_BYTES = 64 * 1024  # about five participants x 28 days: parsed on the event loop in about 0.3 ms
LARGE_AT_ONCE = 2  # larger bodies read and parsed at once per worker (each may take ~10x its size while parsed)


@dataclass(frozen=True)
class Route:
    """One API method's edge: the model its body parses into, the largest legal body, and whether it needs a key."""

    model: type[BaseModel]
    limit: int
    keyed: bool = True
    budget: str | None = None  # the Gate's per-partner budget the body spends ("days", "outcomes"): checked before reading


def parsed_input(model: type[BaseModel]) -> type[BaseModel]:
    """The model as a BentoML input spec that takes the body the edge parsed, instead of parsing it a second time."""
    import bentoml

    base: Any = bentoml.IODescriptor

    class Parsed(base, model):  # type: ignore[misc,valid-type]
        @classmethod
        async def from_http_request(cls, request: Request, serde: Any) -> Any:
            if (done := request.scope.get(PARSED)) is not None:
                return done
            return await super().from_http_request(request, serde)

    Parsed.__name__ = Parsed.__qualname__ = model.__name__
    return Parsed


class Edge:
    """ASGI middleware for the API methods' POST routes. BentoML would parse a body before any method runs: here an
    unauthenticated caller learns nothing about the schema, an oversized body is refused unread (413), a bad one is
    answered with the fields it breaks, and any error BentoML itself answers becomes a problem document."""

    def __init__(self, app: Any, routes: dict[str, Route], gate: Callable[[], Gate]):
        self.app, self.routes, self.gate = app, routes, gate
        self._turns: tuple[Any, asyncio.Semaphore, defaultdict[str, asyncio.Lock]] | None = None

    def _large_turn(self, partner: str) -> tuple[asyncio.Lock, asyncio.Semaphore]:
        """A partner's own turn for large bodies and the worker's `LARGE_AT_ONCE` slots (made on the running loop)."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Semaphore(LARGE_AT_ONCE), defaultdict(asyncio.Lock))
        return self._turns[2][partner], self._turns[1]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or (scope["method"] != "POST" and not route.keyed):  # GET /v1/model is the /v1 app's
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await send_problem(send, 405, "method_not_allowed", "use POST", request_id(scope), {"Allow": "POST"})
            return
        request = Request(scope, receive)
        try:
            partner = scope[PARTNER] = self.gate().partner(request) if route.keyed else ""
            if route.budget:
                self.gate().has_budget(route.budget, partner)  # a partner past its limit is refused unread
            body = await self._read_and_parse(request, route, partner)
        except APIError as err:
            await send_problem(send, err.status, err.error, err.detail, request_id(scope), err.headers)
            return
        await self.app(scope, _replay(body), _as_problems(send, request_id(scope)))

    async def _read_and_parse(self, request: Request, route: Route, partner: str) -> bytes:
        """Small bodies on the event loop; large ones (by Content-Length, or unknown) one per partner at a time and
        `LARGE_AT_ONCE` per worker, so concurrent large requests cannot multiply the worker's memory."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) < INLINE_PARSE_BYTES:
            body = await read_body(request, route.limit, empty=None if route.keyed else b"{}")
            request.scope[PARSED] = parse(route.model, body)
            return body
        own_turn, slots = self._large_turn(partner)
        async with own_turn, slots:
            body = await read_body(request, route.limit, empty=None if route.keyed else b"{}")
            request.scope[PARSED] = await run_in_threadpool(parse, route.model, body)
        return body


def _replay(body: bytes) -> Callable[[], Any]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _as_problems(send: Any, rid: str) -> Callable[[dict[str, Any]], Any]:
    """BentoML answers its own errors (and anything a method raised unexpectedly) as `{"error": ...}`: rewritten."""
    held: dict[str, Any] = {}

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] >= 400 and not content_type.startswith(PROBLEM.encode()):
                held["status"] = message["status"]
                return
        elif "status" in held:
            if message.get("more_body"):
                return
            status = held["status"]
            code, detail = (
                ("internal_error", "something went wrong on our side; quote the instance when asking")
                if status >= 500
                else ("bad_request", _error_text(message.get("body", b"")))
            )
            await send_problem(send, status, code, detail, rid)
            return
        await send(message)

    return sending


def _error_text(body: bytes) -> str:
    try:
        text = json.loads(body).get("error")
    except (ValueError, AttributeError):
        text = None
    return str(text) if text else "the request could not be handled"
