"""The partner API as client generators and clinical systems see it: a typed client generated from the live OpenAPI
document exercises every operation and error status, and FHIR results validate against the FHIR models."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from bench.launcher import Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from tests.stack import days_of, scoring

pytestmark = pytest.mark.slow
LIMIT = 8  # requests a minute per partner: the 429 below is reached by partner "busy" alone


@pytest.fixture(scope="module")
def api(served_model, small_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    db = f"sqlite:///{root / 'log.db'}"
    env = {k: v for k, v in served_model.items() if not k.startswith("_")}
    env |= {"EARLYWARN_DB_URL": db, "EARLYWARN_SPOOL_DIR": str(root / "spool"), "EARLYWARN_RATE_LIMIT": f"{LIMIT}/minute"}
    engine = store.engine_for(db)
    keys = {p: create_key(engine, p).token for p in ("acme", "busy", "example")}
    srv = Server(env, root / "server.log").start()
    yield srv, keys, pd.read_parquet(small_cohort.features_path), root
    srv.stop()


@pytest.fixture(scope="module")
def client_package(api):
    """`openapi-python-client generate` from the document the live service serves, imported as a package."""
    srv, _, _, root = api
    (root / "openapi.json").write_text(httpx.get(f"{srv.url}/v1/openapi.json", timeout=30).text)
    tool = str(Path(sys.executable).with_name("openapi-python-client"))
    made = subprocess.run(
        [tool, "generate", "--path", str(root / "openapi.json"), "--output-path", str(root / "ew_client"), "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    assert "Warning" not in made.stdout, made.stdout  # every part of the document was understood
    sys.path.insert(0, str(root))
    yield importlib.import_module("ew_client")
    sys.path.remove(str(root))


def _op(package: Any, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.default.{name}")


def test_a_generated_client_calls_every_operation_and_reads_every_error(api, client_package):
    srv, keys, table, _ = api
    models = importlib.import_module(f"{client_package.__name__}.models")
    c = client_package.AuthenticatedClient(base_url=f"{srv.url}/v1", token=keys["acme"])
    day = days_of(table, "P01")
    body = models.RiskScoreRequest.from_dict(scoring([{"participant_id": "gen-1", "days": day}]))
    scored = _op(client_package, "score_participants").sync_detailed(client=c, body=body)
    assert scored.status_code == 200 and isinstance(scored.parsed, models.RiskScoreResponse)
    result = scored.parsed.results[0]
    assert result.status == "scored" and isinstance(result.window_end, dt.date)  # `format: date` in the document
    assert scored.headers["content-language"] and scored.headers["x-request-id"]

    outcome = {"outcomes": [{"participant_id": "gen-1", "date": day[-1]["date"], "event": "relapse"}]}
    report = _op(client_package, "report_outcomes")
    first = report.sync_detailed(client=c, body=models.OutcomeRequest.from_dict(outcome))
    again = report.sync_detailed(client=c, body=models.OutcomeRequest.from_dict(outcome))
    assert (first.status_code, first.parsed.new, again.parsed.new) == (202, 1, 0)  # a repeat at once is not new

    feedback = {"alert_id": "no-such-alert", "action": "contacted"}
    missing = _op(client_package, "post_alert_feedback").sync_detailed(
        client=c, body=models.EscalationFeedbackRequest.from_dict(feedback)
    )
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    card = _op(client_package, "get_model_card").sync_detailed(client=c)
    assert card.status_code == 200 and card.parsed is not None

    wrong = client_package.AuthenticatedClient(base_url=f"{srv.url}/v1", token="ew_nokey_" + "x" * 40)
    refused = _op(client_package, "score_participants").sync_detailed(client=wrong, body=body)
    assert refused.status_code == 401 and isinstance(refused.parsed, models.Problem)
    backwards = scoring([{"participant_id": "gen-2", "days": day[::-1]}])
    invalid = _op(client_package, "score_participants").sync_detailed(client=c, body=models.RiskScoreRequest.from_dict(backwards))
    assert invalid.status_code == 422 and invalid.parsed.errors  # type: ignore[union-attr]

    # What a typed body cannot express (a wrong method, an oversized body), sent raw and read by the client's parser.
    from earlywarn.data.contract import STANDARD_FEATURES
    from earlywarn.serving.schema import max_body_bytes

    raw, too_big = c.get_httpx_client(), b" " * (max_body_bytes(list(STANDARD_FEATURES)) + 1)
    parse = _op(client_package, "score_participants")._build_response
    for status, response in ((405, raw.get("/risk-scores")), (413, raw.post("/risk-scores", content=too_big))):
        assert response.status_code == status
        assert isinstance(parse(client=c, response=response).parsed, models.Problem), status

    busy = client_package.AuthenticatedClient(base_url=f"{srv.url}/v1", token=keys["busy"])
    answers = [_op(client_package, "score_participants").sync_detailed(client=busy, body=body) for _ in range(LIMIT + 1)]
    limited = answers[-1]
    assert [a.status_code for a in answers[:LIMIT]] == [200] * LIMIT
    assert limited.status_code == 429 and isinstance(limited.parsed, models.Problem) and int(limited.headers["retry-after"]) >= 1


def test_fhir_results_are_risk_assessments_in_a_bundle(api):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.riskassessment import RiskAssessment

    srv, keys, table, _ = api
    people = [
        {"participant_id": "fhir-1", "days": days_of(table, "P02")},
        {"participant_id": "fhir-2", "days": days_of(table, "P03", 3)},
    ]
    body = scoring(people)
    auth = {"Authorization": f"Bearer {keys['acme']}"}
    plain = httpx.post(f"{srv.url}/v1/risk-scores", json=body, headers=auth, timeout=60).json()
    r = httpx.post(f"{srv.url}/v1/risk-scores", json=body, headers=auth | {"Accept": "application/fhir+json"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(r.json())
    assessments = [RiskAssessment.model_validate(e.resource.model_dump(mode="json")) for e in bundle.entry]
    scored, withheld = assessments
    expect = plain["results"][0]
    assert scored.status == "final" and scored.subject.identifier.value == "fhir-1"
    assert scored.subject.identifier.system == "urn:earlywarn:partner:acme"  # the partner's own id, not a pseudonym
    prediction = scored.prediction[0]
    assert float(prediction.probabilityDecimal) == pytest.approx(expect["risk"])
    assert prediction.qualitativeRisk.text == expect["band"]
    low, high = prediction.extension[0].valueRange.low.value, prediction.extension[0].valueRange.high.value
    assert [float(low), float(high)] == pytest.approx(expect["risk_interval"])
    assert plain["model_version"] in scored.method.text
    assert [b.display for b in scored.basis or []] == [d["text"] for d in expect.get("drivers") or []]
    assert withheld.status == "cancelled" and not withheld.prediction
    assert withheld.note[0].text == plain["results"][1]["reason"]


def test_the_example_client_runs_against_the_live_service(api, tmp_path):
    """examples/partner_client.py as docs/partners.md tells a partner to run it."""
    from bench.launcher import ROOT

    srv, keys, table, _ = api
    mine = table[table["participant_id"].isin(["P04", "P05"])].groupby("participant_id").tail(40)
    mine.assign(date=pd.to_datetime(mine["date"]).dt.strftime("%Y-%m-%d")).to_csv(tmp_path / "days.csv", index=False)
    newest = pd.to_datetime(mine["date"]).max().strftime("%Y-%m-%d")
    env = {"EARLYWARN_URL": f"{srv.url}/v1", "EARLYWARN_KEY": keys["example"], "EARLYWARN_AS_OF": newest}
    env |= {"EARLYWARN_REPORT_EVENT": f"P04,{newest}", "PATH": "/usr/bin:/bin"}
    script = [sys.executable, str(ROOT / "examples" / "partner_client.py"), str(tmp_path / "days.csv")]
    done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "P04: scored, risk" in done.stdout and "P05: scored, risk" in done.stdout
    assert "outcome stored (1 new)" in done.stdout
    mine.assign(date=pd.to_datetime(mine["date"]).dt.strftime("%Y-%m-%d"), mood_typo=1.0).to_csv(
        tmp_path / "bad.csv", index=False
    )
    bad = subprocess.run([*script[:2], str(tmp_path / "bad.csv")], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "mood_typo" in bad.stdout and "422 validation_error" in bad.stderr, bad.stdout + bad.stderr
