"""The HTTP edge of the /v1 app: every error as a problem document, bodies read within a limit, then parsed."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from earlywarn.serving import problems
from earlywarn.serving.problems import APIError
from earlywarn.serving.schema import validation_errors

log = logging.getLogger("earlywarn.serving")
WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _problem(request: Request, status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    rid = problems.request_id(request.scope)
    return JSONResponse(
        problems.body(status, code, detail, rid), status_code=status, headers=headers, media_type=problems.PROBLEM
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return _problem(request, exc.status, exc.error, exc.detail, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _problem(request, exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "request", "message": e["msg"]} for e in exc.errors()]
    return _problem(request, 422, "validation_error", errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Never a stack trace to the caller; the type and the request id go to the log (no request content).
    log.error("unexpected %s while handling request %s", type(exc).__name__, problems.request_id(request.scope))
    return _problem(request, 500, "internal_error", "something went wrong on our side; quote the instance when asking")


def answer_errors_as_problems(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _unexpected)


def problem_response(ctx: Any, err: APIError) -> JSONResponse:
    """An API method's error as a problem document (BentoML sets the status from the context, so it goes there too)."""
    ctx.response.status_code = err.status
    rid = problems.request_id(ctx.request.scope)
    content = problems.body(err.status, err.error, err.detail, rid)
    return JSONResponse(content, status_code=err.status, headers=err.headers, media_type=problems.PROBLEM)


async def read_body(request: Request, limit: int, empty: bytes | None = None) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed the limit (before any parsing); a blank one is
    refused with 422 unless `empty` stands in for it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, "body_too_large", f"limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, "body_too_large", f"limit is {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        if empty is not None:
            return empty
        raise APIError(422, "validation_error", [{"field": "body", "message": "empty body"}])
    return body


def parse(model: Any, body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise APIError(400, "malformed_json", "the body is not valid JSON") from None
        raise APIError(422, "validation_error", validation_errors(err)) from None


def explain_flag(values: list[str]) -> bool:
    """The `explain` query parameter, read after authentication (FastAPI would validate it before)."""
    if not values:
        return True
    if len(values) > 1 or values[0].lower() not in WORDS:
        raise APIError(422, "validation_error", [{"field": "explain", "message": "use true or false"}])
    return WORDS[values[0].lower()]
