"""The service's scoring workflow, apart from HTTP: score a pass of requests, escalate, and keep every record."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from earlywarn.data import episodes
from earlywarn.data.store.webhooks import delivery_record
from earlywarn.serving.problems import APIError
from earlywarn.serving.results import assemble, score
from earlywarn.serving.schema import as_of_errors, day_order_errors
from earlywarn.serving.store_view import Pair, StoreView
from earlywarn.training import messages
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.scoring import INSUFFICIENT, SCORED, SILENT, STALE, WITHDRAWN, reason_text


@dataclass
class ScoreJob:
    """One validated request waiting for the model."""

    rows: list[tuple[str, list[tuple[dt.date, list[float | None]]]]]
    as_of: dt.date
    partner: str
    request_id: str
    explain: bool
    language: str = messages.DEFAULT


Results = list[dict[str, Any]]


def score_job(
    participants: list[Any],
    as_of: dt.date | None,
    features: list[str],
    partner: str,
    request_id: str,
    explain: bool,
    language: str,
) -> ScoreJob:
    """The job a parsed risk-score request becomes, once its days and `as_of` pass the checks the schema cannot make."""
    today = dt.datetime.now(dt.UTC).date()
    if errors := as_of_errors(as_of, today) + day_order_errors(participants, as_of or today):
        raise APIError(422, "validation_error", errors)
    rows = [(p.participant_id, [(d.date, [getattr(d, f) for f in features]) for d in p.days]) for p in participants]
    return ScoreJob(rows, as_of or today, partner, request_id, explain, language)


def _silenced(r: dict[str, Any], language: str) -> dict[str, Any]:
    """A silent partner's answer: stored in full for validation, shown as nothing a care team could act on."""
    if r["status"] == WITHDRAWN:
        return r
    kept = {k: r[k] for k in ("participant_id", "window_end", "as_of") if k in r}
    return kept | {"status": SILENT, "reason": reason_text(SILENT, {}, language)}


class Scorer:
    """Scores jobs in one pass through the scoring core; a plain class, so tests build it from a tiny bundle."""

    def __init__(
        self,
        bundle: ModelBundle,
        version: str,
        pseudonymize: Callable[[str, str], str],
        view: StoreView,
        notify: Callable[[], None],
        rules: episodes.Rules | None = None,
    ):
        self.bundle, self.version, self.pseudonymize, self.view, self.notify = bundle, version, pseudonymize, view, notify
        self.rules = rules or episodes.Rules()

    def score_jobs(self, jobs: list[ScoreJob]) -> list[Results | APIError]:
        """Score several requests in one pass; each gets its results, or the error that kept them from being stored."""
        rows = [row for job in jobs for row in job.rows]
        pairs = [(job.partner, self.pseudonymize(job.partner, pid)) for job in jobs for pid, _ in job.rows]
        languages = [job.language for job in jobs for _ in job.rows]
        days = [job.as_of for job in jobs for _ in job.rows]
        events = self.view.latest_events(pairs)
        gone = self.view.withdrawn(pairs)
        results, summaries, inputs = score(
            self.bundle,
            assemble(rows, len(self.bundle.features), days),
            explain=any(j.explain for j in jobs),
            last_event=[events.get(pair) for pair in pairs],
            language=languages,
        )
        for i in [i for i, pair in enumerate(pairs) if pair in gone]:  # answered, never scored, logged or escalated
            results[i] = {
                "participant_id": results[i]["participant_id"],
                "window_end": results[i]["window_end"],
                "status": WITHDRAWN,
                "reason": reason_text(WITHDRAWN, {}, languages[i]),
            }
        now = dt.datetime.now(dt.UTC).isoformat()
        silent = self.view.silent({job.partner for job in jobs})
        try:
            self.escalate(results, pairs, days, now, skip={i for i, (partner, _) in enumerate(pairs) if partner in silent})
            out, records = self._split(jobs, results, summaries, inputs, pairs, now)
            self.view.store("predictions", records)
        except APIError as err:  # neither the store nor the spool took the records
            return [err] * len(jobs)
        return [
            [_silenced(r, job.language) for r in mine] if job.partner in silent else mine
            for job, mine in zip(jobs, out, strict=True)
        ]

    def _split(
        self, jobs: list[ScoreJob], results: Results, summaries: Sequence[Any], inputs: Any, pairs: list[Pair], now: str
    ) -> tuple[list[Results], Results]:
        """Each job's own results, and the prediction records of everyone scored (withdrawn people leave none)."""
        out, records, start = [], [], 0
        for job in jobs:
            end = start + len(job.rows)
            for r, s, window, pair in zip(
                results[start:end], summaries[start:end], inputs[start:end], pairs[start:end], strict=True
            ):
                if not job.explain:
                    r.pop("drivers", None)
                if r["status"] != WITHDRAWN:
                    records.append(self._record(job, r, s, window, pair[1], now))
            self.view.note_scored(pairs[start:end], [dt.date.fromisoformat(r["window_end"]) for r in results[start:end]])
            out.append(results[start:end])
            start = end
        return out, records

    def _record(self, job: ScoreJob, r: dict[str, Any], summary: Any, window: Any, key: str, now: str) -> dict[str, Any]:
        return {
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
            "summary": summary,
            "inputs": window,
        }

    def escalate(self, results: Results, pairs: list[Pair], days: list[dt.date], now: str, skip: set[int] | None = None) -> None:
        """Each scored result, and each that could not be scored (stale, too little data), against the participant's
        latest episode (data/episodes.py): the state it is answered with, the changes stored straight away (replicas
        see them at once; spooled while the store is away), and the partner's notifications queued once those are."""
        live = [i for i, r in enumerate(results) if r["status"] in (SCORED, STALE, INSUFFICIENT) and i not in (skip or ())]
        self.view.refresh_episodes([pairs[i] for i in live])
        changes: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        for i in live:
            r, pair = results[i], pairs[i]
            episode = self.view.episodes.get(pair)
            state, steps = episodes.step(
                episode, days[i], stale=r["status"] != SCORED, high=r.get("band") == "high", risk=r.get("risk"), rules=self.rules
            )
            for c in steps:
                episode = episodes.apply(episode, c)
            self.view.note_episode(pair, episode)
            if r["status"] != SCORED and state == episodes.NONE and not steps:
                continue  # no score and no episode: nothing to say about escalation
            r["escalate"] = any(c.kind in episodes.ACT_NOW for c in steps)
            r["escalation"] = episodes.answer(state, episode, steps)
            changes += [self._change(pair, c, now) for c in steps]
            deliveries += [
                delivery_record(
                    pair[0], pair[1], episodes.EVENTS[c.kind], self._payload(c, state), dt.datetime.fromisoformat(now)
                )
                for c in steps
                if c.kind in episodes.EVENTS
            ]
        if changes:
            self.view.store_now("escalation_changes", changes)
        if deliveries:  # only once the changes are durable; never the person's id or signal values
            self.view.store_now("webhook_deliveries", deliveries)
            self.notify()

    def _change(self, pair: Pair, c: episodes.Change, now: str) -> dict[str, Any]:
        return {"record_id": str(uuid.uuid4()), "created_at": now, "partner": pair[0], "participant_key": pair[1]} | {
            "alert_id": c.alert_id,
            "kind": c.kind,
            "day": c.day.isoformat(),
            "reason": c.reason,
            "risk": c.risk,
            "until": c.until.isoformat() if c.until else None,
        }

    def _payload(self, c: episodes.Change, state: str) -> dict[str, Any]:
        """A Standard Webhooks payload: the alert id (the partner matches it to the person from the API answer that
        carried both), what happened and when; no identifier of the person, so none waits in the delivery queue."""
        data: dict[str, Any] = {
            "alert_id": c.alert_id,
            "day": c.day.isoformat(),
            "state": state,
            "reason": c.reason,
            "model_version": self.version,
        }
        if c.risk is not None:
            data["risk"] = round(c.risk, 4)
        return {"type": episodes.EVENTS[c.kind], "timestamp": dt.datetime.now(dt.UTC).isoformat(), "data": data}
