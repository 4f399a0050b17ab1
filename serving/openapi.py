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


REQUEST_ID = {
    "description": "This request's id (yours when you sent a sane X-Request-ID); quote it",
    "schema": {"type": "string"},
}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}
LANGUAGE = {"description": "The language of the texts (reasons, drivers, band_text)", "schema": {"type": "string"}}


def problem_responses(**described: str) -> dict[str, dict[str, Any]]:
    """OpenAPI responses for these statuses (`_429`, or `default`), each an RFC 9457 problem document."""
    content = {problems.PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    out = {}
    for status, text in described.items():
        headers = {"X-Request-ID": REQUEST_ID} | ({"Retry-After": RETRY_AFTER} if status in ("_429", "_503") else {})
        out[status.lstrip("_")] = {"description": text, "content": content, "headers": headers}
    return out


ERRORS = problem_responses(
    _400="Malformed JSON",
    _401="Missing or invalid API key",
    _404="No such resource (check that the base URL ends in /v1)",
    _405="Wrong method: the operations take POST (the model card also GET)",
    _413="Body larger than the largest legal request",
    _422="The request breaks the schema; `errors` names each field and index",
    _429="Over one of this partner's limits; `Retry-After` says when to retry",
    _500="Something went wrong on our side; quote `instance` when asking",
    _503="Not stored durably (so not returned), or too busy to queue it; `Retry-After` says when to retry",
    default="Any other error, as a problem document",
)


def answer(status: str, schema: dict[str, Any], text: str, **headers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    described = {"X-Request-ID": REQUEST_ID} | {name.replace("_", "-"): h for name, h in headers.items()}
    return {status: {"description": text, "content": {"application/json": {"schema": schema}}, "headers": described}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


CARD = answer("200", {"type": "object"}, "The served model's card") | problem_responses(_500="Unexpected", default="Other errors")
FEEDBACK = ERRORS | problem_responses(_404="No escalation with this alert_id for this partner")
FEEDBACK |= answer("202", ref("FeedbackStored"), "Stored; the escalation's episode is snoozed or closed")
OUTCOMES = ERRORS | answer("202", ref("Stored"), "Stored durably; `new` counts outcomes not stored before (0 for a repeat)")
STATUS = problem_responses(_401="Missing or wrong ops token", _403="No ops token configured (production)")
ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}


def post(summary: str, operation: str, body_name: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "operationId": operation, **body(body_name), **SECURED, "responses": responses, **more}


def paths() -> dict[str, dict[str, Any]]:
    """Every /v1 operation, relative to the /v1 server, with operation ids that read as names in generated clients."""
    scored = ERRORS | answer("200", ref("RiskScoreResponse"), "One result per participant, in order", Content_Language=LANGUAGE)
    feedback = post("What the care team did (path form)", "post_alert_feedback_by_path", "FeedbackRequest", FEEDBACK)
    return {
        "/risk-scores": {
            "post": post("Score participants", "score_participants", "RiskScoreRequest", scored, parameters=[EXPLAIN_PARAMETER])
        },
        "/outcomes": {"post": post("Report observed events", "report_outcomes", "OutcomeRequest", OUTCOMES)},
        "/escalations/feedback": {
            "post": post(
                "What the care team did about an escalation", "post_alert_feedback", "EscalationFeedbackRequest", FEEDBACK
            )
        },
        "/alerts/{alert_id}/feedback": {"post": feedback | {"parameters": [ALERT_ID]}},
        "/model": {
            "get": {"summary": "The served model's card", "operationId": "get_model_card", "responses": CARD},
            "post": {"summary": "The served model's card (POST form)", "operationId": "post_model_card", "responses": CARD}
            | body("NoInput"),
        },
        "/status": {"get": {"summary": "Readiness detail", "operationId": "get_status", "responses": STATUS | CARD}},
    }
