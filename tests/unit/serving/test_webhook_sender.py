"""The durable webhook queue: sent once with Standard Webhooks headers, retried, given up, or closed for no webhook."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
from typing import ClassVar

import pytest
import standardwebhooks

from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.data.store.webhooks import delivery_record, destination_problem, set_webhook
from earlywarn.serving.webhook_sender import WebhookSender


class _Endpoint(http.server.BaseHTTPRequestHandler):
    answer: ClassVar[int] = 204
    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        _Endpoint.got.append(
            ({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(int(self.headers["Content-Length"])))
        )
        self.send_response(_Endpoint.answer)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def setup(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate(engine)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    create_key(engine, "acme")
    hook = set_webhook(engine, "acme", f"http://127.0.0.1:{server.server_address[1]}/")
    _Endpoint.got, _Endpoint.answer = [], 204
    yield engine, hook
    server.shutdown()


def _queue(engine, partner: str) -> str:
    payload = {"type": "escalation.opened", "timestamp": "t", "data": {"alert_id": "a1"}}
    record = delivery_record(partner, "k1", "escalation.opened", payload, dt.datetime.now(dt.UTC))
    store.insert_ignoring_duplicates(engine, "webhook_deliveries", [record])
    return record["record_id"]


def _settled(engine, timeout: float = 10.0) -> dict[str, dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = {d["record_id"]: d for d in store.read_deliveries(engine)}
        if all(d["delivered_at"] or d["gave_up_at"] for d in rows.values()):
            return rows
        time.sleep(0.05)
    raise AssertionError("deliveries did not settle")


def test_a_queued_notification_is_sent_once_signed_and_marked_delivered(setup):
    engine, hook = setup
    rid = _queue(engine, "acme")
    sender = WebhookSender(engine, poll_s=0.05)
    try:
        row = _settled(engine)[rid]
    finally:
        sender.close()
    assert row["delivered_at"] is not None and row["attempts"] == 1 and len(_Endpoint.got) == 1
    headers, body = _Endpoint.got[0]
    assert headers["webhook-id"] == rid
    assert standardwebhooks.Webhook(hook.secret).verify(body, headers)["data"]["alert_id"] == "a1"


def test_failures_are_retried_then_given_up_and_a_partner_without_a_webhook_is_closed_at_once(setup):
    engine, _ = setup
    _Endpoint.answer = 503
    failing, nowhere = _queue(engine, "acme"), _queue(engine, "beta")
    sender = WebhookSender(engine, attempts=3, first_delay_s=0.05, poll_s=0.05)
    try:
        rows = _settled(engine)
    finally:
        sender.close()
    assert rows[failing]["gave_up_at"] is not None and rows[failing]["attempts"] == 3 and len(_Endpoint.got) == 3
    assert {h["webhook-id"] for h, _ in _Endpoint.got} == {failing}  # the same id on every try
    assert rows[nowhere]["gave_up_at"] is not None and rows[nowhere]["last_error"] == "no webhook"


HTTPS, INTERNAL = "must be https", "resolves to a private, loopback, link-local or reserved address"


def _resolving_to(*addresses: str):
    return lambda host, port: [(2, 1, 6, "", (a, port)) for a in addresses]


@pytest.mark.parametrize(
    ("url", "addresses", "why"),
    [
        ("http://hooks.example.org/x", ("93.184.215.14",), HTTPS),
        ("https://169.254.169.254/latest/meta-data", ("169.254.169.254",), INTERNAL),  # cloud metadata
        ("https://metadata.internal/", ("169.254.169.254",), INTERNAL),
        ("https://intranet.example/", ("10.0.0.7",), INTERNAL),
        ("https://127.0.0.1:8443/", ("127.0.0.1",), INTERNAL),
        ("https://[::1]/", ("::1",), INTERNAL),
        ("https://split.example/", ("93.184.215.14", "192.168.1.2"), INTERNAL),  # one private address is enough
    ],
)
def test_production_webhooks_go_only_to_public_https_endpoints(url, addresses, why):
    """b9b83e2 accepted cloud-metadata, private and loopback addresses over plain http in production."""
    problem = destination_problem(url, production=True, resolve=_resolving_to(*addresses))
    assert problem is not None and why in problem
    assert destination_problem("https://hooks.example.org/x", True, _resolving_to("93.184.215.14")) is None


def test_a_webhook_needs_a_partner_with_a_key(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(ValueError, match="no partner 'nobody'"):
        set_webhook(engine, "nobody", "http://127.0.0.1:9/")


def test_a_destination_that_turns_private_is_not_posted_to(setup, monkeypatch):
    """The URL is resolved again before each delivery: a host re-pointed at an internal address gets nothing."""
    engine, _ = setup
    record_id = _queue(engine, "acme")
    sender = WebhookSender(engine, attempts=1, poll_s=0.05, production=True)  # 127.0.0.1 over http: refused now
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and store.read_deliveries(engine)[0]["attempts"] == 0:
            time.sleep(0.05)
    finally:
        sender.close()
    [row] = store.read_deliveries(engine)
    assert row["record_id"] == record_id and row["delivered_at"] is None and row["last_error"] == "destination refused"
    assert _Endpoint.got == []
