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


def install(app: FastAPI, bodies: dict[str, type[BaseModel]]) -> None:
    """Publish the request bodies (read by hand to enforce the size limit) in the OpenAPI document."""
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
            defs = schema.pop("$defs", {})
            comps.update(defs)
            comps[name] = schema
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def body(name: str) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    }


def problem_responses(**described: str) -> dict[int | str, dict[str, Any]]:
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


def accepted(schema: dict[str, Any], text: str) -> dict[int | str, dict[str, Any]]:
    return {"202": {"description": text, "content": {"application/json": {"schema": schema}}}}


def json_object(text: str) -> dict[int | str, dict[str, Any]]:
    return {"200": {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}}


OUTCOMES = ERRORS | accepted(
    {
        "type": "object",
        "required": ["stored", "new"],
        "properties": {"stored": {"type": "integer"}, "new": {"type": ["integer", "null"]}},
    },
    "Stored durably; `new` counts outcomes not stored before (null while the store is away)",
)
FEEDBACK = (
    ERRORS
    | problem_responses(_404="No escalation with this alert_id for this partner")
    | accepted(
        {
            "type": "object",
            "required": ["stored", "alert_id", "episode"],
            "properties": {"stored": {"type": "integer"}, "alert_id": {"type": "string"}, "episode": {"type": "string"}},
        },
        "Stored; the escalation's episode is closed",
    )
)


def routes(score_response: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each route's OpenAPI keywords, so the service's decorators name only path and method."""
    return {
        "risk_scores": {
            "openapi_extra": body("RiskScoreRequest") | {"parameters": [EXPLAIN_PARAMETER]} | SECURED,
            "responses": ERRORS | {200: {"model": score_response, "description": "One result per participant, in order"}},
        },
        "outcomes": {"status_code": 202, "openapi_extra": body("OutcomeRequest") | SECURED, "responses": OUTCOMES},
        "feedback": {"status_code": 202, "openapi_extra": body("FeedbackRequest") | SECURED, "responses": FEEDBACK},
        "model": {"responses": json_object("The served model's card")},
        "status": {
            "responses": problem_responses(_401="Missing or wrong ops token", _403="No ops token configured (production)")
            | json_object("Readiness detail")
        },
    }
