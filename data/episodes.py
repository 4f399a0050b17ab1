"""Escalation episodes: the first high-band score opens one, later ones continue it, days out of the band close it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

CLOSE_AFTER_DAYS = 7  # an episode closes after this many days without a high-band score
NEW, ONGOING, NONE = "new", "ongoing", "none"


@dataclass(frozen=True)
class Episode:
    """An open episode of one participant at one partner."""

    alert_id: str
    since: dt.date  # the day of the score that opened it
    last_high: dt.date  # the newest day with a high-band score in it


@dataclass(frozen=True)
class Change:
    """One append-only fact about an episode, stored as it happens (replicas and restarts rebuild state from them)."""

    alert_id: str
    kind: str  # open | high | close
    day: dt.date
    reason: str | None = None


def step(
    episode: Episode | None, high: bool, day: dt.date, close_after: int = CLOSE_AFTER_DAYS
) -> tuple[str, Episode | None, list[Change]]:
    """A scored result for `day` against the participant's open episode -> (state, the open episode after it, the
    changes to store). Only a new episode escalates; a high score within `close_after` days of the last continues."""
    changes: list[Change] = []
    if episode is not None and (day - episode.last_high).days > close_after:
        changes.append(Change(episode.alert_id, "close", day, f"{close_after} days out of the high band"))
        episode = None
    if not high:
        return NONE, episode, changes
    if episode is None:
        opened = Episode(str(uuid.uuid4()), day, day)
        return NEW, opened, [*changes, Change(opened.alert_id, "open", day)]
    if day > episode.last_high:
        changes.append(Change(episode.alert_id, "high", day))
        episode = Episode(episode.alert_id, episode.since, day)
    return ONGOING, episode, changes
