"""The real BentoML server over HTTP: scoring, auth, partner isolation, every bad-input class, the model card."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from unittest.mock import ANY

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from bench.launcher import Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.serving.schema import max_body_bytes
from earlywarn.training import messages
from tests.drill import record
from tests.stack import days_of, scoring

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(served_model, small_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    db = f"sqlite:///{root / 'log.db'}"
    env = {k: v for k, v in served_model.items() if not k.startswith("_")} | {
        "EARLYWARN_DB_URL": db,
        "EARLYWARN_SPOOL_DIR": str(root / "spool"),
        "EARLYWARN_AUTH_FAILURE_LIMIT": "10000/minute",  # these tests send many bad keys on purpose (drills test the limit)
    }
    engine = store.engine_for(db)
    keys = {p: create_key(engine, p).token for p in ("acme", "beta", "gone")}
    srv = Server(env, root / "server.log").start()
    table = pd.read_parquet(small_cohort.features_path)
    yield srv, keys, engine, table
    srv.stop()


def _post(srv: Server, path: str, key: str | None, body, headers: dict[str, str] | None = None, **kw) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {}) | (headers or {})
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(srv.url + path, content=content, headers=headers, timeout=60, **kw)


def test_scores_many_participants_in_one_call(server):
    srv, keys, engine, table = server
    ids = sorted(table["participant_id"].unique())[:20]
    r = _post(
        srv,
        "/v1/risk-scores",
        keys["acme"],
        scoring([{"participant_id": f"ext-{p}", "days": days_of(table, p)} for p in ids]),
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    assert r.headers["content-language"] == "en"
    body = r.json()
    assert body["model_version"] == "1" and len(body["request_id"]) == 36 and len(body["results"]) == 20
    for res in body["results"]:
        assert res["status"] == "scored" and 0 <= res["risk"] <= 1 and res["band"] in ("low", "elevated", "high")
        assert res["escalation"]["state"] in ("new", "none") and res["escalate"] == (res["escalation"]["state"] == "new")
        assert (res["escalation"]["state"] == "new") == (res["band"] == "high")  # nobody had an episode before
        assert res["data_quality"]["days_observed"] >= 14 and set(res["data_quality"]["missing_share"]) >= {"steps", "mood_ema"}
        assert res["risk_interval"][0] <= res["risk"] <= res["risk_interval"][1] and res["interval_checked"] is True
        assert set(res["data_quality"]["signals_used"]) == set(res["data_quality"]["missing_share"])  # a full partner
        assert res["data_quality"]["signals_not_sent"] == [] and len(res["drivers"]) <= 3
        for d in res["drivers"]:  # only signals that moved the shown log-odds by at least 0.1 (none may have)
            assert {"signal", "kind", "direction", "deviation_sd", "text"} <= set(d) and abs(d["contribution"]) >= 0.1
    assert any(res["drivers"] for res in body["results"])
    deadline = time.time() + 10
    while store.count(engine, "predictions") < 20 and time.time() < deadline:
        time.sleep(0.2)
    stored = pd.read_sql(sa.text("select * from predictions"), engine.connect())
    assert len(stored) >= 20 and not stored["participant_key"].str.contains("ext-").any()
    assert set(stored["partner"]) == {"acme"} and stored["model_version"].eq("1").all()


def test_texts_follow_accept_language(server):
    srv, keys, _, table = server
    body = scoring([{"participant_id": "lang-1", "days": days_of(table, "P03")}, {"participant_id": "lang-2", "days": []}])
    body["participants"][1]["days"] = days_of(table, "P04")[-5:]  # too little data: a reason, not a score
    headers = {"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"}
    r = _post(srv, "/v1/risk-scores", keys["acme"], body, headers=headers)
    assert r.status_code == 200 and r.headers["content-language"] == "fr", r.text
    scored, short = r.json()["results"]
    assert short["status"] == "insufficient_data" and "Jours avec un signal : " in short["reason"]
    english = _post(srv, "/v1/risk-scores", keys["acme"], body).json()["results"][0]
    assert [d["signal"] for d in scored["drivers"]] == [d["signal"] for d in english["drivers"]]
    assert all(f["text"] != e["text"] for f, e in zip(scored["drivers"], english["drivers"], strict=True))


def test_authentication_comes_before_any_validation(server):
    srv, keys, _, table = server
    body = scoring([{"participant_id": "q", "days": days_of(table, "P01")}])
    assert _post(srv, "/v1/risk-scores?explain=maybe", None, body).status_code == 401
    assert _post(srv, "/v1/risk-scores?explain=maybe", None, b"{not json").status_code == 401
    bad = _post(srv, "/v1/risk-scores?explain=maybe", keys["acme"], body)
    assert bad.status_code == 422 and bad.json()["errors"] == [{"field": "explain", "message": "use true or false"}]
    quiet = _post(srv, "/v1/risk-scores?explain=false", keys["acme"], body).json()["results"][0]
    assert quiet["status"] == "scored" and "drivers" not in quiet
    record("authentication first (item 10)", "a bad query parameter and bad JSON without a key", "401 for both; 422 with a key")


def test_too_little_data_is_not_guessed(server):
    srv, keys, _, table = server
    days = days_of(table, "P00")[-5:]
    res = _post(srv, "/v1/risk-scores", keys["acme"], scoring([{"participant_id": "short", "days": days}])).json()["results"][0]
    assert res["status"] == "insufficient_data" and "the minimum is 14" in res["reason"] and "risk" not in res


def test_extreme_but_legal_values_give_finite_risks(server):
    srv, keys, _, _ = server
    from earlywarn.data.contract import STANDARD_SIGNALS

    for pick in ("low", "high"):
        day = {s.name: float(getattr(s, pick)) for s in STANDARD_SIGNALS}
        days = [{"date": f"2025-02-{d:02d}"} | day for d in range(1, 29)]
        res = _post(srv, "/v1/risk-scores", keys["acme"], scoring([{"participant_id": f"extreme-{pick}", "days": days}])).json()
        assert math.isfinite(res["results"][0]["risk"])


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer nonsense", 401), ("Bearer ew_000000000000_wrong", 401), ("Basic abc", 401)],
)
def test_auth_failures(server, header, status):
    srv, _, _, _ = server
    r = httpx.post(srv.url + "/v1/risk-scores", content=b"{}", headers={"Authorization": header} if header else {}, timeout=30)
    assert r.status_code == status and r.json()["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert r.headers["cache-control"] == "no-store"


def test_revoked_key_is_refused(server):
    srv, keys, engine, table = server
    from earlywarn.data.store.keys import revoke

    body = scoring([{"participant_id": "r1", "days": days_of(table, "P01")}])
    assert _post(srv, "/v1/risk-scores", keys["gone"], body).status_code == 200
    revoke(engine, partner="gone")
    time.sleep(1.1)  # verified keys are cached for a second on each replica
    assert _post(srv, "/v1/risk-scores", keys["gone"], body).status_code == 401


def test_partners_cannot_touch_each_others_participants(server):
    srv, keys, _, table = server
    scored = scoring([{"participant_id": "shared-id", "days": days_of(table, "P02")}])
    assert _post(srv, "/v1/risk-scores", keys["acme"], scored).status_code == 200
    outcome = {"outcomes": [{"participant_id": "shared-id", "date": "2025-09-01", "event": "relapse"}]}
    refused = _post(srv, "/v1/outcomes", keys["beta"], outcome)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "outcomes[0].participant_id"
    accepted = _post(srv, "/v1/outcomes", keys["acme"], outcome)
    assert accepted.status_code == 202 and accepted.json() == {"stored": 1, "new": 1}


def test_after_a_withdrawal_the_person_is_answered_withdrawn_and_nothing_is_stored(server):
    srv, keys, engine, table = server
    from earlywarn.data.pseudonym import Pseudonymizer

    body = scoring([{"participant_id": "leaving", "days": days_of(table, "P06")}])
    assert _post(srv, "/v1/risk-scores", keys["acme"], body).json()["results"][0]["status"] == "scored"
    key = Pseudonymizer.from_env()("acme", "leaving")
    time.sleep(1.5)  # the first prediction reaches the store, then the withdrawal deletes it
    store.forget(engine, "acme", key, [])
    again = _post(srv, "/v1/risk-scores", keys["acme"], body, headers={"Accept-Language": "de"})
    result = again.json()["results"][0]
    assert result["status"] == "withdrawn" and "risk" not in result and "Einwilligung" in result["reason"]
    outcome = {
        "outcomes": [{"participant_id": "leaving", "date": body["participants"][0]["days"][-1]["date"], "event": "relapse"}]
    }
    refused = _post(srv, "/v1/outcomes", keys["acme"], outcome)
    assert refused.status_code == 422 and "withdrew consent" in refused.json()["errors"][0]["message"]
    time.sleep(1.5)
    stored = pd.read_sql(sa.text("select participant_key from predictions"), engine.connect())
    assert key not in set(stored["participant_key"])


def test_outcomes_are_bounded_in_time_and_stored_once(server):
    srv, keys, engine, table = server
    person = scoring([{"participant_id": "dated", "days": days_of(table, "P05")}])
    assert _post(srv, "/v1/risk-scores", keys["acme"], person).status_code == 200
    first_day = dt.date.fromisoformat(person["participants"][0]["days"][-1]["date"]) - dt.timedelta(days=28)
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    for day, message in (
        (dt.date(1, 1, 1), "before this participant's first scored days"),
        (first_day - dt.timedelta(days=1), "before this participant's first scored days"),
        (tomorrow + dt.timedelta(days=1), "after tomorrow"),
        (dt.date(9999, 12, 31), "after tomorrow"),
    ):
        body = {"outcomes": [{"participant_id": "dated", "date": day.isoformat(), "event": "relapse"}]}
        refused = _post(srv, "/v1/outcomes", keys["acme"], body)
        assert refused.status_code == 422 and refused.json()["errors"][0] == {"field": "outcomes[0].date", "message": ANY}
        assert message in refused.json()["errors"][0]["message"], (day, refused.text)
    # A participant scored with days in year 1 (stale, but remembered): bounds near date.min must not overflow (the
    # fuzzer found a 500 here).
    ancient = {"participants": [{"participant_id": "ancient", "days": [{"date": "0001-01-02", "steps": 1000.0}]}]}
    assert _post(srv, "/v1/risk-scores", keys["acme"], ancient).json()["results"][0]["status"] == "stale"
    for day in ("0001-01-01", "2000-01-01"):
        old = _post(srv, "/v1/outcomes", keys["acme"], {"outcomes": [{"participant_id": "ancient", "date": day, "event": "a"}]})
        assert old.status_code == 202, old.text
    event = {"outcomes": [{"participant_id": "dated", "date": first_day.isoformat(), "event": "relapse"}]}
    assert _post(srv, "/v1/outcomes", keys["acme"], event).json() == {"stored": 1, "new": 1}
    # A repost at once is not new (b9b83e2 answered new: 1 until the spool had flushed, a few seconds later).
    assert _post(srv, "/v1/outcomes", keys["acme"], event).json() == {"stored": 1, "new": 0}
    assert _outcome_days(engine).count(first_day.isoformat()) == 1  # stored before the answer, once
    record(
        "outcome dates and reposts (item 9)",
        "dates 0001-01-01, a day before the first window, after tomorrow, 9999-12-31; then one outcome twice",
        "422 naming outcomes[0].date for each; the repost answered new: 0 and stored once",
    )


def _outcome_days(engine) -> list[str]:
    stored = store.read_outcomes(engine, "acme")
    return [str(d) for d in stored["date"]] if len(stored) else []


def test_old_data_is_stale_as_of_today_and_scored_as_of_its_own_day(server):
    """Without `as_of` a score is for today (UTC): the synthetic cohort's days lie in the past, so they are stale."""
    srv, keys, _, table = server
    person = [{"participant_id": "then", "days": days_of(table, "P03")}]
    now = _post(srv, "/v1/risk-scores", keys["acme"], {"participants": person}).json()["results"][0]
    assert now["status"] == "stale" and "days old" in now["reason"] and "risk" not in now and "escalate" not in now
    assert now["as_of"] == dt.datetime.now(dt.UTC).date().isoformat()
    then = _post(srv, "/v1/risk-scores", keys["acme"], scoring(person)).json()["results"][0]
    assert then["status"] == "scored" and then["as_of"] == person[0]["days"][-1]["date"]


def test_days_after_as_of_and_a_future_as_of_are_refused(server):
    srv, keys, _, table = server
    body = scoring([{"participant_id": "early", "days": days_of(table, "P03")}])
    days = [dt.date.fromisoformat(d["date"]) for d in body["participants"][0]["days"]]
    as_of = days[-1] - dt.timedelta(days=2)
    early = _post(srv, "/v1/risk-scores", keys["acme"], body | {"as_of": str(as_of)})
    first_after = next(j for j, d in enumerate(days) if d > as_of)
    assert early.status_code == 422
    assert early.json()["errors"] == [
        {"field": f"participants[0].days[{first_after}].date", "message": f"after as_of ({as_of}): days cannot be in the future"}
    ]
    future = _post(srv, "/v1/risk-scores", keys["acme"], body | {"as_of": "2999-01-01"})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "as_of"


def test_after_a_reported_event_the_washout_is_not_scored(server):
    """An event reported through /v1/outcomes puts the participant in washout for this partner (training never saw
    such windows); another partner's participant with the same id is still scored."""
    srv, keys, _, table = server
    body = scoring([{"participant_id": "relapsed", "days": days_of(table, "P04")}])
    assert _post(srv, "/v1/risk-scores", keys["acme"], body).json()["results"][0]["status"] == "scored"
    assert _post(srv, "/v1/risk-scores", keys["beta"], body).json()["results"][0]["status"] == "scored"
    event = {"outcomes": [{"participant_id": "relapsed", "date": body["as_of"], "event": "relapse"}]}
    assert _post(srv, "/v1/outcomes", keys["acme"], event).status_code == 202
    after = _post(srv, "/v1/risk-scores", keys["acme"], body).json()["results"][0]
    assert after["status"] == "recent_event" and body["as_of"] in after["reason"] and "band" not in after
    assert _post(srv, "/v1/risk-scores", keys["beta"], body).json()["results"][0]["status"] == "scored"


BAD_BODIES = [
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-01", "coffee_cups": 3}]}]},
        "participants[0].days[0].coffee_cups",
        "unknown field",
    ),
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-01", "steps": "many"}]}]},
        "participants[0].days[0].steps",
        "valid number",
    ),
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-01", "steps": True}]}]},
        "participants[0].days[0].steps",
        "valid number",
    ),
    ({"participants": [{"participant_id": "a", "days": [{"date": "01/02/2025"}]}]}, "participants[0].days[0].date", "date"),
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-02"}, {"date": "2025-01-01"}]}]},
        "participants[0].days[1].date",
        "out of order",
    ),
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-02"}, {"date": "2025-01-02"}]}]},
        "participants[0].days[1].date",
        "duplicated",
    ),
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-01", "sleep_duration_h": 25}]}]},
        "participants[0].days[0].sleep_duration_h",
        "less than or equal to 24",
    ),
    (
        {"participants": [{"participant_id": "a", "days": [{"date": "2025-01-01", "steps": -1}]}]},
        "participants[0].days[0].steps",
        "greater than or equal to 0",
    ),
    ({"participants": [{"participant_id": "a", "days": []}]}, "participants[0].days", "at least 1"),
    ({"participants": []}, "participants", "at least 1"),
    (
        {"participants": [{"participant_id": "", "days": [{"date": "2025-01-01"}]}]},
        "participants[0].participant_id",
        "at least 1",
    ),
    ({"participants": [{"participant_id": "a", "days": [{"date": "2025-01-01"}]}], "extra": 1}, "extra", "unknown field"),
    ({"people": []}, "participants", "required"),
    ([1, 2], "body", "object"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_BODIES)
def test_bad_input_names_field_and_index(server, body, field, message):
    srv, keys, _, _ = server
    r = _post(srv, "/v1/risk-scores", keys["acme"], body)
    assert r.status_code == 422, r.text
    detail = r.json()["errors"]
    assert any(d["field"] == field and message in d["message"] for d in detail), detail


def test_nan_infinity_empty_and_malformed(server):
    srv, keys, _, _ = server
    for token in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = '{"participants":[{"participant_id":"a","days":[{"date":"2025-01-01","steps":TOKEN}]}]}'.replace("TOKEN", token)
        r = _post(srv, "/v1/risk-scores", keys["acme"], raw)
        assert r.status_code in (400, 422) and "Traceback" not in r.text, (token, r.text)
        if r.status_code == 422:
            assert r.json()["errors"][0]["field"] == "participants[0].days[0].steps"
    assert _post(srv, "/v1/risk-scores", keys["acme"], b"").json()["errors"][0]["message"] == "empty body"
    assert _post(srv, "/v1/risk-scores", keys["acme"], b"{not json").status_code == 400


FEATS = list(__import__("earlywarn.data.contract", fromlist=["STANDARD_FEATURES"]).STANDARD_FEATURES)


def _is_problem(r: httpx.Response, status: int, rid: str | None = None) -> dict:
    """An RFC 9457 problem document for this status, carrying the request id in `instance` and X-Request-ID."""
    assert r.status_code == status, (status, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(body) and body["status"] == status
    echoed = r.headers["x-request-id"]
    assert body["instance"] == f"urn:request:{echoed}" and (rid is None or echoed == rid)
    return body


@pytest.mark.parametrize("status", [400, 401, 404, 405, 413, 422])
def test_every_error_is_a_problem_document_with_the_request_id(server, status):
    srv, keys, _, table = server
    rid = f"partner-trace:{status}.a-1"
    ok = scoring([{"participant_id": "pj", "days": days_of(table, "P01")}])
    auth = {"Authorization": f"Bearer {keys['acme']}", "X-Request-ID": rid, "Content-Type": "application/json"}
    send = {
        400: lambda: httpx.post(srv.url + "/v1/risk-scores", content=b"{not json", headers=auth, timeout=60),
        401: lambda: httpx.post(srv.url + "/v1/risk-scores", json=ok, headers={"X-Request-ID": rid}, timeout=60),
        404: lambda: httpx.get(srv.url + "/v1/no-such-thing", headers={"X-Request-ID": rid}, timeout=60),
        405: lambda: httpx.get(srv.url + "/v1/risk-scores", headers=auth, timeout=60),
        413: lambda: httpx.post(
            srv.url + "/v1/risk-scores", content=b" " * (max_body_bytes(FEATS) + 1), headers=auth, timeout=60
        ),
        422: lambda: httpx.post(srv.url + "/v1/risk-scores", json={"participants": []}, headers=auth, timeout=60),
    }[status]
    body = _is_problem(send(), status, rid)
    if status == 422:
        assert body["errors"] and {"field", "message"} <= set(body["errors"][0])


def test_a_path_with_a_line_break_is_a_problem_document_too(server):
    """Found by schemathesis: Starlette's /v1 mount does not match a path holding a line break, and BentoML answered
    it with a plain-text 404."""
    srv, keys, _, _ = server
    r = _post(srv, "/v1/alerts/%C2%B4%0A/feedback", keys["acme"], {"action": "contacted"}, headers={"X-Request-ID": "lb-1"})
    _is_problem(r, 404, "lb-1")


def test_openapi_describes_errors_2xx_bodies_and_bearer_auth_and_docs_need_no_cdn(server):
    srv, _, _, _ = server
    spec = httpx.get(srv.url + "/v1/openapi.json", timeout=30).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "description": ANY}
    assert "Problem" in spec["components"]["schemas"]
    for path, method, ok in (("/risk-scores", "post", "200"), ("/outcomes", "post", "202"), ("/model", "get", "200")):
        op = spec["paths"][path][method]
        assert "schema" in op["responses"][ok]["content"]["application/json"], (path, ok)
        if method == "post":
            assert op["security"] == [{"bearer": []}]
            assert "application/problem+json" in op["responses"]["422"]["content"]
    page = httpx.get(srv.url + "/v1/docs", timeout=30)
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    script = next(part.split('"')[0] for part in page.text.split('src="')[1:] if "swagger-ui-bundle" in part)
    assert httpx.get(srv.url + script, timeout=30).status_code == 200, script


def test_request_ids_are_echoed_or_made(server):
    srv, keys, _, table = server
    ok = scoring([{"participant_id": "rid", "days": days_of(table, "P01")}])
    mine = _post(srv, "/v1/risk-scores", keys["acme"], ok, headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123" and mine.json()["request_id"] == "abc-123"
    for sent in (None, "bad id with spaces", "x" * 129):
        r = _post(srv, "/v1/risk-scores", keys["acme"], ok, headers={"X-Request-ID": sent} if sent else None)
        made = r.headers["x-request-id"]
        assert made != sent and len(made) == 36 and r.json()["request_id"] == made


def test_limits_on_participants_days_and_body_size(server):
    srv, keys, _, _ = server
    day = {"date": "2025-01-01"}
    too_many = {"participants": [{"participant_id": f"p{i}", "days": [day]} for i in range(1001)]}
    r = _post(srv, "/v1/risk-scores", keys["acme"], too_many)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "participants"
    long = {
        "participants": [
            {"participant_id": "a", "days": [{"date": f"2025-{m:02d}-{d:02d}"} for m in range(1, 5) for d in range(1, 28)]}
        ]
    }
    r = _post(srv, "/v1/risk-scores", keys["acme"], long)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "participants[0].days"
    from earlywarn.data.contract import STANDARD_FEATURES

    limit = max_body_bytes(list(STANDARD_FEATURES))
    started = time.perf_counter()
    r = httpx.post(
        srv.url + "/v1/risk-scores", content=b" " * (limit + 1), headers={"Authorization": f"Bearer {keys['acme']}"}, timeout=60
    )
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    assert time.perf_counter() - started < 10  # refused without parsing (a parse of this size takes far longer)

    def chunks():
        for _ in range(limit // (1 << 20) + 2):
            yield b" " * (1 << 20)

    r = httpx.post(srv.url + "/v1/risk-scores", content=chunks(), headers={"Authorization": f"Bearer {keys['acme']}"}, timeout=60)
    assert r.status_code == 413  # no content-length: refused while streaming
    assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200


def test_largest_legal_request_fits_the_body_limit():
    from earlywarn.data.contract import STANDARD_SIGNALS

    day = {"date": "2025-01-01"} | {s.name: -123456.78901234567 for s in STANDARD_SIGNALS}
    one = json.dumps({"participant_id": "p" * 36, "days": [day] * 90}, separators=(",", ":"))
    assert len(one) * 1000 < max_body_bytes([s.name for s in STANDARD_SIGNALS])


def test_model_card_openapi_and_metrics(server):
    srv, keys, _, table = server
    assert _post(
        srv, "/v1/risk-scores", keys["acme"], scoring([{"participant_id": "m", "days": days_of(table, "P01")}])
    ).is_success
    got = httpx.get(srv.url + "/v1/model", timeout=30)
    assert got.status_code == 200, got.text

    def no_nan(token: str) -> None:
        raise AssertionError(f"the card holds {token}, which strict JSON readers refuse")

    card = json.loads(got.text, parse_constant=no_nan)  # undefined figures (NaN) are null
    ids = sorted(table["participant_id"].unique())[:30]
    answer = _post(
        srv, "/v1/risk-scores", keys["acme"], scoring([{"participant_id": f"nf-{p}", "days": days_of(table, p)} for p in ids])
    )
    for res in [r for r in answer.json()["results"] if r["status"] == "scored"]:  # the band's observed rate, told plainly
        rate = card["bands"]["observed"][res["band"]]["rate"]
        assert res["band_text"] == messages.natural_frequency("en", rate, card["outcome"]["horizon_days"]), res
    assert card["alerting"]["alerts_per_100_participant_months"] is not None and "episode_ppv" in card["alerting"]
    assert card["version"] == "1" and "not a diagnosis" in card["intended_use"] and card["limitations"]
    assert {"elevated", "high"} <= set(card["band_thresholds"]) and "auroc" in card["performance"]
    assert "ppv_high" in card["alerting"] and card["uncertainty"]["method"].startswith("80% interval")
    assert set(card["bands"]["observed"]) <= {"low", "elevated", "high"} and card["bands"]["observed"]["high"]["windows"] > 0
    assert card["drivers"]["minimum_effect_log_odds"] == 0.1
    assert "profile_wearable_calibration_in_the_large" in card["partial_signals"]
    text = json.dumps(card)
    assert "run_id" not in text and '"/' not in text and "/tmp" not in text  # nothing only the operator should see
    record("model card (item 10)", "GET /v1/model", "no run ids or file paths")
    spec = httpx.get(srv.url + "/v1/openapi.json", timeout=30).json()
    assert {"/risk-scores", "/outcomes", "/model"} <= set(spec["paths"]) and "RiskScoreRequest" in spec["components"]["schemas"]
    result = spec["components"]["schemas"]["RiskResult"]["properties"]
    assert {"risk_interval", "interval_checked", "drivers", "escalation", "status", "reason"} <= set(result)
    assert "withdrawn" in json.dumps(result["status"]) and "Driver" in spec["components"]["schemas"]
    other = 'earlywarn_http_requests_total{method="GET",route="other",status="404"} '

    def others(text: str) -> float:
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(other)), 0.0)

    before = others(httpx.get(srv.url + "/metrics", timeout=30).text)
    for i in range(30):  # made-up paths: answered 404, counted as `other`, never a series of their own
        assert httpx.get(f"{srv.url}/made-up-{i}/x", timeout=30).status_code == 404
    metrics = httpx.get(srv.url + "/metrics", timeout=30).text
    assert "earlywarn_participants_scored_total" in metrics
    ours = [line for line in metrics.splitlines() if line.startswith("earlywarn_http_")]
    assert ours and not any("made-up" in line for line in ours)
    assert others(metrics) == before + 30
    assert 'route="/v1/risk-scores"' in metrics
    # Issue 30: BentoML's own request metrics (a series per raw path; 5,500 paths made a 26 MB scrape) are off.
    assert not any("made-up" in line for line in metrics.splitlines())
    assert re.search(r'^earlywarn_model_info\{version="[^"]+"\} 1\.0$', metrics, re.M)
    assert re.search(r"^earlywarn_spool_backlog_bytes [0-9.e+]+$", metrics, re.M)  # read at scrape, not at /v1/status
    assert "earlywarn_store_flush_failures_total 0.0" in metrics and "earlywarn_scoring_queue_participants" in metrics
    record(
        "unknown paths (item 6)",
        "30 requests to made-up paths",
        "404; one `other` series; no series per path (BentoML's per-path request metrics switched off)",
    )


def test_logs_hold_no_raw_ids_or_keys(server):
    srv, keys, _, table = server
    body = scoring([{"participant_id": "logged-person-1", "days": days_of(table, "P03")}])
    rid = _post(srv, "/v1/risk-scores", keys["acme"], body, {"X-Request-ID": "access-log-check"}).headers["x-request-id"]
    time.sleep(0.5)
    text = srv.log_text()
    assert "ext-P0" not in text and "shared-id" not in text and keys["acme"] not in text and "logged-person-1" not in text
    # Issue 30: JSON lines, an access line per request (BentoML's access log is off, ours is on)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    [mine] = [x for x in lines if x.get("request_id") == rid == "access-log-check"]
    assert mine["logger"] == "earlywarn.access" and mine["partner"] == "acme" and mine["status"] == 200
    assert mine["route"] == "/v1/risk-scores" and mine["latency_ms"] >= 0
    assert any(x["logger"] == "earlywarn.serving" and "serving model version" in x["message"] for x in lines)


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        return {node["$ref"]} if isinstance(node.get("$ref"), str) else set().union(*map(_refs, node.values()))
    return set().union(*map(_refs, node)) if isinstance(node, list) else set()


def test_bentoml_clients_list_and_call_the_api_and_its_docs_resolve(server):
    """The BentoML way: `/schema.json` lists the methods, SyncHTTPClient and AsyncHTTPClient call them with the partner's
    key, errors still come back as problem documents, and BentoML's own OpenAPI document has no dangling reference."""
    import asyncio

    import bentoml
    from bentoml.exceptions import BentoMLException

    srv, keys, _, table = server
    names = {r["name"] for r in httpx.get(srv.url + "/schema.json", timeout=30).json()["routes"]}
    assert {"risk_scores", "report_outcomes", "escalation_feedback", "model_card"} <= names
    days = scoring([{"participant_id": "client-1", "days": days_of(table, "P01")}])
    with bentoml.SyncHTTPClient(srv.url, token=keys["acme"]) as client:
        scored = client.risk_scores(**days)
        assert [r["participant_id"] for r in scored["results"]] == ["client-1"] and scored["results"][0]["status"] == "scored"
        assert 0 <= scored["results"][0]["risk"] <= 1
        when = days["participants"][0]["days"][-1]["date"]
        assert client.report_outcomes(outcomes=[{"participant_id": "client-1", "date": when, "event": "relapse"}])["stored"] == 1
        assert client.model_card()["version"] == scored["model_version"]
        with pytest.raises(BentoMLException) as refused:
            client.escalation_feedback(alert_id="no-such-alert", action="contacted")
        assert "404" in str(refused.value) and "not_found" in str(refused.value)  # the problem document, passed on
    with bentoml.SyncHTTPClient(srv.url, token="ew_wrong") as stranger, pytest.raises(BentoMLException, match="401"):
        stranger.risk_scores(**days)

    async def call_async() -> dict:
        async with bentoml.AsyncHTTPClient(srv.url, token=keys["beta"]) as client:
            return await client.risk_scores(**scoring([{"participant_id": "client-2", "days": days_of(table, "P02")}]))

    assert asyncio.run(call_async())["results"][0]["participant_id"] == "client-2"
    doc = httpx.get(srv.url + "/docs.json", timeout=30).json()
    defined = {f"#/components/schemas/{name}" for name in doc["components"]["schemas"]}
    assert _refs(doc["paths"]) | _refs(doc["components"]) <= defined
    assert {"/v1/risk-scores", "/v1/outcomes", "/v1/escalations/feedback", "/v1/model"} <= set(doc["paths"])
    mine = httpx.get(srv.url + "/v1/openapi.json", timeout=30).json()
    assert _refs(mine) <= {f"#/components/schemas/{name}" for name in mine["components"]["schemas"]}
    wrong = httpx.get(srv.url + "/v1/risk-scores", timeout=30)
    assert wrong.status_code == 405 and wrong.headers["content-type"] == "application/problem+json"
