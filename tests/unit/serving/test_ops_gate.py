"""The operators' token cannot be guessed at speed, and every answer is marked not to be cached (issue 30)."""

from __future__ import annotations

import asyncio

import httpx

from earlywarn.serving.ops import OpsGate
from earlywarn.serving.problems import RequestIds

TOKEN = "Zq8-ops-token-strong-enough-4f1Xw9"


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"cache-control", b"max-age=60")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _get(app, path: str, token: str | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})

    return asyncio.run(go())


def test_wrong_ops_tokens_are_limited_per_address_before_the_token_is_compared():
    gate = OpsGate(_app, token=TOKEN, demo=False)
    wrong = [_get(gate, "/metrics", f"guess-{i}").status_code for i in range(12)]
    assert wrong[:10] == [401] * 10 and wrong[10:] == [429, 429]  # b9b83e2 took guesses without limit
    refused = _get(gate, "/metrics", TOKEN)  # even the right one, for a while: guessing gains nothing from speed
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert _get(OpsGate(_app, token=TOKEN, demo=False), "/metrics", TOKEN).status_code == 200
    assert _get(gate, "/v1/risk-scores").status_code == 200  # other paths are not the ops gate's business


def test_every_answer_says_no_store():
    res = _get(RequestIds(_app), "/v1/model")
    assert res.headers["cache-control"] == "no-store" and res.headers["x-request-id"]  # replaces the app's own
