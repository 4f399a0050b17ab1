"""The /v1 OpenAPI document: request bodies read by hand published as schemas, errors as problem documents."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from earlywarn.serving import problems

EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "description": "false skips the drivers",
    "schema": {"type": "boolean", "default": True},
}
SECURED: dict[str, Any] = {"security": [{"bearer": []}]}


def install(app: FastAPI, bodies: dict[str, type[BaseModel]], paths: dict[str, dict[str, Any]]) -> None:
    """The /v1 document: every operation written here (the API methods are BentoML's, the rest hidden from FastAPI's
    own generator), with the request and response models as schemas and errors as problem documents."""
    base = app.openapi
    schemas = {name: model.model_json_schema(ref_template="#/components/schemas/{model}") for name, model in bodies.items()}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = base()
        comps = doc.setdefault("components", {}).setdefault("schemas", {})
        comps["Problem"] = problems.SCHEMA
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A partner key from `earlywarn keys create`"}
        }
        for name, schema in schemas.items():
            comps.update(schema.pop("$defs", {}))
            comps[name] = schema
        doc["paths"] = paths
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def body(name: str) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    }


def problem_responses(**described: str) -> dict[str, dict[str, Any]]:
    """OpenAPI responses for these statuses, each an RFC 9457 problem document."""
    content = {problems.PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {status.lstrip("_"): {"description": text, "content": content} for status, text in described.items()}


ERRORS = problem_responses(
    _400="Malformed JSON",
    _401="Missing or invalid API key",
    _413="Body larger than the largest legal request",
    _429="Over one of this partner's limits; `Retry-After` says when to retry",
    _422="The request breaks the schema; `errors` names each field and index",
    _503="Not stored durably (so not returned), or too busy to queue it; `Retry-After` on the latter",
)


def answer(status: str, schema: dict[str, Any], text: str) -> dict[str, dict[str, Any]]:
    return {status: {"description": text, "content": {"application/json": {"schema": schema}}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


CARD = answer("200", {"type": "object"}, "The served model's card")
FEEDBACK = ERRORS | problem_responses(_404="No escalation with this alert_id for this partner")
FEEDBACK |= answer("202", ref("FeedbackStored"), "Stored; the escalation's episode is closed")
OUTCOMES = ERRORS | answer("202", ref("Stored"), "Stored durably; `new` counts outcomes not stored before")
STATUS = problem_responses(_401="Missing or wrong ops token", _403="No ops token configured (production)")
ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}


def post(summary: str, name: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "operationId": name, **body(name), **SECURED, "responses": responses, **more}


def paths() -> dict[str, dict[str, Any]]:
    """Every /v1 operation, relative to the /v1 server."""
    scored = ERRORS | answer("200", ref("RiskScoreResponse"), "One result per participant, in order")
    return {
        "/risk-scores": {"post": post("Score participants", "RiskScoreRequest", scored, parameters=[EXPLAIN_PARAMETER])},
        "/outcomes": {"post": post("Report observed events", "OutcomeRequest", OUTCOMES)},
        "/escalations/feedback": {"post": post("What the care team did", "EscalationFeedbackRequest", FEEDBACK)},
        "/alerts/{alert_id}/feedback": {
            "post": post("What the care team did (path form)", "FeedbackRequest", FEEDBACK, parameters=[ALERT_ID])
        },
        "/model": {
            "get": {"summary": "The served model's card", "operationId": "model_card_get", "responses": CARD},
            "post": {"summary": "The served model's card", "operationId": "model_card", "responses": CARD} | body("NoInput"),
        },
        "/status": {"get": {"summary": "Readiness detail", "operationId": "status", "responses": STATUS | CARD}},
    }
