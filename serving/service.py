"""The BentoML service: a thin async /v1 API over the scoring functions, the key store and the spooled prediction log."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import bentoml
import limits
import sqlalchemy as sa
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from data import episodes, prediction_log, state
from data.episodes import Episode
from data.pseudonym import Pseudonymizer
from data.spool import Spool
from serving import problems
from serving.alerts import AlertSender
from serving.batcher import MicroBatcher, QueueFull
from serving.config import ServeConfig
from serving.keys import KeyVerifier
from serving.ops import OpsGate, RouteMetrics
from serving.problems import RequestIds
from serving.ratelimit import Limiter
from serving.schema import (
    FeedbackRequest,
    OutcomeRequest,
    RiskScoreResponse,
    as_of_errors,
    day_order_errors,
    max_body_bytes,
    score_request_model,
    validation_errors,
)
from serving.scoring import assemble, score
from training import messages
from training.bundle import ModelBundle
from training.scoring import MAX_STALENESS_DAYS, WITHDRAWN, reason_text

log = logging.getLogger("earlywarn.serving")
state.private_files()  # also when started by `bentoml serve` directly: the log, spool and keys stay private
OUTCOME_IDS = uuid.UUID("5f1c7f0e-6b7e-4a0c-9a53-2f1d8c3e9b10")  # namespace of outcome record ids (uuid5)
INLINE_PARSE_BYTES = 64 * 1024  # about five participants x 28 days: parsed on the event loop in about 0.3 ms
CONFIG = ServeConfig.from_env()


def preflight(cfg: ServeConfig) -> None:
    """Refuse to start on a bad EARLYWARN_MODE, a missing or demo secret in production, an HMAC key other than the
    one the store was pseudonymised with, or a tampered or unusable model: checked when
    the module is imported, so `bentoml serve` exits with the message instead of workers failing and retrying."""
    pseudonymizer = Pseudonymizer.from_env(cfg.demo)
    try:
        prediction_log.check_key(prediction_log.engine_for(cfg.db_url), pseudonymizer)
    except sa.exc.SQLAlchemyError as err:  # the store may be away at start; the spool holds records until it is back
        log.warning("could not check the HMAC key against the store (%s); checked at the next start", type(err).__name__)
    ModelBundle.load(bentoml.models.get(cfg.model_tag).path)


preflight(CONFIG)

app = FastAPIOffline(  # Swagger UI and ReDoc served from the package, not a CDN
    title="earlywarn risk-score API",
    version="1",
    description="Calibrated relapse-risk scores for care teams. Decision support, not a diagnosis.",
    docs_url="/docs",
    openapi_url="/openapi.json",
    servers=[{"url": "/v1"}],  # the app is mounted under /v1 in the BentoML server
)

SCORED = bentoml.metrics.Counter(
    name="earlywarn_participants_scored_total",
    documentation="Participants answered, by status and band",
    labelnames=["status", "band"],
)
RATE_LIMITED = bentoml.metrics.Counter(
    name="earlywarn_rate_limited_total", documentation="Requests refused with 429 by the per-partner rate limit"
)
HTTP_REQUESTS = bentoml.metrics.Counter(
    name="earlywarn_http_requests_total",
    documentation="HTTP requests by route template (`other` for any path that is not a route), method and status",
    labelnames=["route", "method", "status"],
)
HTTP_LATENCY = bentoml.metrics.Histogram(
    name="earlywarn_http_request_duration_seconds",
    documentation="Time to answer, by route template",
    labelnames=["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SPOOL_BACKLOG = bentoml.metrics.Gauge(
    name="earlywarn_spool_backlog_bytes", documentation="Prediction-log bytes not yet in the store"
)


@dataclass
class ScoreJob:
    """One validated request waiting for the model."""

    rows: list[tuple[str, list[tuple[dt.date, list[float | None]]]]]
    as_of: dt.date
    partner: str
    request_id: str
    explain: bool
    language: str = messages.DEFAULT


class APIError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def _problem(request: Request, status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    rid = problems.request_id(request.scope)
    return JSONResponse(
        problems.body(status, code, detail, rid), status_code=status, headers=headers, media_type=problems.PROBLEM
    )


@app.exception_handler(APIError)
async def _api_error(request: Request, exc: APIError) -> JSONResponse:
    return _problem(request, exc.status, exc.error, exc.detail, exc.headers)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _problem(request, exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "request", "message": e["msg"]} for e in exc.errors()]
    return _problem(request, 422, "validation_error", errors)


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Never a stack trace to the caller; the type and the request id go to the log (no request content).
    log.error("unexpected %s while handling request %s", type(exc).__name__, problems.request_id(request.scope))
    return _problem(request, 500, "internal_error", "something went wrong on our side; quote the instance when asking")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed the limit (before any parsing)."""
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
        raise APIError(422, "validation_error", [{"field": "body", "message": "empty body"}])
    return body


def parse(model: Any, body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise APIError(400, "malformed_json", "the body is not valid JSON") from None
        raise APIError(422, "validation_error", validation_errors(err)) from None


def _install_openapi(schemas: dict[str, Any]) -> None:
    """Publish the request bodies (read by hand to enforce the size limit) in the OpenAPI document."""
    base = app.openapi

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


EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "description": "false skips the drivers",
    "schema": {"type": "boolean", "default": True},
}


_INTERNAL_KEYS = {"run_id", "mlflow_run_id", "source", "path", "artifact_uri"}


def _public(value: Any) -> Any:
    """The model card without what only the operator should see (run ids and file-system paths), and with every
    undefined number (a NaN: e.g. a subgroup too small for an AUROC) as null, which JSON can carry."""
    if isinstance(value, dict):
        return {
            k: _public(v)
            for k, v in value.items()
            if k not in _INTERNAL_KEYS and not k.endswith("_path") and not (isinstance(v, str) and v.startswith("/"))
        }
    if isinstance(value, list):
        return [_public(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _explain(values: list[str]) -> bool:
    """The `explain` query parameter, read after authentication (FastAPI would validate it before)."""
    words = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
    if not values:
        return True
    if len(values) > 1 or values[0].lower() not in words:
        raise APIError(422, "validation_error", [{"field": "explain", "message": "use true or false"}])
    return words[values[0].lower()]


def _body(name: str) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    }


def _problems(**described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these statuses, each an RFC 9457 problem document."""
    content = {problems.PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {status.lstrip("_"): {"description": text, "content": content} for status, text in described.items()}


_ERRORS = _problems(
    _400="Malformed JSON",
    _401="Missing or invalid API key",
    _413="Body larger than the largest legal request",
    _429="Over one of this partner's limits; `Retry-After` says when to retry",
    _422="The request breaks the schema; `errors` names each field and index",
    _503="Not stored durably (so not returned), or too busy to queue it; `Retry-After` on the latter",
)
_SECURED: dict[str, Any] = {"security": [{"bearer": []}]}


def _accepted(schema: dict[str, Any], text: str) -> dict[int | str, dict[str, Any]]:
    return {"202": {"description": text, "content": {"application/json": {"schema": schema}}}}


@bentoml.service(name="earlywarn", workers=1, traffic={"timeout": 120}, logging={"access": {"enabled": False}})
@bentoml.asgi_app(app, path="/v1")
class RiskService:
    """Serves the packaged champion; needs no MLflow at run time."""

    model_ref = bentoml.models.BentoModel(CONFIG.model_tag)

    def __init__(self) -> None:
        self.cfg = CONFIG
        self.bundle = ModelBundle.load(self.model_ref.path)
        self.version = str(self.model_ref.info.labels.get("mlflow_version", self.model_ref.tag.version))
        self.request_model = score_request_model(self.bundle.features)
        self.limit = max_body_bytes(self.bundle.features)
        self.pseudonym = Pseudonymizer.from_env(self.cfg.demo)
        self.engine = prediction_log.engine_for(self.cfg.db_url)
        try:
            prediction_log.create_schema(self.engine)
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable at start; records will spool until it is back")
        self.keys = KeyVerifier(self.engine)
        self.rates = limits.parse_many(self.cfg.rate_limit)
        self.day_rates = limits.parse_many(self.cfg.day_limit)
        self.outcome_rates = limits.parse_many(self.cfg.outcome_limit)
        self.auth_rates = limits.parse_many(self.cfg.auth_failure_limit)
        self.limiter = Limiter(self.cfg.redis_url, self.cfg.redis_prefix)
        self.spool = Spool(
            self.cfg.spool_dir, lambda t, r: prediction_log.insert_ignoring_duplicates(self.engine, t, r), fsync=self.cfg.fsync
        )
        self.spool.start()
        self.alerts = AlertSender(self.engine)
        self._recent: OrderedDict[tuple[str, str], dt.date] = OrderedDict()  # (partner, key) -> first window end seen
        self._events: OrderedDict[tuple[str, str], dt.date] = OrderedDict()  # (partner, key) -> latest event day
        self._gone: set[tuple[str, str]] = set()  # (partner, key) pairs known to have withdrawn consent
        self._retention = prediction_log.retention_days()
        threading.Thread(target=self._purge_daily, name="retention", daemon=True).start()
        self._episodes: OrderedDict[tuple[str, str], Episode | None] = (
            OrderedDict()
        )  # last known open episodes, for store outages
        self.batcher: MicroBatcher[ScoreJob, list[dict[str, Any]] | APIError] = MicroBatcher(
            self._score_jobs, lambda j: len(j.rows), max_waiting=self.cfg.queue_limit
        )
        _install_openapi(
            {
                "RiskScoreRequest": self.request_model.model_json_schema(ref_template="#/components/schemas/{model}"),
                "OutcomeRequest": OutcomeRequest.model_json_schema(ref_template="#/components/schemas/{model}"),
                "FeedbackRequest": FeedbackRequest.model_json_schema(ref_template="#/components/schemas/{model}"),
            }
        )
        # Everything built so far lives as long as the worker: out of the collector's sight, and collections rarer,
        # so a full collection no longer pauses a request now and then (tail latency).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        log.info("serving model version %s with %d features (pid %d)", self.version, len(self.bundle.features), os.getpid())

    @bentoml.on_shutdown
    def drain(self) -> None:
        """On SIGTERM, write what is still spooled to the store before the worker exits (a scaled-down replica
        otherwise leaves records for its next start to replay)."""
        self.spool.close(timeout=20)
        self.alerts.close()

    def _partner(self, request: Request) -> str:
        """The partner whose key the request carries, within its request rate. An address that keeps failing to
        authenticate is refused for a while before any key is looked up (guessing keys costs the guesser)."""
        address = f"auth-failures:{request.client.host if request.client else 'unknown'}"
        if not all(self.limiter.test(rate, address) for rate in self.auth_rates):
            self._refuse(self.auth_rates, address, "failed authentications from this address")
        partner = self.keys.partner_for(request.headers.get("authorization"))
        if partner is None:
            for rate in self.auth_rates:
                self.limiter.hit(rate, address)
            raise APIError(
                401, "unauthorized", "send a valid API key as 'Authorization: Bearer <key>'", {"WWW-Authenticate": "Bearer"}
            )
        self._spend(self.rates, partner, 1, "requests")
        return partner

    def _spend(self, rates: list[limits.RateLimitItem], item: str, cost: int, what: str) -> None:
        """Count `cost` against each of the partner's limits for `what`, or refuse with 429 and Retry-After."""
        for rate in rates:
            if not self.limiter.hit(rate, f"{what}:{item}", cost=cost):
                self._refuse([rate], f"{what}:{item}", f"{what} for this partner")

    def _refuse(self, rates: list[limits.RateLimitItem], key: str, what: str) -> None:
        reset = max(self.limiter.reset_time(rate, key) for rate in rates)
        wait = max(1, math.ceil(reset - time.time()))
        RATE_LIMITED.inc()
        limit = "; ".join(str(r) for r in rates)
        raise APIError(429, "rate_limited", f"more than {limit} {what}; retry later", {"Retry-After": str(wait)})

    def _remember(self, partner: str, keys: list[str], window_ends: list[dt.date]) -> None:
        for k, end in zip(keys, window_ends, strict=True):
            self._recent[(partner, k)] = min(end, self._recent.get((partner, k), end))
        while len(self._recent) > 200_000:
            self._recent.popitem(last=False)

    def _escalate(self, results: list[dict[str, Any]], pairs: list[tuple[str, str]], days: list[dt.date], now: str) -> None:
        """Each scored result's escalation episode: the first high-band score opens one (`escalate: true`), later
        ones continue it. Changes go straight to the store, so replicas see them at once; while it is away they
        are spooled (nothing lost) and this replica goes on from the episodes it has seen."""
        scored = [i for i, r in enumerate(results) if r["status"] == "scored"]
        try:
            stored = prediction_log.open_episodes(self.engine, [pairs[i] for i in scored])
            self._episodes.update({pairs[i]: stored.get(pairs[i]) for i in scored})
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable; escalation episodes go on from the ones this replica has seen")
        changes: list[dict[str, Any]] = []
        for i in scored:
            state, episode, steps = episodes.step(self._episodes.get(pairs[i]), results[i]["band"] == "high", days[i])
            self._episodes[pairs[i]] = episode
            self._episodes.move_to_end(pairs[i])
            results[i]["escalate"] = state == episodes.NEW
            results[i]["escalation"] = {"state": state} | (
                {"alert_id": episode.alert_id, "since": episode.since.isoformat()} if episode and state != episodes.NONE else {}
            )
            changes += [
                {"record_id": str(uuid.uuid4()), "created_at": now, "partner": pairs[i][0], "participant_key": pairs[i][1]}
                | {"alert_id": c.alert_id, "kind": c.kind, "day": c.day.isoformat(), "reason": c.reason}
                for c in steps
            ]
        while len(self._episodes) > 200_000:
            self._episodes.popitem(last=False)
        if changes:
            self._store_now("escalation_changes", changes)
        for i in scored:  # only once the opening is durable; the partner's own id, never signal values
            if results[i]["escalate"]:
                episode_info = results[i]["escalation"]
                self.alerts.send(
                    pairs[i][0],
                    {
                        "type": "escalation.opened",
                        "alert_id": episode_info["alert_id"],
                        "participant_id": results[i]["participant_id"],
                        "since": episode_info["since"],
                        "band": "high",
                        "model_version": self.version,
                        "created_at": now,
                    },
                )

    def _latest_events(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dt.date]:
        """Each participant's latest reported event: the store's, and this replica's own not yet flushed from the
        spool. While the store is away, the events this replica has seen (its last known state, like keys)."""
        try:
            stored = prediction_log.latest_events(self.engine, pairs)
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable; washout uses the events this replica has seen")
            stored = {}
        for pair, day in stored.items():
            self._note_event(pair, day)
        return {pair: self._events[pair] for pair in pairs if pair in self._events}

    def _purge_daily(self) -> None:
        """Retention: once at start and every 24 h, delete what is older than EARLYWARN_RETENTION_DAYS."""
        while True:
            try:
                before = dt.datetime.now(dt.UTC) - dt.timedelta(days=self._retention)
                deleted = prediction_log.purge(self.engine, before)
                log.info("retention: deleted %d rows older than %d days", sum(deleted.values()), self._retention)
            except sa.exc.SQLAlchemyError as err:
                log.warning("retention purge failed (%s); retried in 24 h", type(err).__name__)
            time.sleep(24 * 3600)

    def _withdrawn(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Who has withdrawn consent: the store's record, or while it is away the withdrawals this replica has seen
        (a withdrawal is permanent, so a known one is never forgotten)."""
        try:
            self._gone |= prediction_log.withdrawn(self.engine, pairs)
        except sa.exc.SQLAlchemyError:
            log.warning("prediction store unreachable; withdrawals are the ones this replica has seen")
        return {pair for pair in pairs if pair in self._gone}

    def _note_event(self, pair: tuple[str, str], day: dt.date) -> None:
        if pair not in self._events or day > self._events[pair]:
            self._events[pair] = day
        self._events.move_to_end(pair)
        while len(self._events) > 200_000:
            self._events.popitem(last=False)

    def _store_now(self, table: str, records: list[dict[str, Any]]) -> None:
        """Straight into the store, so every replica sees the records at once; spooled while it is away."""
        try:
            prediction_log.insert_ignoring_duplicates(self.engine, table, records)
        except sa.exc.SQLAlchemyError:
            self._store(table, records)

    def _store(self, table: str, records: list[dict[str, Any]]) -> None:
        try:
            self.spool.append(table, records)
        except OSError as err:
            log.error("could not spool %d %s records (%s)", len(records), table, type(err).__name__)
            raise APIError(503, "not_stored", "the record could not be stored durably; nothing was kept, retry later") from None

    def _score_jobs(self, jobs: list[ScoreJob]) -> list[list[dict[str, Any]] | APIError]:
        """Score several requests in one pass; each gets its results, or the error that kept them from being stored."""
        rows = [row for job in jobs for row in job.rows]
        pairs = [(job.partner, self.pseudonym(job.partner, pid)) for job in jobs for pid, _ in job.rows]
        events = self._latest_events(pairs)
        gone = self._withdrawn(pairs)
        results, summaries, inputs = score(
            self.bundle,
            assemble(rows, len(self.bundle.features), [job.as_of for job in jobs for _ in job.rows]),
            explain=any(j.explain for j in jobs),
            last_event=[events.get(pair) for pair in pairs],
            language=[job.language for job in jobs for _ in job.rows],
        )
        languages = [job.language for job in jobs for _ in job.rows]
        for i in [i for i, pair in enumerate(pairs) if pair in gone]:  # answered, never scored, logged or escalated
            results[i] = {
                "participant_id": results[i]["participant_id"],
                "window_end": results[i]["window_end"],
                "status": WITHDRAWN,
                "reason": reason_text(WITHDRAWN, {}, languages[i]),
            }
        now = dt.datetime.now(dt.UTC).isoformat()
        try:
            self._escalate(results, pairs, [job.as_of for job in jobs for _ in job.rows], now)
        except APIError as err:  # neither the store nor the spool took the episode changes
            return [err] * len(jobs)
        out: list[list[dict[str, Any]] | APIError] = []
        records, start = [], 0
        for job in jobs:
            mine = results[start : start + len(job.rows)]
            sums = summaries[start : start + len(job.rows)]
            days = inputs[start : start + len(job.rows)]
            keys = [key for _, key in pairs[start : start + len(job.rows)]]
            start += len(job.rows)
            for r, s, window, key in zip(mine, sums, days, keys, strict=True):
                if not job.explain:
                    r.pop("drivers", None)
                if r["status"] == WITHDRAWN:
                    continue
                records.append(
                    {
                        "record_id": str(uuid.uuid4()),
                        "request_id": job.request_id,
                        "created_at": now,
                        "partner": job.partner,
                        "participant_key": key,
                        "model_version": self.version,
                        "window_end": r["window_end"],
                        "status": r["status"],
                        "risk": r.get("risk"),
                        "band": r.get("band"),
                        "days_observed": r["data_quality"]["days_observed"],
                        "summary": s,
                        "inputs": window,
                    }
                )
            self._remember(job.partner, keys, [dt.date.fromisoformat(r["window_end"]) for r in mine])
            out.append(mine)
        try:
            self._store("predictions", records)
        except APIError as err:
            return [err] * len(jobs)
        return out

    @app.post(
        "/risk-scores",
        openapi_extra=_body("RiskScoreRequest") | {"parameters": [EXPLAIN_PARAMETER]} | _SECURED,
        responses=_ERRORS | {200: {"model": RiskScoreResponse, "description": "One result per participant, in order"}},
    )
    async def risk_scores(self, request: Request) -> JSONResponse:
        """Score 1-1,000 participants (up to 90 days each): calibrated risk, band, escalation flag, drivers, data quality."""
        partner = self._partner(request)  # before anything in the request is read: no key, no validation messages
        explain = _explain(request.query_params.getlist("explain"))
        # A large body is parsed on a worker thread (a maximal one takes seconds, which would stall every other
        # partner's requests); a small one here, where the hop to a thread would cost more than the parse.
        body = await read_body(request, self.limit)
        req = (
            parse(self.request_model, body)
            if len(body) < INLINE_PARSE_BYTES
            else await run_in_threadpool(parse, self.request_model, body)
        )
        self._spend(self.day_rates, partner, sum(len(p.days) for p in req.participants), "participant-days")
        today = dt.datetime.now(dt.UTC).date()
        as_of = req.as_of or today
        if errors := as_of_errors(req.as_of, today) + day_order_errors(req.participants, as_of):
            raise APIError(422, "validation_error", errors)
        request_id = problems.request_id(request.scope)
        feats = self.bundle.features
        rows = [(p.participant_id, [(d.date, [getattr(d, f) for f in feats]) for d in p.days]) for p in req.participants]
        language = messages.negotiate(request.headers.get("accept-language"))
        try:
            results = await self.batcher.submit(ScoreJob(rows, as_of, partner, request_id, explain, language))
        except QueueFull:
            busy = "too many participants are waiting to be scored; retry shortly"
            raise APIError(503, "busy", busy, {"Retry-After": "1"}) from None
        if isinstance(results, APIError):
            raise results
        for r in results:
            SCORED.labels(status=r["status"], band=r.get("band", "none")).inc()
        return JSONResponse(
            {"model_version": self.version, "request_id": request_id, "results": results},
            headers={"Content-Language": language, "Vary": "Accept-Language"},
        )

    @app.post(
        "/outcomes",
        status_code=202,
        openapi_extra=_body("OutcomeRequest") | _SECURED,
        responses=_ERRORS
        | _accepted(
            {
                "type": "object",
                "required": ["stored", "new"],
                "properties": {"stored": {"type": "integer"}, "new": {"type": ["integer", "null"]}},
            },
            "Stored durably; `new` counts outcomes not stored before (null while the store is away)",
        ),
    )
    async def report_outcomes(self, request: Request) -> JSONResponse:
        """Report observed events for participants this partner has had scored; stored for monitoring and retraining."""
        partner = self._partner(request)
        req = await run_in_threadpool(parse, OutcomeRequest, await read_body(request, 16 << 20))
        self._spend(self.outcome_rates, partner, len(req.outcomes), "outcomes")
        keys = [self.pseudonym(partner, o.participant_id) for o in req.outcomes]
        records = [
            {
                # The same partner, participant, day and event is one fact: reposting it stores nothing new.
                "record_id": str(uuid.uuid5(OUTCOME_IDS, f"{partner}\x1f{k}\x1f{o.date}\x1f{o.event}")),
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "partner": partner,
                "participant_key": k,
                "date": o.date.isoformat(),
                "event": o.event,
            }
            for o, k in zip(req.outcomes, keys, strict=True)
        ]
        first, seen = await run_in_threadpool(self._outcome_facts, partner, keys, [r["record_id"] for r in records])
        gone = {k for p, k in await run_in_threadpool(self._withdrawn, [(partner, k) for k in keys])}
        if errors := self._outcome_errors(req.outcomes, keys, first, gone):
            raise APIError(422, "validation_error", errors[:50])
        await run_in_threadpool(self._store, "outcomes", records)
        for o, k in zip(req.outcomes, keys, strict=True):
            self._note_event((partner, k), o.date)
        new = None if seen is None else len({r["record_id"] for r in records} - seen)
        return JSONResponse({"stored": len(records), "new": new}, status_code=202)

    def _outcome_facts(self, partner: str, keys: list[str], ids: list[str]) -> tuple[dict[str, dt.date], set[str] | None]:
        """Each participant's first scored window end (the store's, or what this replica saw and may not have flushed
        yet), and which outcome ids the store already holds (None while it is away)."""
        cached = {k: self._recent[(partner, k)] for k in keys if (partner, k) in self._recent}
        try:
            stored = prediction_log.first_scored(self.engine, partner, sorted(set(keys)))
            seen = prediction_log.existing_ids(self.engine, "outcomes", ids)
        except sa.exc.SQLAlchemyError:
            if len(cached) < len(set(keys)):
                raise APIError(503, "store_unavailable", "cannot check these participants right now; retry later") from None
            return cached, None
        return {k: min(d for d in (stored.get(k), cached.get(k)) if d is not None) for k in stored.keys() | cached.keys()}, seen

    def _outcome_errors(
        self, outcomes: list[Any], keys: list[str], first: dict[str, dt.date], gone: set[str]
    ) -> list[dict[str, str]]:
        """An outcome must be for a participant this partner had scored and who has not withdrawn consent, on a day
        from the first scored window's first day (its end minus the lookback) to tomorrow (UTC)."""
        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        lookback = dt.timedelta(days=self.bundle.window.lookback)
        errors = []
        for i, (o, k) in enumerate(zip(outcomes, keys, strict=True)):
            if k in gone:
                problem = ("participant_id", "this participant withdrew consent; nothing more is stored for them")
            elif k not in first:
                problem = ("participant_id", "this partner has never had this participant scored")
            elif o.date > tomorrow:
                problem = ("date", f"after tomorrow ({tomorrow}, UTC)")
            elif o.date < (earliest := max(first[k], dt.date.min + lookback) - lookback):  # no overflow before year 1
                problem = ("date", f"before this participant's first scored days ({earliest})")
            else:
                continue
            errors.append({"field": f"outcomes[{i}].{problem[0]}", "message": problem[1]})
        return errors

    @app.post(
        "/alerts/{alert_id}/feedback",
        status_code=202,
        openapi_extra=_body("FeedbackRequest") | _SECURED,
        responses=_ERRORS
        | _problems(_404="No escalation with this alert_id for this partner")
        | _accepted(
            {
                "type": "object",
                "required": ["stored", "alert_id", "episode"],
                "properties": {"stored": {"type": "integer"}, "alert_id": {"type": "string"}, "episode": {"type": "string"}},
            },
            "Stored; the escalation's episode is closed",
        ),
    )
    async def alert_feedback(self, request: Request, alert_id: str) -> JSONResponse:
        """Tell us what the care team did about an escalation (only the partner it was raised for); closes its episode."""
        partner = self._partner(request)
        req = parse(FeedbackRequest, await read_body(request, 16 << 10))
        key = await run_in_threadpool(self._alert_owner, partner, alert_id)
        if key is None:  # another partner's alert answers the same as none, so ids reveal nothing
            raise APIError(404, "not_found", "no escalation with this alert_id for this partner")
        now = dt.datetime.now(dt.UTC)
        row = {"created_at": now.isoformat(), "partner": partner, "participant_key": key, "alert_id": alert_id}
        feedback = row | {"record_id": str(uuid.uuid4()), "action": req.action, "note": req.note}
        close = row | {"record_id": str(uuid.uuid4()), "kind": "close", "day": now.date().isoformat()}
        await run_in_threadpool(self._store_now, "alert_feedback", [feedback])
        await run_in_threadpool(self._store_now, "escalation_changes", [close | {"reason": f"feedback: {req.action}"}])
        if (episode := self._episodes.get((partner, key))) is not None and episode.alert_id == alert_id:
            self._episodes[(partner, key)] = None
        return JSONResponse({"stored": 1, "alert_id": alert_id, "episode": "closed"}, status_code=202)

    def _alert_owner(self, partner: str, alert_id: str) -> str | None:
        """The participant key behind this partner's alert: from the store, or this replica's open episodes."""
        try:
            return prediction_log.alert_participant(self.engine, partner, alert_id)
        except sa.exc.SQLAlchemyError:
            mine = [k for (p, k), e in list(self._episodes.items()) if p == partner and e and e.alert_id == alert_id]
            if mine:
                return mine[0]
            raise APIError(503, "store_unavailable", "cannot check this alert right now; retry later") from None

    @app.get(
        "/model",
        responses={
            "200": {"description": "The served model's card", "content": {"application/json": {"schema": {"type": "object"}}}}
        },
    )
    async def model_card(self) -> JSONResponse:
        """The served model's card: version, training date, data, metrics with intervals, bands, intended use, limits."""
        card = _public(self.bundle.meta.get("model_card", {}))
        card["version"] = self.version
        card["trained_at"] = self.bundle.meta.get("trained_at")
        card["band_thresholds"] = {"elevated": self.bundle.bands.elevated, "high": self.bundle.bands.high}
        card["window"] = {"lookback_days": self.bundle.window.lookback, "min_observed_days": self.bundle.window.min_observed_days}
        card["not_scored"] = {  # the rules that answer a status instead of a score (training/scoring.py)
            "max_staleness_days": MAX_STALENESS_DAYS,
            "washout_days": self.bundle.window.washout_days,
            "min_observed_days": self.bundle.window.min_observed_days,
        }
        card["features"] = self.bundle.features
        return JSONResponse(card)

    @app.get(
        "/status",
        responses=_problems(_401="Missing or wrong ops token", _403="No ops token configured (production)")
        | {"200": {"description": "Readiness detail", "content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def status(self) -> JSONResponse:
        """Readiness detail: model version, whether the prediction store answers, and the spooled backlog."""
        backlog = self.spool.backlog_bytes()
        SPOOL_BACKLOG.set(backlog)
        return JSONResponse(
            {
                "model_version": self.version,
                "store_errors": self.spool.stats.failures,
                "last_store_error": self.spool.stats.last_error,
                "spool_backlog_bytes": backlog,
            }
        )


# The decorators return a bentoml Service, which mypy cannot see through.
# Outermost first: every answer, even a refused one, carries the request id and is counted by route.
RiskService.add_asgi_middleware(RequestIds)  # type: ignore[attr-defined]
RiskService.add_asgi_middleware(  # type: ignore[attr-defined]
    RouteMetrics,
    api=app,
    prefix="/v1",
    system=("/metrics", "/readyz", "/livez", "/healthz", "/", "/docs.json", "/static_content/*", "/v1/static-offline-docs/*"),
    requests=HTTP_REQUESTS,
    latency=HTTP_LATENCY,
)
RiskService.add_asgi_middleware(OpsGate, token=CONFIG.ops_token, demo=CONFIG.demo)  # type: ignore[attr-defined]
