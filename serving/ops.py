"""Guards the operators' endpoints (/metrics, /v1/status) with a bearer token of their own."""

from __future__ import annotations

import hmac
import json
from typing import Any

OPS_PATHS = ("/metrics", "/v1/status")


class OpsGate:
    """ASGI middleware: the operators' endpoints need `Authorization: Bearer <EARLYWARN_OPS_TOKEN>`. Without a token
    configured they are open in demo mode and closed in production (fail closed: they reveal traffic and errors)."""

    def __init__(self, app: Any, token: str | None, demo: bool):
        self.app, self.token, self.demo = app, token, demo

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") not in OPS_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        status, detail = (
            (401, "send the operators' token as 'Authorization: Bearer <token>'")
            if self.token
            else (403, "set EARLYWARN_OPS_TOKEN to read this endpoint in production")
        )
        body = json.dumps({"error": "ops_token_required", "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if self.token:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: dict[str, Any]) -> bool:
        if self.token is None:
            return self.demo
        sent = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        return hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode())
