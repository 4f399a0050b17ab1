"""What partners report back: outcomes (one record per fact, and the rules one must meet) and care-team feedback."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from earlywarn.serving.problems import APIError
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


def feedback_records(partner: str, key: str, alert_id: str, action: str, note: str | None) -> list[tuple[str, dict[str, Any]]]:
    """(table, record) pairs for a care team's feedback on an alert: the feedback itself, and its episode's close."""
    now = dt.datetime.now(dt.UTC)
    row = {"created_at": now.isoformat(), "partner": partner, "participant_key": key, "alert_id": alert_id}
    feedback = row | {"record_id": str(uuid.uuid4()), "action": action, "note": note}
    close = row | {
        "record_id": str(uuid.uuid4()),
        "kind": "close",
        "day": now.date().isoformat(),
        "reason": f"feedback: {action}",
    }
    return [("alert_feedback", feedback), ("escalation_changes", close)]


class Reports:
    """Takes in what partners report back (on a worker thread: it reads and writes the store)."""

    def __init__(self, view: StoreView, pseudonymize: Callable[[str, str], str], lookback_days: int):
        self.view, self.pseudonymize, self.lookback_days = view, pseudonymize, lookback_days

    def outcomes(self, partner: str, outcomes: list[Any]) -> dict[str, Any]:
        """Store the outcomes (422 naming each one that breaks a rule, nothing stored then) and say how many were new."""
        keys = [self.pseudonymize(partner, o.participant_id) for o in outcomes]
        records = outcome_records(partner, keys, outcomes)
        first, seen = self.view.first_scored(partner, keys, [r["record_id"] for r in records])
        gone = {k for _, k in self.view.withdrawn([(partner, k) for k in keys])}
        if errors := outcome_errors(outcomes, keys, first, gone, self.lookback_days):
            raise APIError(422, "validation_error", errors[:50])
        self.view.store("outcomes", records)
        for o, k in zip(outcomes, keys, strict=True):
            self.view.note_event((partner, k), o.date)
        return {"stored": len(records), "new": None if seen is None else len({r["record_id"] for r in records} - seen)}

    def feedback(self, partner: str, alert_id: str, action: str, note: str | None) -> dict[str, Any]:
        """Store what the care team did about the partner's own escalation (404 for anyone else's) and close it."""
        key = self.view.alert_owner(partner, alert_id)
        if key is None:  # another partner's alert answers the same as none, so ids reveal nothing
            raise APIError(404, "not_found", "no escalation with this alert_id for this partner")
        for table, record in feedback_records(partner, key, alert_id, action, note):
            self.view.store_now(table, [record])
        if (episode := self.view.episodes.get((partner, key))) is not None and episode.alert_id == alert_id:
            self.view.note_episode((partner, key), None)
        return {"stored": 1, "alert_id": alert_id, "episode": "closed"}
