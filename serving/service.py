"""The BentoML service: wires the model, the store, the gate and the scorer to the /v1 routes, and nothing else."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
import time

import bentoml
import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from earlywarn.data import state, store
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.settings import Settings, secret, settings
from earlywarn.data.spool import Spool
from earlywarn.serving import openapi, problems
from earlywarn.serving.batcher import MicroBatcher, QueueFull
from earlywarn.serving.gate import Gate
from earlywarn.serving.http import answer_errors_as_problems, explain_flag, parse, read_body
from earlywarn.serving.key_verifier import KeyVerifier
from earlywarn.serving.ops import OpsGate, RouteMetrics
from earlywarn.serving.outcomes import feedback_records, outcome_errors, outcome_records
from earlywarn.serving.problems import APIError, RequestIds
from earlywarn.serving.ratelimit import Limiter
from earlywarn.serving.schema import (
    FeedbackRequest,
    OutcomeRequest,
    RiskScoreResponse,
    max_body_bytes,
    score_request_model,
)
from earlywarn.serving.scorer import Results, ScoreJob, Scorer, score_job
from earlywarn.serving.store_view import StoreView
from earlywarn.serving.webhook_sender import WebhookSender
from earlywarn.training import messages
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.model_card import served_card

log = logging.getLogger("earlywarn.serving")
state.private_files()  # also when started by `bentoml serve` directly: the log, spool and keys stay private
INLINE_PARSE_BYTES = 64 * 1024  # about five participants x 28 days: parsed on the event loop in about 0.3 ms
CONFIG = settings()


def preflight(cfg: Settings) -> None:
    """Refuse to start on a bad EARLYWARN_MODE, a missing or demo secret in production, an HMAC key other than the
    one the store was pseudonymised with, or a tampered or unusable model: checked when
    the module is imported, so `bentoml serve` exits with the message instead of workers failing and retrying."""
    pseudonymizer = Pseudonymizer.from_env(cfg.demo)
    try:
        store.check_key(store.engine_for(store.url_from_env()), pseudonymizer)
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
answer_errors_as_problems(app)
ROUTES = openapi.routes(RiskScoreResponse)

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


def _purge_daily(engine: sa.engine.Engine, days: int) -> None:
    """Retention: once at start and every 24 h, delete what is older than EARLYWARN_RETENTION_DAYS."""
    while True:
        try:
            deleted = store.purge(engine, dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
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


def _open_store(cfg: Settings) -> StoreView:
    """The store, migrated (or, while it is away, records spool until it is back), with this replica's spool."""
    engine = store.engine_for(store.url_from_env())
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


@bentoml.service(name="earlywarn", workers=1, traffic={"timeout": 120}, logging={"access": {"enabled": False}})
@bentoml.asgi_app(app, path="/v1")
class RiskService:
    """Serves the packaged champion; needs no MLflow at run time."""

    model_ref = bentoml.models.BentoModel(CONFIG.model_tag)

    def __init__(self) -> None:
        cfg = CONFIG
        self.bundle = ModelBundle.load(self.model_ref.path)
        self.version = str(self.model_ref.info.labels.get("mlflow_version", self.model_ref.tag.version))
        self.request_model, self.limit = score_request_model(self.bundle.features), max_body_bytes(self.bundle.features)
        self.view = _open_store(cfg)
        engine = self.view.engine
        self.pseudonym = Pseudonymizer.from_env(cfg.demo)
        rates = {"requests": cfg.rate_limit, "days": cfg.day_limit, "outcomes": cfg.outcome_limit}
        limiter = Limiter(secret(cfg.redis_url), cfg.redis_prefix)
        self.gate = Gate(KeyVerifier(engine), limiter, **rates, auth_failures=cfg.auth_failure_limit, on_refused=RATE_LIMITED.inc)
        self.alerts = WebhookSender(engine)
        self.scorer = Scorer(self.bundle, self.version, self.pseudonym, self.view, self.alerts.send)
        self.batcher: MicroBatcher[ScoreJob, Results | APIError] = MicroBatcher(
            self.scorer.score_jobs, lambda j: len(j.rows), max_waiting=cfg.queue_limit
        )
        threading.Thread(target=_purge_daily, args=(engine, store.retention_days()), daemon=True).start()
        openapi.install(
            app, {"RiskScoreRequest": self.request_model, "OutcomeRequest": OutcomeRequest, "FeedbackRequest": FeedbackRequest}
        )
        _settle()
        log.info("serving model version %s with %d features (pid %d)", self.version, len(self.bundle.features), os.getpid())

    @bentoml.on_shutdown
    def drain(self) -> None:
        """On SIGTERM, write what is still spooled to the store before the worker exits."""
        self.view.spool.close(timeout=20)
        self.alerts.close()

    @app.post("/risk-scores", **ROUTES["risk_scores"])
    async def risk_scores(self, request: Request) -> JSONResponse:
        """Score 1-1,000 participants (up to 90 days each): calibrated risk, band, escalation flag, drivers, data quality."""
        partner = self.gate.partner(request)  # before anything in the request is read: no key, no validation messages
        explain = explain_flag(request.query_params.getlist("explain"))
        body = await read_body(request, self.limit)
        # A large body is parsed on a worker thread (a maximal one takes seconds); a small one here, where the hop costs more.
        small = len(body) < INLINE_PARSE_BYTES
        req = parse(self.request_model, body) if small else await run_in_threadpool(parse, self.request_model, body)
        self.gate.spend(self.gate.days, partner, sum(len(p.days) for p in req.participants), "participant-days")
        language, request_id = messages.negotiate(request.headers.get("accept-language")), problems.request_id(request.scope)
        results = await _scored(self.batcher, score_job(req, self.bundle.features, partner, request_id, explain, language))
        body_out = {"model_version": self.version, "request_id": request_id, "results": results}
        return JSONResponse(body_out, headers={"Content-Language": language, "Vary": "Accept-Language"})

    @app.post("/outcomes", **ROUTES["outcomes"])
    async def report_outcomes(self, request: Request) -> JSONResponse:
        """Report observed events for participants this partner has had scored; stored for monitoring and retraining."""
        partner = self.gate.partner(request)
        req = await run_in_threadpool(parse, OutcomeRequest, await read_body(request, 16 << 20))
        self.gate.spend(self.gate.outcomes, partner, len(req.outcomes), "outcomes")
        keys = [self.pseudonym(partner, o.participant_id) for o in req.outcomes]
        records = outcome_records(partner, keys, req.outcomes)
        first, seen = await run_in_threadpool(self.view.first_scored, partner, keys, [r["record_id"] for r in records])
        gone = {k for _, k in await run_in_threadpool(self.view.withdrawn, [(partner, k) for k in keys])}
        if errors := outcome_errors(req.outcomes, keys, first, gone, self.bundle.window.lookback):
            raise APIError(422, "validation_error", errors[:50])
        await run_in_threadpool(self.view.store, "outcomes", records)
        for o, k in zip(req.outcomes, keys, strict=True):
            self.view.note_event((partner, k), o.date)
        new = None if seen is None else len({r["record_id"] for r in records} - seen)
        return JSONResponse({"stored": len(records), "new": new}, status_code=202)

    @app.post("/alerts/{alert_id}/feedback", **ROUTES["feedback"])
    async def alert_feedback(self, request: Request, alert_id: str) -> JSONResponse:
        """Tell us what the care team did about an escalation (only the partner it was raised for); closes its episode."""
        partner = self.gate.partner(request)
        req = parse(FeedbackRequest, await read_body(request, 16 << 10))
        key = await run_in_threadpool(self.view.alert_owner, partner, alert_id)
        if key is None:  # another partner's alert answers the same as none, so ids reveal nothing
            raise APIError(404, "not_found", "no escalation with this alert_id for this partner")
        for table, record in feedback_records(partner, key, alert_id, req.action, req.note):
            await run_in_threadpool(self.view.store_now, table, [record])
        if (episode := self.view.episodes.get((partner, key))) is not None and episode.alert_id == alert_id:
            self.view.note_episode((partner, key), None)
        return JSONResponse({"stored": 1, "alert_id": alert_id, "episode": "closed"}, status_code=202)

    @app.get("/model", **ROUTES["model"])
    async def model_card(self) -> JSONResponse:
        """The served model's card: version, training date, data, metrics with intervals, bands, intended use, limits."""
        return JSONResponse(served_card(self.bundle, self.version))

    @app.get("/status", **ROUTES["status"])
    async def status(self) -> JSONResponse:
        """Readiness detail: model version, whether the prediction store answers, and the spooled backlog."""
        spool = self.view.spool
        SPOOL_BACKLOG.set(backlog := spool.backlog_bytes())
        stats = {"store_errors": spool.stats.failures, "last_store_error": spool.stats.last_error, "spool_backlog_bytes": backlog}
        return JSONResponse({"model_version": self.version} | stats)


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
RiskService.add_asgi_middleware(OpsGate, token=secret(CONFIG.ops_token), demo=CONFIG.demo)  # type: ignore[attr-defined]
