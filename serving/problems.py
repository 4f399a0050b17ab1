"""RFC 9457 problem details, the one shape of every error the service returns, and the request id on every answer."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

PROBLEM = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"
SCOPE_KEY = "earlywarn.request_id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
TITLES = {
    400: "Malformed request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Body too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}
SCHEMA: dict[str, Any] = {  # published in the OpenAPI document as `Problem`
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:earlywarn:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "urn:request:<X-Request-ID of this request>"},
        "code": {"type": "string", "description": "machine-readable: validation_error, rate_limited, ..."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


class APIError(Exception):
    """An answer other than success: its status, machine-readable code, detail and extra headers."""

    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def request_id(scope: Mapping[str, Any]) -> str:
    """This request's id: the caller's X-Request-ID when it is a sane token, else one made here."""
    return str(scope.get(SCOPE_KEY) or "unknown")


def body(status: int, code: str, detail: Any, rid: str) -> dict[str, Any]:
    """The problem document; a list of {field, message} becomes `errors`, with a one-line `detail` beside it."""
    out: dict[str, Any] = {
        "type": f"urn:earlywarn:problem:{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail if isinstance(detail, str) else "",
        "instance": f"urn:request:{rid}",
        "code": code,
    }
    if isinstance(detail, list):
        out["errors"] = detail
        out["detail"] = f"{len(detail)} problem{'s' if len(detail) != 1 else ''} with the request; see errors"
    elif detail is None:
        out["detail"] = TITLES.get(status, "Error")
    return out


async def send_problem(send: Any, status: int, code: str, detail: Any, rid: str, headers: dict[str, str] | None = None) -> None:
    """Answer an ASGI request with a problem document (for middleware, outside any framework)."""
    raw = json.dumps(body(status, code, detail, rid)).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    start = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(raw)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": raw})


class RequestIds:
    """ASGI middleware: takes the caller's X-Request-ID (letters, digits and `._:-`, up to 128) or makes one, keeps it
    in the request scope for handlers, error bodies and logs, and echoes it on every response — which it also marks
    `Cache-Control: no-store`: answers about people's health must not be kept by browsers or proxies."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        rid = sent if _VALID_ID.fullmatch(sent) else str(uuid.uuid4())
        scope[SCOPE_KEY] = rid

        async def echoing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ours = (REQUEST_ID_HEADER.encode(), b"cache-control")
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                added = [(REQUEST_ID_HEADER.encode(), rid.encode()), (b"cache-control", b"no-store")]
                message = message | {"headers": [*headers, *added]}
            await send(message)

        await self.app(scope, receive, echoing)
