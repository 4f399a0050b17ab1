"""The edge in front of the BentoML API methods, over a plain ASGI app: key first, body limit, one parse, problems."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.serving.edge import PARSED, PARTNER, Edge, Route
from earlywarn.serving.gate import Gate
from earlywarn.serving.key_verifier import KeyVerifier
from earlywarn.serving.problems import PROBLEM, RequestIds
from earlywarn.serving.ratelimit import Limiter
from earlywarn.serving.schema import OutcomeRequest

SEEN: list[dict[str, Any]] = []


async def downstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stands in for BentoML: answers what its `?answer=` asks for, as BentoML shapes its own errors."""
    SEEN.append(scope)
    status = int(dict(x.split("=") for x in scope["query_string"].decode().split("&") if x).get("answer", "200"))
    raw = json.dumps({"ok": True} if status < 400 else {"error": "bentoml said no"}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": raw})


@pytest.fixture
def client(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate(engine)
    key = create_key(engine, "acme").token
    gate = Gate(
        KeyVerifier(engine),
        Limiter(None),
        requests="100/second",
        days="1000/second",
        outcomes="1000/second",
        auth_failures="1000/minute",
    )
    edge = RequestIds(Edge(downstream, {"/v1/outcomes": Route(OutcomeRequest, 4096)}, gate=lambda: gate))
    SEEN.clear()
    yield Caller(edge), {"Authorization": f"Bearer {key}"}


class Caller:
    """httpx against the ASGI app, one request per event loop (httpx's ASGI transport is async only)."""

    def __init__(self, app: Any):
        self.app = app

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://edge") as c:
                return await c.request(method, path, **kw)

        return asyncio.run(go())

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    body = r.json()
    assert body["code"] == code and body["instance"] == f"urn:request:{r.headers['x-request-id']}"
    return body


def test_the_key_is_checked_before_the_body_is_read_or_parsed(client):
    c, _ = client
    _problem(c.post("/v1/outcomes", content=b"{not json"), 401, "unauthorized")
    _problem(c.post("/v1/outcomes", content=b"x" * 10_000, headers={"Authorization": "Bearer ew_wrong"}), 401, "unauthorized")
    assert SEEN == []


def test_the_body_is_limited_parsed_once_and_handed_over(client):
    c, auth = client
    _problem(c.post("/v1/outcomes", content=b" " * 5000, headers=auth), 413, "body_too_large")
    _problem(c.post("/v1/outcomes", content=b"{not json", headers=auth), 400, "malformed_json")
    bad = _problem(
        c.post("/v1/outcomes", json={"outcomes": [{"participant_id": "p", "date": "x", "event": "relapse"}]}, headers=auth),
        422,
        "validation_error",
    )
    assert bad["errors"][0]["field"] == "outcomes[0].date" and "x" not in json.dumps(bad["errors"][0]["message"])
    assert SEEN == []
    ok = c.post(
        "/v1/outcomes", json={"outcomes": [{"participant_id": "p", "date": "2025-01-02", "event": "relapse"}]}, headers=auth
    )
    assert ok.status_code == 200 and len(SEEN) == 1
    assert SEEN[0][PARTNER] == "acme" and SEEN[0][PARSED].outcomes[0].participant_id == "p"


def test_errors_bentoml_answers_itself_become_problem_documents(client):
    c, auth = client
    body = {"outcomes": [{"participant_id": "p", "date": "2025-01-02", "event": "relapse"}]}
    assert _problem(c.post("/v1/outcomes?answer=415", json=body, headers=auth), 415, "bad_request")["detail"] == "bentoml said no"
    assert "bentoml" not in _problem(c.post("/v1/outcomes?answer=500", json=body, headers=auth), 500, "internal_error")["detail"]
    refused = c.get("/v1/outcomes", headers=auth)
    _problem(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "POST"
    assert c.get("/v1/elsewhere?answer=404").status_code == 404  # other paths pass through untouched


def _gate(engine, days: str = "1000/second") -> Gate:
    return Gate(
        KeyVerifier(engine), Limiter(None), requests="100/second", days=days, outcomes="1000/second", auth_failures="1000/minute"
    )


def test_a_partner_past_its_budget_is_refused_before_its_body_is_read(tmp_path):
    """b9b83e2 charged participant-days after parsing a body of up to 76 MB; the budget is now checked first."""
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate(engine)
    key = create_key(engine, "acme").token
    gate = _gate(engine, days="10/minute")
    gate.spend(gate.days, "acme", 10, "participant-days")
    edge = Edge(downstream, {"/v1/outcomes": Route(OutcomeRequest, 1 << 20, budget="days")}, gate=lambda: gate)
    reads, sent = [], []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-length", b"900000")]
    scope = {"type": "http", "method": "POST", "path": "/v1/outcomes", "headers": headers, "query_string": b""}
    SEEN.clear()
    asyncio.run(edge(scope | {"client": ("127.0.0.1", 1)}, receive, send))
    assert sent[0]["status"] == 429 and not reads and not SEEN
    assert dict(sent[0]["headers"])[b"retry-after"]


def test_large_bodies_are_parsed_one_per_partner_and_two_per_worker(tmp_path):
    """Concurrent large requests no longer multiply a worker's memory: a partner's wait their turn, and at most two
    are read and parsed at once."""
    import threading
    import time

    from pydantic import BaseModel, field_validator

    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate(engine)
    keys = {p: create_key(engine, p).token for p in ("acme", "beta", "gamma")}
    busy, peak, lock = [0], [0], threading.Lock()
    by_partner: dict[str, int] = {}

    class Slow(BaseModel):
        partner: str
        pad: str

        @field_validator("pad")
        @classmethod
        def _slow(cls, v: str) -> str:
            with lock:
                busy[0] += 1
                peak[0] = max(peak[0], busy[0])
            time.sleep(0.15)
            with lock:
                busy[0] -= 1
            return v

    gate = _gate(engine)
    edge = Edge(downstream, {"/v1/outcomes": Route(Slow, 1 << 20)}, gate=lambda: gate)

    async def one(partner: str, client: httpx.AsyncClient) -> int:
        body = json.dumps({"partner": partner, "pad": "x" * 100_000})
        r = await client.post("/v1/outcomes", content=body, headers={"Authorization": f"Bearer {keys[partner]}"})
        by_partner[partner] = by_partner.get(partner, 0) + 1
        return r.status_code

    async def run(partners: list[str]) -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://edge") as c:
            return await asyncio.gather(*(one(p, c) for p in partners))

    assert asyncio.run(run(["acme", "acme", "acme"])) == [200, 200, 200] and peak[0] == 1
    assert asyncio.run(run(["acme", "beta", "gamma", "acme", "beta"])) == [200] * 5 and peak[0] == 2
