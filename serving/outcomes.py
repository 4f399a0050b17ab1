"""What partners report back: outcomes (one record per fact, and the rules one must meet) and care-team feedback."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from earlywarn.data import episodes
from earlywarn.data.windows import WindowConfig
from earlywarn.serving.problems import APIError
from earlywarn.serving.schema import as_of_errors
from earlywarn.serving.store_view import StoreView

OUTCOME_IDS = uuid.UUID("5f1c7f0e-6b7e-4a0c-9a53-2f1d8c3e9b10")  # namespace of outcome record ids (uuid5)


def outcome_records(partner: str, keys: list[str], outcomes: list[Any]) -> list[dict[str, Any]]:
    """The same partner, participant, day and event is one fact: reposting it stores nothing new."""
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        {
            "record_id": str(uuid.uuid5(OUTCOME_IDS, f"{partner}\x1f{k}\x1f{o.date}\x1f{o.event}")),
            "created_at": now,
            "partner": partner,
            "participant_key": k,
            "date": o.date.isoformat(),
            "event": o.event,
        }
        for o, k in zip(outcomes, keys, strict=True)
    ]


def outcome_errors(
    outcomes: list[Any], keys: list[str], first: dict[str, dt.date], gone: set[str], lookback_days: int
) -> list[dict[str, str]]:
    """An outcome must be for a participant this partner had scored and who has not withdrawn consent, on a day
    from the first scored window's first day (its end minus the lookback) to tomorrow (UTC)."""
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    lookback = dt.timedelta(days=lookback_days)
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


def change_records(partner: str, key: str, changes: list[episodes.Change]) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        {"record_id": str(uuid.uuid4()), "created_at": now, "partner": partner, "participant_key": key}
        | {"alert_id": c.alert_id, "kind": c.kind, "day": c.day.isoformat(), "reason": c.reason, "risk": c.risk}
        | {"until": c.until.isoformat() if c.until else None}
        for c in changes
    ]


class Reports:
    """Takes in what partners report back (on a worker thread: it reads and writes the store)."""

    def __init__(self, view: StoreView, pseudonymize: Callable[[str, str], str], window: WindowConfig, rules: episodes.Rules):
        self.view, self.pseudonymize, self.rules = view, pseudonymize, rules
        self.lookback_days, self.washout_days = window.lookback, window.washout_days

    def outcomes(self, partner: str, outcomes: list[Any]) -> dict[str, Any]:
        """Store the outcomes (422 naming each one that breaks a rule, nothing stored then), end the episodes they
        fall in, and say how many were new."""
        keys = [self.pseudonymize(partner, o.participant_id) for o in outcomes]
        records = outcome_records(partner, keys, outcomes)
        first, seen = self.view.first_scored(partner, keys, [r["record_id"] for r in records])
        gone = {k for _, k in self.view.withdrawn([(partner, k) for k in keys])}
        if errors := outcome_errors(outcomes, keys, first, gone, self.lookback_days):
            raise APIError(422, "validation_error", errors[:50])
        self.view.store_now("outcomes", records)  # at once, so a repeat a moment later (any replica) counts as not new
        for o, k in zip(outcomes, keys, strict=True):
            self.view.note_event((partner, k), o.date)
        self._end_episodes(partner, keys, outcomes)
        return {"stored": len(records), "new": None if seen is None else len({r["record_id"] for r in records} - seen)}

    def _end_episodes(self, partner: str, keys: list[str], outcomes: list[Any]) -> None:
        pairs = [(partner, k) for k in keys]
        self.view.refresh_episodes(pairs)
        changes = []
        for pair, o in sorted(zip(pairs, outcomes, strict=True), key=lambda po: po[1].date):
            episode = self.view.episodes.get(pair)
            steps = episodes.on_event(episode, o.date, self.washout_days)
            for c in steps:
                episode = episodes.apply(episode, c)
            self.view.note_episode(pair, episode)
            changes += change_records(partner, pair[1], steps)
        if changes:
            self.view.store_now("escalation_changes", changes)

    def feedback(self, partner: str, alert_id: str, action: str, note: str | None, as_of: dt.date | None) -> dict[str, Any]:
        """Store what the care team did about the partner's own escalation (404 for anyone else's); on the latest
        episode it takes the effect data/episodes.py's `feedback` gives it."""
        key = self.view.alert_owner(partner, alert_id)
        if key is None:  # another partner's alert answers the same as none, so ids reveal nothing
            raise APIError(404, "not_found", "no escalation with this alert_id for this partner")
        today = dt.datetime.now(dt.UTC).date()
        if errors := as_of_errors(as_of, today):
            raise APIError(422, "validation_error", errors)
        now = dt.datetime.now(dt.UTC).isoformat()
        row = {"record_id": str(uuid.uuid4()), "created_at": now, "partner": partner, "participant_key": key}
        self.view.store_now("alert_feedback", [row | {"alert_id": alert_id, "action": action, "note": note}])
        self.view.refresh_episodes([(partner, key)])
        episode = self.view.episodes.get((partner, key))
        if episode is None or episode.alert_id != alert_id:  # an older episode's alert: stored, nothing to change
            return {"stored": 1, "alert_id": alert_id, "episode": "closed"}
        steps = episodes.feedback(episode, action, as_of or today, self.rules)
        for c in steps:
            episode = episodes.apply(episode, c)
        self.view.note_episode((partner, key), episode)
        self.view.store_now("escalation_changes", change_records(partner, key, steps))
        assert episode is not None
        state = "snoozed" if episode.open else "closed"
        return {"stored": 1, "alert_id": alert_id, "episode": state, "quiet_until": str(episode.quiet_until)}
