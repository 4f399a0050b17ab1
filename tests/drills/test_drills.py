"""Reliability and security drills against the real service: fuzzing, hostile input, rate limits, secrets, faults, soak."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes
from packaging.version import Version
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bench.launcher import Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.data.validation import ContractError, validate_features, validate_outcomes
from tests.drill import record, size
from tests.stack import days_of, scoring

pytestmark = pytest.mark.slow


def _env(served_model, root: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in served_model.items() if not k.startswith("_")}
    return base | {"EARLYWARN_DB_URL": f"sqlite:///{root / 'log.db'}", "EARLYWARN_SPOOL_DIR": str(root / "spool")} | extra


@pytest.fixture(scope="module")
def drill_server(served_model, small_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("drills")
    env = _env(served_model, root, EARLYWARN_RATE_LIMIT="100000/second", EARLYWARN_AUTH_FAILURE_LIMIT="100000/minute")
    engine = store.engine_for(env["EARLYWARN_DB_URL"])
    keys = {p: create_key(engine, p).token for p in ("acme", "beta")}
    server = Server(env, root / "server.log").start()
    yield server, keys, engine, pd.read_parquet(small_cohort.features_path)
    server.stop()


# --- hostile and malformed input -------------------------------------------------------------------------------


def test_fuzz_the_api_from_its_openapi_schema(drill_server):
    """Every operation in the service's own OpenAPI document, with and without a valid key: never a 5xx, every
    response as documented. (Schemathesis' strategies driven by hypothesis directly: its pytest plugin does not
    load under pytest 9.)"""
    server, keys, _, _ = drill_server
    schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json")
    schema.config.update(base_url=f"{server.url}/v1")
    counts = {"requests": 0, "5xx": 0, "operations": 0}
    for result in schema.get_all_operations():
        operation = result.ok()
        counts["operations"] += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=size(15, 300), deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            for headers in ({"Authorization": f"Bearer {keys['acme']}"}, {}):
                response = case.call(headers=headers, timeout=60)
                counts["requests"] += 1
                counts["5xx"] += response.status_code >= 500
                assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:300])
                # Not `positive_data_acceptance`: some rules (dates strictly increasing within a participant) are not
                # expressible in JSON Schema, so schema-valid bodies can rightly get a 422 naming the field.
                case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])

        check()
    assert counts["operations"] >= 4 and counts["5xx"] == 0
    record(
        "schemathesis fuzzing, with and without a key",
        f"{counts['requests']} requests over {counts['operations']} operations",
        "0 5xx; every response matches the schema",
    )


names = st.sampled_from(["participant_id", "date", "steps", "mood_ema", "sleep_duration_h", "unknown_col", ""])
cells = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.integers(), st.booleans())


@given(st.lists(st.tuples(names, cells, cells, cells), min_size=0, max_size=6))
@settings(max_examples=size(150, 2000), deadline=None)
def test_validators_accept_or_name_the_problem_on_arbitrary_tables(cols):
    frame = pd.DataFrame({name: list(values) for name, *values in cols}) if cols else pd.DataFrame()
    for validate in (lambda f: validate_features(f, source="t"), lambda f: validate_outcomes(f, {"P1"}, source="t")):
        try:
            validate(frame)
        except ContractError as err:
            assert err.problems and all(p.message for p in err.problems)
            assert str(err).strip()


@given(
    data_frames(
        [column("participant_id", dtype=str), column("date", dtype="datetime64[ns]"), column("steps", dtype=float)],
        index=range_indexes(max_size=20),
    )
)
@settings(max_examples=size(100, 1000), deadline=None)
def test_validators_on_typed_tables(frame):
    try:
        validate_features(frame, source="t")
    except ContractError as err:
        assert err.problems


def test_hostile_bodies_get_a_4xx_and_the_service_stays_up(drill_server):
    server, keys, _, table = drill_server
    auth = {"Authorization": f"Bearer {keys['acme']}", "Content-Type": "application/json"}
    nested = ("[" * 100_000) + ("]" * 100_000)
    huge_string = json.dumps({"participants": [{"participant_id": "x" * 5_000_000, "days": []}]})
    tried = 0
    for body in (nested, huge_string, '{"participants": ' + "[" * 5000, "\x00" * 1000):
        r = httpx.post(f"{server.url}/v1/risk-scores", content=body, headers=auth, timeout=60)
        tried += 1
        assert 400 <= r.status_code < 500, r.status_code

    # A slow client trickling a body: answered once the body ends, other clients served meanwhile.
    host, port = server.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)))
    slow.sendall(
        b"POST /v1/risk-scores HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {keys['acme']}\r\nContent-Length: 100\r\n\r\n".encode()
        + b'{"partic'
    )
    ok = httpx.post(
        f"{server.url}/v1/risk-scores",
        json=scoring([{"participant_id": "p", "days": days_of(table, table["participant_id"].iloc[0])}]),
        headers=auth,
        timeout=30,
    )
    slow.close()
    assert ok.status_code == 200
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    record(
        "hostile bodies (100k-deep nesting, 5 MB id, truncated, NUL bytes) + a slow client",
        f"{tried} bodies",
        "4xx each; service up; others served meanwhile",
    )


# --- access ----------------------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_per_partner(served_model, small_cohort, tmp_path):
    env = _env(served_model, tmp_path, EARLYWARN_RATE_LIMIT="5/second")
    engine = store.engine_for(env["EARLYWARN_DB_URL"])
    keys = {p: create_key(engine, p).token for p in ("greedy", "quiet")}
    table = pd.read_parquet(small_cohort.features_path)
    body = scoring([{"participant_id": "p1", "days": days_of(table, table["participant_id"].iloc[0])}])
    server = Server(env, tmp_path / "server.log").start()
    try:
        codes, retry = [], []
        with httpx.Client(timeout=30) as client:
            for _ in range(12):
                r = client.post(f"{server.url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {keys['greedy']}"})
                codes.append(r.status_code)
                if r.status_code == 429:
                    retry.append(int(r.headers["Retry-After"]))
                    limited = r
            quiet = client.post(f"{server.url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {keys['quiet']}"})
            time.sleep(max(retry, default=1))
            again = client.post(f"{server.url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {keys['greedy']}"})
    finally:
        server.stop()
    assert codes[:5] == [200] * 5 and 429 in codes and all(1 <= s <= 2 for s in retry)
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["status"] == 429 and limited.json()["instance"] == f"urn:request:{limited.headers['x-request-id']}"
    assert quiet.status_code == 200 and again.status_code == 200
    record(
        "per-partner rate limit (5/s)",
        "12 requests in a burst",
        f"{codes.count(429)} × 429 with Retry-After; other partner unaffected",
    )


def test_resource_limits_participant_days_outcomes_failed_auth_and_ops_endpoints(served_model, small_cohort, tmp_path):
    """OWASP API4: a partner's participant-days and outcomes are limited besides its requests; an address that keeps
    failing with one key id is refused before that key is looked up, whatever X-Forwarded-For it sends, while a
    valid key from the same address is served; the operators' endpoints need their own token."""
    env = _env(
        served_model,
        tmp_path,
        EARLYWARN_DAY_LIMIT="100/minute",
        EARLYWARN_OUTCOME_LIMIT="3/minute",
        EARLYWARN_AUTH_FAILURE_LIMIT="5/minute",
        EARLYWARN_OPS_TOKEN="ops-token-0123456789abcdef",
    )
    engine = store.engine_for(env["EARLYWARN_DB_URL"])
    key = create_key(engine, "acme").token
    auth = {"Authorization": f"Bearer {key}"}
    table = pd.read_parquet(small_cohort.features_path)
    people = sorted(table["participant_id"].unique())[:3]
    one = scoring([{"participant_id": "r-0", "days": days_of(table, people[0])}])  # 28 participant-days
    three = scoring([{"participant_id": f"r-{i}", "days": days_of(table, p)} for i, p in enumerate(people)])  # 84
    server = Server(env, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            days = [c.post("/v1/risk-scores", json=b, headers=auth).status_code for b in (one, one, one, three)]
            day = one["participants"][0]["days"][-1]["date"]
            outcome = {"outcomes": [{"participant_id": "r-0", "date": day, "event": "relapse"}]}
            outcomes = [c.post("/v1/outcomes", json=outcome, headers=auth).status_code for _ in range(5)]
            ops = [c.get(path).status_code for path in ("/metrics", "/v1/status")]
            ops_ok = [
                c.get(path, headers={"Authorization": "Bearer ops-token-0123456789abcdef"}).status_code
                for path in ("/metrics", "/v1/status")
            ]
            # Issue 30: a guesser behind the same proxy rotates X-Forwarded-For (not trusted by default) ...
            guess = {"Authorization": "Bearer ew_x_y"}
            bad = [
                c.post("/v1/risk-scores", json=one, headers=guess | {"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(7)
            ]
            # ... and a valid key from the same address is still served (auth passed: the made-up alert is a 404).
            feedback = {"alert_id": "no-such-alert", "action": "contacted"}
            valid = c.post("/v1/escalations/feedback", json=feedback, headers=auth)
            still = c.post("/v1/risk-scores", json=one, headers=guess)
    finally:
        server.stop()
    assert days == [200, 200, 200, 429], days  # 3 x 28 = 84 fit in 100; 84 more do not
    assert outcomes[:3] == [202] * 3 and outcomes[3:] == [429, 429], outcomes
    assert ops == [401, 401] and ops_ok == [200, 200]
    assert bad[:5] == [401] * 5 and bad[5:] == [429, 429], bad  # a spoofed client address changes nothing
    assert still.status_code == 429 and int(still.headers["Retry-After"]) >= 1
    assert valid.status_code == 404, valid.text  # failures count per address and key id: the partner is not locked out
    trail = store.audit.entries(engine)  # issue 30: failed authentications and lockouts are in the audit trail
    actions = [e.action for e in trail]
    assert actions.count("auth.failure") == 5 and actions.count("auth.locked_out") >= 2 and "model.load" in actions
    assert all(e.detail.get("key_id") == "x" for e in trail if e.action.startswith("auth."))
    assert store.audit.verify(engine)[1] is None and key.split("_")[-1] not in str([e.detail for e in trail])
    record(
        "resource limits (OWASP API4)",
        "participant-days 100/min, outcomes 3/min, 5 failed logins/min, ops token",
        "429 on the 4th request (84 + 84 days), on the 4th outcome, on the 6th bad key even with a rotated "
        "X-Forwarded-For; a valid key from the same address still served; /metrics and /v1/status 401 without the "
        "ops token",
    )


def test_a_full_scoring_queue_answers_503_with_retry_after(served_model, small_cohort, tmp_path):
    """With room for one participant waiting, whichever of two overlapping requests comes second is refused at once
    (503, Retry-After, a problem document with its request id), and once the queue drains requests are served."""
    # Refused requests return at once, so the loop below outruns the default rate limit: lifted here.
    env = _env(served_model, tmp_path, EARLYWARN_QUEUE_LIMIT="1", EARLYWARN_RATE_LIMIT="100000/second")
    engine = store.engine_for(env["EARLYWARN_DB_URL"])
    auth = {"Authorization": f"Bearer {create_key(engine, 'acme').token}"}
    table = pd.read_parquet(small_cohort.features_path)
    people = sorted(table["participant_id"].unique())
    big = scoring([{"participant_id": f"q-{i}", "days": days_of(table, people[i % len(people)])} for i in range(500)])
    small = scoring([{"participant_id": "q-small", "days": days_of(table, people[0])}])
    server = Server(env, tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            done: list[httpx.Response] = []
            worker = threading.Thread(  # its own connection: an httpx client is not shared across threads
                target=lambda: done.append(
                    httpx.post(f"{server.url}/v1/risk-scores", json=big, headers=auth | {"X-Request-ID": "big"}, timeout=120)
                )
            )
            worker.start()
            smalls: list[httpx.Response] = []
            while worker.is_alive():
                smalls.append(c.post("/v1/risk-scores", json=small, headers=auth | {"X-Request-ID": f"s{len(smalls)}"}))
            worker.join()
            after = c.post("/v1/risk-scores", json=small, headers=auth)
    finally:
        server.stop()
    refused = [r for r in [*done, *smalls] if r.status_code == 503]
    assert refused, "no request overlapped the big one"
    codes = [r.status_code for r in [*done, *smalls]]
    assert set(codes) <= {200, 503} and after.status_code == 200, (
        codes,
        [r.text[:200] for r in [*done, *smalls] if r.status_code not in (200, 503)],
    )
    r = refused[0]
    assert r.headers["retry-after"] == "1" and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "busy" and r.json()["instance"] == f"urn:request:{r.headers['x-request-id']}"
    record("full scoring queue (item 6)", "a request while 500 participants are scored, room for 1", "503 + Retry-After")


def test_logs_hold_no_raw_ids_signal_values_or_keys(drill_server):
    server, keys, _, table = drill_server
    marker_id = "ZZ-private-participant-4711"
    days = days_of(table, table["participant_id"].iloc[1])
    days[-1]["steps"] = 12345.678
    auth = {"Authorization": f"Bearer {keys['beta']}"}
    httpx.post(
        f"{server.url}/v1/risk-scores",
        json=scoring([{"participant_id": marker_id, "days": days}]),
        headers=auth,
        timeout=30,
    )
    bad = [dict(d, steps=-5.0) for d in days]  # an error path too
    httpx.post(
        f"{server.url}/v1/risk-scores",
        json=scoring([{"participant_id": marker_id, "days": bad}]),
        headers=auth,
        timeout=30,
    )
    httpx.post(
        f"{server.url}/v1/outcomes",
        json={"outcomes": [{"participant_id": marker_id, "date": "2025-01-01", "event": "relapse"}]},
        headers=auth,
        timeout=30,
    )
    time.sleep(1)
    text = server.log_text()
    assert marker_id not in text and "12345.678" not in text and "12345.68" not in text
    # Whole tokens and whole secrets (the part after "ew_<key id>_"): a short fragment could appear in any log by chance.
    assert all(k not in text and k.split("_", 2)[2] not in text for k in keys.values())
    record(
        "log scan after traffic and errors", f"{len(text.splitlines())} log lines", "no participant ids, signal values or keys"
    )


def _resigned(served_model, home: Path, seed: str) -> Path:
    """A copy of the store whose served model and its promotion record are signed with a production signing key, as
    training and promotion in production would."""
    import dataclasses

    from earlywarn.training import supply_chain
    from earlywarn.training.bundle import MANIFEST_FILE, ModelBundle
    from earlywarn.training.signing import Keys, keys, parse_private

    folder, demo, signer = _copied_model(served_model, home), keys(demo=True), Keys(parse_private(seed), {})
    bundle = ModelBundle.load(folder, demo)
    bundle.save(folder, covers=json.loads((folder / MANIFEST_FILE).read_text()).get("covers"), signer=signer)
    promoted = supply_chain.PromotionRecord.verified((folder / supply_chain.PROMOTION_FILE).read_text(), demo)
    resigned = dataclasses.replace(promoted, manifest_sha256=bundle.digest).signed(signer)
    (folder / supply_chain.PROMOTION_FILE).write_text(resigned)
    return home


def test_production_mode_refuses_the_demo_secret(served_model, tmp_path):
    for extra, message in (
        ({"EARLYWARN_MODE": "production"}, "EARLYWARN_HMAC_KEY"),
        ({"EARLYWARN_MODE": "production", "EARLYWARN_HMAC_KEY": "earlywarn-demo-key-not-secret"}, "demo HMAC key"),
    ):
        server = Server(_env(served_model, tmp_path, **extra), tmp_path / "server.log")
        assert message in _refused_at_start(server)
    from earlywarn.training.signing import keygen

    secret = tmp_path / "hmac.key"
    secret.write_text("a-real-secret-from-a-file-0123456789")
    secret.chmod(0o600)
    production = _env(served_model, tmp_path, EARLYWARN_MODE="production", EARLYWARN_HMAC_KEY_FILE=str(secret))
    seed, production["EARLYWARN_VERIFY_KEYS"], _ = keygen()  # the service holds the public key only
    demo_signed = Server(production, tmp_path / "demo-signed.log")
    assert "does not trust" in _refused_at_start(demo_signed)
    production["BENTOML_HOME"] = str(_resigned(served_model, tmp_path / "bentoml", seed))
    server = Server(production, tmp_path / "ok.log")
    server.start()
    try:  # without an ops token, production keeps the operators' endpoints closed
        ops = [httpx.get(f"{server.url}{path}", timeout=10).status_code for path in ("/metrics", "/v1/status")]
    finally:
        server.stop()
    assert ops == [403, 403]
    # The store now holds that key's fingerprint: another key would pseudonymise everyone to new ids.
    other = Server(
        _env(served_model, tmp_path, EARLYWARN_MODE="production", EARLYWARN_HMAC_KEY="another-real-secret-0123456789"),
        tmp_path / "other.log",
    )
    assert "not the one this store's ids were pseudonymised with" in _refused_at_start(other)
    typo = Server(_env(served_model, tmp_path, EARLYWARN_MODE="Production"), tmp_path / "typo.log")
    assert "EARLYWARN_MODE='Production'" in _refused_at_start(typo)
    record(
        "secrets",
        "production without a key, with the demo key, with a key file, then another key; mode 'Production'",
        "refused, refused, a demo-signed model refused, started (public key only), "
        "refused (fingerprint), refused (names the variable)",
    )


# --- faults ----------------------------------------------------------------------------------------------------


def test_mlflow_unreachable_at_start_serves_the_packaged_model(served_model, small_cohort, tmp_path):
    env = _env(served_model, tmp_path, MLFLOW_TRACKING_URI="http://127.0.0.1:9/")
    engine = store.engine_for(env["EARLYWARN_DB_URL"])
    key = create_key(engine, "acme").token
    table = pd.read_parquet(small_cohort.features_path)
    server = Server(env, tmp_path / "server.log").start()
    try:
        body = scoring([{"participant_id": "p", "days": days_of(table, table["participant_id"].iloc[0])}])
        r = httpx.post(f"{server.url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    finally:
        server.stop()
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "scored"
    record("MLflow unreachable at start", "tracking URI pointing at a closed port", "served the model packaged in BentoML")


def _refused_at_start(server: Server) -> str:
    """The reason a server gave for not starting (it must not start)."""
    with pytest.raises(RuntimeError) as err:
        server.start(timeout=90)
    return str(err.value)


def _copied_model(served_model, home: Path) -> Path:
    """A copy of the session's BentoML store; returns the served model's folder in it (the store may hold others)."""
    shutil.copytree(served_model["BENTOML_HOME"], home)
    name, version = served_model["EARLYWARN_MODEL_TAG"].split(":")
    return next((home / "models" / name / version).rglob("weights.pt")).parent


def test_a_tampered_model_is_refused_at_start(served_model, tmp_path):
    home = tmp_path / "bentoml"
    weights = _copied_model(served_model, home) / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-16] + b"\x00" * 16)
    server = Server(_env(served_model, tmp_path, BENTOML_HOME=str(home)), tmp_path / "server.log")
    assert "sha256 does not match" in _refused_at_start(server)
    record("corrupt model in the store", "16 bytes of the weights overwritten", "refused to start: sha256 mismatch named")


def test_a_swapped_model_with_a_recomputed_manifest_is_refused(served_model, tmp_path):
    """Someone who can write the model store replaces the weights and writes a matching manifest: the signature,
    made with the signing key they do not hold, no longer matches."""
    from earlywarn.training.bundle import MANIFEST_FILE, SPEC_FILE, WEIGHTS_FILE, sha256

    home = tmp_path / "bentoml"
    folder = _copied_model(served_model, home)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-16] + b"\x00" * 16)
    manifest = {name: sha256(folder / name) for name in (SPEC_FILE, WEIGHTS_FILE)}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    server = Server(_env(served_model, tmp_path, BENTOML_HOME=str(home)), tmp_path / "server.log")
    assert "signature does not match" in _refused_at_start(server)
    record(
        "swapped model (OWASP API8)",
        "weights changed and the sha256 manifest recomputed to match",
        "refused to start: the manifest's Ed25519 signature does not match",
    )


def test_kill_9_while_the_store_is_away_then_restart_replays_exactly_once(served_model, small_cohort, tmp_path):
    """Records acknowledged while the store cannot be written survive a kill -9 and land once after restart."""
    folder = tmp_path / "store"
    url = f"sqlite:///{folder / 'log.db'}"
    folder.mkdir()
    keys_engine = store.engine_for(url)  # keys live in the same store
    key = create_key(keys_engine, "acme").token
    keys_engine.dispose()  # closed, so the key is in log.db itself and not only in a WAL file beside it
    env = _env(served_model, tmp_path, EARLYWARN_DB_URL=url)
    table = pd.read_parquet(small_cohort.features_path)
    people = sorted(table["participant_id"].unique())[:3]
    body = scoring([{"participant_id": f"k9-{p}", "days": days_of(table, p)} for p in people])
    auth = {"Authorization": f"Bearer {key}"}
    server = Server(env, tmp_path / "server.log").start()
    away = tmp_path / "store.away"
    try:
        # One request while the store is there: the service then knows the key (its last known state covers
        # outages), rather than depending on a pooled connection outliving the store's folder.
        first = httpx.post(f"{server.url}/v1/risk-scores", json=body, headers=auth, timeout=30)
        assert first.status_code == 200, first.text
        acked = len(first.json()["results"])
        # The whole folder goes, so the database travels with its WAL files (moving log.db alone left a stale WAL
        # beside it, which once made SQLite answer "disk I/O error" after the restart).
        folder.rename(away)
        folder.write_text("")  # a plain file where the folder was: nothing can be created in it, even by root
        for _ in range(size(10, 100)):
            r = httpx.post(f"{server.url}/v1/risk-scores", json=body, headers=auth, timeout=30)
            assert r.status_code == 200, r.text  # acknowledged from the spool while the store is away
            acked += len(r.json()["results"])
    finally:
        server.stop(signal.SIGKILL)
    folder.unlink()
    away.rename(folder)
    restarted = Server(env, tmp_path / "server2.log").start()
    engine = store.engine_for(url)
    deadline = time.time() + 60
    while store.count(engine, "predictions") < acked and time.time() < deadline:
        time.sleep(0.5)
    restarted.stop()
    stored = store.count(engine, "predictions")
    assert acked > 0 and stored == acked, (acked, stored)
    record(
        "kill -9 with the store unwritable",
        f"{acked} acknowledged records, then SIGKILL and restart",
        "all replayed exactly once",
        acked - stored,
    )


def test_soak_at_half_capacity_without_errors_or_memory_growth(drill_server):
    """A short soak here; `make drill` runs 10 minutes."""
    server, keys, engine, table = drill_server
    seconds, rate = size(10, 600), 100  # about half the paced capacity measured in docs/serving.md
    body = json.dumps(scoring([{"participant_id": "soak", "days": days_of(table, table["participant_id"].iloc[2])}]))
    auth = {"Authorization": f"Bearer {keys['acme']}", "Content-Type": "application/json"}

    def rss() -> int:
        total = 0
        for p in [server.proc.pid, *_descendants(server.proc.pid)]:
            try:
                status = Path(f"/proc/{p}/status").read_text().splitlines()
                total += int(next(line for line in status if line.startswith("VmRSS")).split()[1])
            except (OSError, StopIteration):
                pass
        return total

    errors, sent = [0], [0]
    before_count = store.count(engine, "predictions")

    def worker(stop: float) -> None:
        with httpx.Client(timeout=30) as client:
            while time.time() < stop:
                t = time.time()
                r = client.post(f"{server.url}/v1/risk-scores", content=body, headers=auth)
                sent[0] += 1
                errors[0] += r.status_code != 200
                time.sleep(max(0.0, 10 / rate - (time.time() - t)))

    warm = time.time() + 5
    threads = [threading.Thread(target=worker, args=(warm,)) for _ in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    start_rss, sent[0] = rss(), 0
    stop = time.time() + seconds
    threads = [threading.Thread(target=worker, args=(stop,)) for _ in range(10)]
    [t.start() for t in threads]
    samples = []  # RSS in MB at each tenth of the soak: a plateau is warm-up, a steady climb a leak
    while any(t.is_alive() for t in threads):
        time.sleep(seconds / 10)
        samples.append(rss() // 1024)
    [t.join() for t in threads]
    end_rss = rss()
    print(f"\nsoak RSS samples (MB): {start_rss // 1024} -> {samples}")
    deadline = time.time() + 30
    while store.count(engine, "predictions") - before_count < sent[0] and time.time() < deadline:
        time.sleep(0.5)
    growth = end_rss / start_rss - 1
    lost = sent[0] - (store.count(engine, "predictions") - before_count - 0)
    record(
        f"soak {seconds} s at ~{sent[0] / seconds:.0f} req/s",
        f"{sent[0]} requests",
        f"{errors[0]} errors, RSS {start_rss // 1024} → {end_rss // 1024} MB ({growth:+.1%}; every tenth: {samples}; "
        f"second half {samples[-1] / samples[len(samples) // 2 - 1] - 1:+.1%})",
        max(lost, 0),
    )
    # A leak climbs to the end; warm-up (allocator arenas, caches) levels off. The 10-minute drill on 2026-11-28 grew
    # +10.8% and +8.7% in two runs, the second flat over its last 40% (samples in docs/security.md).
    late = samples[-1] / samples[len(samples) // 2 - 1] - 1
    assert errors[0] == 0 and late < 0.03 and growth < 0.15, (errors[0], growth, late, samples)
    assert lost <= 0  # warm-up records may still be arriving too, so more is fine, fewer is not


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [
                int(c) for t in os.listdir(f"/proc/{p}/task") for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()
            ]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


# --- supply chain ----------------------------------------------------------------------------------------------

MINIMUMS = {  # above the known security advisories; docs/security.md lists them with their ids
    "mlflow": "3.17",
    "bentoml": "1.4.39",
    "torch": "2.10",
    "pytorch-lightning": "2.4.1",
    "starlette": "0.49.1",
}


def test_installed_versions_are_above_the_advisories():
    found = {name: Version(version(name).split("+")[0]) for name in MINIMUMS}
    assert all(found[n] >= Version(v) for n, v in MINIMUMS.items()), found
    record("dependency floors", ", ".join(f"{n} {found[n]}" for n in MINIMUMS), "all at or above the advisory fixes")


def test_telemetry_is_off_in_every_process_we_start(drill_server):
    server = drill_server[0]
    environ = {}
    for pid in [server.proc.pid, *_descendants(server.proc.pid)]:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)
        off = {v: env.get(v, "").lower() == "true" for v in ("BENTOML_DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
        assert all(off.values()), (pid, off)  # BentoML rewrites its own flag as "True" in its workers
        environ[pid] = env
    record(
        "telemetry off",
        f"{len(environ)} server processes' environments",
        "BENTOML_DO_NOT_TRACK, MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK all true",
    )


def test_tracing_reaches_an_otlp_collector_without_ids(served_model, small_cohort, tmp_path):
    """BentoML's documented OTLP tracing, on: spans of a scored request reach a local collector (the exporter is in
    the lock), and no participant id or signal value is in them."""
    import gzip
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[bytes] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    config = tmp_path / "bentoml.yaml"
    config.write_text(  # no `version` key: BentoML 1.4's CLI and its workers read the file with different defaults
        "services:\n  tracing:\n    exporter_type: otlp\n    sample_rate: 1.0\n"
        f"    otlp:\n      protocol: http\n      endpoint: http://127.0.0.1:{collector.server_port}/v1/traces\n"
    )
    env = _env(served_model, tmp_path, BENTOML_CONFIG=str(config), OTEL_BSP_SCHEDULE_DELAY="200")
    key = create_key(store.engine_for(env["EARLYWARN_DB_URL"]), "acme").token
    table = pd.read_parquet(small_cohort.features_path)
    person = table["participant_id"].iloc[0]
    server = Server(env, tmp_path / "server.log").start()
    try:
        body = scoring([{"participant_id": "traced-person-7q", "days": days_of(table, person)}])
        r = httpx.post(f"{server.url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        deadline = time.time() + 20
        while not received and time.time() < deadline:
            time.sleep(0.2)
    finally:
        server.stop()
        collector.shutdown()
    assert r.status_code == 200
    spans = [
        s
        for raw in received
        for rs in ExportTraceServiceRequest.FromString(raw).resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert spans, server.log_text()[-3000:]
    assert "traced-person-7q" not in str(spans) and b"traced-person-7q" not in b"".join(received)
    record(
        "tracing on (OTLP over http)",
        "a scored request with BentoML's tracing sent to a local collector",
        f"{len(spans)} spans, no ids",
    )
