"""The BentoML service: wires the model, the store, the gate and the scorer to the /v1 routes, and nothing else."""

from __future__ import annotations

import datetime as dt
import functools
import gc
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import bentoml
import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from earlywarn.data import state, store
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.settings import Settings, secret, settings
from earlywarn.data.spool import Spool
from earlywarn.serving import fhir, logs, openapi, problems
from earlywarn.serving.audit_writer import AuditWriter
from earlywarn.serving.batcher import MicroBatcher, QueueFull
from earlywarn.serving.edge import PARTNER, Edge, Route, parsed_input
from earlywarn.serving.gate import Gate
from earlywarn.serving.http import answer_errors_as_problems, explain_flag, parse, problem_response, read_body
from earlywarn.serving.key_verifier import KeyVerifier
from earlywarn.serving.metrics import HTTP_LATENCY, HTTP_REQUESTS, RATE_LIMITED, SCORED, MetricsEndpoint, watch
from earlywarn.serving.ops import OpsGate, RouteMetrics
from earlywarn.serving.outcomes import Reports
from earlywarn.serving.problems import APIError, RequestIds
from earlywarn.serving.ratelimit import Limiter
from earlywarn.serving.schema import (
    EscalationFeedbackRequest,
    FeedbackRequest,
    FeedbackStored,
    NoInput,
    OutcomeRequest,
    RiskScoreResponse,
    Stored,
    max_body_bytes,
    score_request_model,
)
from earlywarn.serving.scorer import Results, ScoreJob, Scorer, score_job
from earlywarn.serving.store_view import StoreView
from earlywarn.serving.webhook_sender import WebhookSender
from earlywarn.training import messages, supply_chain
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.model_card import served_card

log = logging.getLogger("earlywarn.serving")
state.private_files()  # also when started by `bentoml serve` directly: the log, spool and keys stay private
CONFIG = settings()
logs.configure(CONFIG.log_level)
# uvicorn reads this when BentoML's worker builds its server, after importing this module; its own default trusts
# X-Forwarded-For from 127.0.0.1, which behind a local proxy lets every client pick its address.
os.environ["FORWARDED_ALLOW_IPS"] = CONFIG.trusted_proxies


def preflight(cfg: Settings) -> ModelBundle:
    """Refuse to start on a bad EARLYWARN_MODE, a missing or demo secret in production, an HMAC key other than the
    one the store was pseudonymised with, or a tampered or unusable model: checked when
    the module is imported, so `bentoml serve` exits with the message instead of workers failing and retrying."""
    pseudonymizer = Pseudonymizer.from_env(cfg.demo)
    try:
        store.check_key(store.engine_for(store.url_from_env()), pseudonymizer)
    except sa.exc.SQLAlchemyError as err:  # the store may be away at start; the spool holds records until it is back
        log.warning("could not check the HMAC key against the store (%s); checked at the next start", type(err).__name__)
    return supply_chain.load_promoted(Path(bentoml.models.get(cfg.model_tag).path))


BUNDLE = preflight(CONFIG)
SCORE_REQUEST = score_request_model(BUNDLE.features)  # the body depends on the served model's features
EDGE = {
    "/v1/risk-scores": Route(parsed_input(SCORE_REQUEST), max_body_bytes(BUNDLE.features), budget="days"),
    "/v1/outcomes": Route(parsed_input(OutcomeRequest), 16 << 20, budget="outcomes"),
    "/v1/escalations/feedback": Route(parsed_input(EscalationFeedbackRequest), 16 << 10),
    "/v1/model": Route(parsed_input(NoInput), 1 << 10, keyed=False),
}

app = FastAPIOffline(  # Swagger UI and ReDoc served from the package, not a CDN
    title="earlywarn risk-score API",
    version="1",
    description="Calibrated relapse-risk scores for care teams. Decision support, not a diagnosis.",
    docs_url="/docs",
    openapi_url="/openapi.json",
    servers=[{"url": "/v1"}],  # the app is mounted under /v1 in the BentoML server
)
answer_errors_as_problems(app)
BODIES: dict[str, type[BaseModel]] = {m.__name__: m for m in (EscalationFeedbackRequest, FeedbackRequest, NoInput)}
BODIES |= {"RiskScoreRequest": SCORE_REQUEST, "RiskScoreResponse": RiskScoreResponse, "OutcomeRequest": OutcomeRequest}
BODIES |= {"Stored": Stored, "FeedbackStored": FeedbackStored}
openapi.install(app, BODIES, openapi.paths())

SYSTEM_PATHS = ["/metrics", "/readyz", "/livez", "/healthz", "/", "/docs.json", "/schema.json", "/static_content/*"]
SYSTEM_PATHS += ["/v1/static-offline-docs/*"]


def _purge_daily(engine: sa.engine.Engine, days: int) -> None:
    """Retention: once at start and every 24 h, delete what is older than EARLYWARN_RETENTION_DAYS."""
    while True:
        try:
            deleted = store.purge(engine, dt.datetime.now(dt.UTC) - dt.timedelta(days=days), actor="service")
            log.info("retention: deleted %d rows older than %d days", sum(deleted.values()), days)
        except sa.exc.SQLAlchemyError as err:
            log.warning("retention purge failed (%s); retried in 24 h", type(err).__name__)
        time.sleep(24 * 3600)


def _settle() -> None:
    """Everything built at start lives as long as the worker: out of the collector's sight, and collections rarer,
    so a full collection no longer pauses a request now and then (tail latency)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


@functools.cache
def _engine() -> sa.engine.Engine:
    return store.engine_for(store.url_from_env())


@functools.cache
def _gate() -> Gate:
    """This worker's gate, shared by the edge (keys) and the methods (limits on what a body holds)."""
    cfg = CONFIG
    rates = {"requests": cfg.rate_limit, "days": cfg.day_limit, "outcomes": cfg.outcome_limit}
    limiter = Limiter(secret(cfg.redis_url), cfg.redis_prefix)
    failures, refused = cfg.auth_failure_limit, RATE_LIMITED.inc
    return Gate(KeyVerifier(_engine()), limiter, **rates, auth_failures=failures, on_refused=refused, audit=_audit())


@functools.cache
def _audit() -> AuditWriter:
    """This worker's audit trail writer (docs/security.md, Audit)."""
    return AuditWriter(_engine())


def _open_store(cfg: Settings) -> StoreView:
    """The store, migrated (or, while it is away, records spool until it is back), with this replica's spool."""
    engine = _engine()
    try:
        store.migrate(engine)
    except sa.exc.SQLAlchemyError:
        log.warning("prediction store unreachable at start; records will spool until it is back")
    spool = Spool(cfg.spool_path(), lambda t, r: store.insert_ignoring_duplicates(engine, t, r), fsync=cfg.spool_fsync)
    spool.start()
    return StoreView(engine, spool)


async def _scored(batcher: MicroBatcher[ScoreJob, Results | APIError], job: ScoreJob) -> Results:
    """The job's results from the next scoring pass; 503 when too many participants wait already."""
    try:
        results = await batcher.submit(job)
    except QueueFull:
        raise APIError(
            503, "busy", "too many participants are waiting to be scored; retry shortly", {"Retry-After": "1"}
        ) from None
    if isinstance(results, APIError):
        raise results
    for r in results:
        SCORED.labels(status=r["status"], band=r.get("band", "none")).inc()
    return results


@bentoml.service(
    name="earlywarn",
    workers=1,
    traffic={"timeout": 120},
    logging={"access": {"enabled": False}},
    metrics={"enabled": False},  # ours, at /metrics (serving/metrics.py): BentoML's label each raw path, unbounded
)
@bentoml.asgi_app(app, path="/v1")
class RiskService:
    """Serves the packaged champion; needs no MLflow at run time."""

    model_ref = bentoml.models.BentoModel(CONFIG.model_tag)

    def __init__(self) -> None:
        cfg = CONFIG
        self.bundle = BUNDLE
        self.version = str(self.model_ref.info.labels.get("mlflow_version", self.model_ref.tag.version))
        self.view = _open_store(cfg)
        self.pseudonym = Pseudonymizer.from_env(cfg.demo)
        self.gate = _gate()
        self.alerts = WebhookSender(self.view.engine, production=not cfg.demo)
        self.reports = Reports(self.view, self.pseudonym, self.bundle.window, cfg.escalation_rules())
        self.scorer = Scorer(self.bundle, self.version, self.pseudonym, self.view, self.alerts.wake, cfg.escalation_rules())
        self.batcher: MicroBatcher[ScoreJob, Results | APIError] = MicroBatcher(
            self.scorer.score_jobs, lambda j: len(j.rows), max_waiting=cfg.queue_limit
        )
        threading.Thread(target=_purge_daily, args=(self.view.engine, store.retention_days()), daemon=True).start()
        watch(self.version, self.view.spool, lambda: self.batcher.waiting)
        _audit()("model.load", self.version, {"tag": str(self.model_ref.tag), "pid": os.getpid()})
        _settle()
        log.info("serving model version %s with %d features (pid %d)", self.version, len(self.bundle.features), os.getpid())

    @bentoml.on_shutdown
    def drain(self) -> None:
        """On SIGTERM, write what is still spooled to the store before the worker exits."""
        self.view.spool.close(timeout=20)
        self.alerts.close()

    @bentoml.api(route="/v1/risk-scores", input_spec=EDGE["/v1/risk-scores"].model, output_spec=RiskScoreResponse)
    async def risk_scores(self, participants: list[Any], as_of: dt.date | None, ctx: bentoml.Context) -> Response:
        """Score 1-1,000 participants (up to 90 days each): calibrated risk, band, escalation flag, drivers, data quality."""
        try:
            partner, scope = ctx.request.scope[PARTNER], ctx.request.scope
            explain = explain_flag(ctx.request.query_params.getlist("explain"))
            self.gate.spend(self.gate.days, partner, sum(len(p.days) for p in participants), "participant-days")
            language, rid = messages.negotiate(ctx.request.headers.get("accept-language")), problems.request_id(scope)
            job = score_job(participants, as_of, self.bundle.features, partner, rid, explain, language)
            results = await _scored(self.batcher, job)
        except APIError as err:
            return problem_response(ctx, err)
        headers = {"Content-Language": language, "Vary": "Accept, Accept-Language"}
        if fhir.wanted(ctx.request.headers.get("accept")):
            made = fhir.bundle(results, partner, self.version, self.bundle.window.horizon)
            return JSONResponse(made, headers=headers, media_type=fhir.MEDIA_TYPE)
        body = {"model_version": self.version, "request_id": rid, "results": results}
        return JSONResponse(body, headers=headers)

    @bentoml.api(route="/v1/outcomes", input_spec=EDGE["/v1/outcomes"].model, output_spec=Stored)
    async def report_outcomes(self, outcomes: list[Any], ctx: bentoml.Context) -> Response:
        """Report observed events for participants this partner has had scored; stored for monitoring and retraining."""
        try:
            partner = ctx.request.scope[PARTNER]
            self.gate.spend(self.gate.outcomes, partner, len(outcomes), "outcomes")
            stored = await run_in_threadpool(self.reports.outcomes, partner, outcomes)
        except APIError as err:
            return problem_response(ctx, err)
        ctx.response.status_code = 202
        return JSONResponse(stored, status_code=202)

    @bentoml.api(route="/v1/escalations/feedback", input_spec=EDGE["/v1/escalations/feedback"].model, output_spec=FeedbackStored)
    async def escalation_feedback(
        self, alert_id: str, action: str, note: str | None, as_of: dt.date | None, ctx: bentoml.Context
    ) -> Response:
        """Tell us what the care team did about an escalation (only the partner it was raised for); it snoozes it."""
        try:
            partner = ctx.request.scope[PARTNER]
            answer = await run_in_threadpool(self.reports.feedback, partner, alert_id, action, note, as_of)
        except APIError as err:
            return problem_response(ctx, err)
        ctx.response.status_code = 202
        return JSONResponse(answer, status_code=202)

    @bentoml.api(route="/v1/model", input_spec=EDGE["/v1/model"].model)
    async def model_card(self) -> dict[str, Any]:
        """The served model's card: version, training date, data, metrics with intervals, bands, intended use, limits."""
        return served_card(self.bundle, self.version)

    @app.get("/model", include_in_schema=False)
    async def model_card_page(self) -> JSONResponse:
        return JSONResponse(served_card(self.bundle, self.version))

    @app.post("/alerts/{alert_id}/feedback", include_in_schema=False)
    async def alert_feedback(self, request: Request, alert_id: str) -> JSONResponse:
        """The path form of escalation feedback, for REST callers."""
        partner = self.gate.partner(request)
        req = parse(FeedbackRequest, await read_body(request, 16 << 10))
        answer = await run_in_threadpool(self.reports.feedback, partner, alert_id, req.action, req.note, req.as_of)
        return JSONResponse(answer, status_code=202)

    @app.get("/status", include_in_schema=False)
    async def status(self) -> JSONResponse:
        """Readiness detail: model version, whether the prediction store answers, and the spooled backlog."""
        spool = self.view.spool
        backlog = spool.backlog_bytes()
        stats = {"store_errors": spool.stats.failures, "last_store_error": spool.stats.last_error, "spool_backlog_bytes": backlog}
        return JSONResponse({"model_version": self.version} | stats)


# The decorators return a bentoml Service, which mypy cannot see through.
# Outermost first: every answer, even a refused one, carries the request id and is counted by route.
RiskService.add_asgi_middleware(RequestIds)  # type: ignore[attr-defined]
RiskService.add_asgi_middleware(  # type: ignore[attr-defined]
    RouteMetrics,
    api=app,
    prefix="/v1",
    system=(*SYSTEM_PATHS, *EDGE),
    requests=HTTP_REQUESTS,
    latency=HTTP_LATENCY,
)
RiskService.add_asgi_middleware(OpsGate, token=secret(CONFIG.ops_token), demo=CONFIG.demo)  # type: ignore[attr-defined]
RiskService.add_asgi_middleware(MetricsEndpoint)  # type: ignore[attr-defined]
RiskService.add_asgi_middleware(Edge, routes=EDGE, gate=_gate)  # type: ignore[attr-defined]
