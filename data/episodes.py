"""Escalation episodes, one state machine: open, remind, rise, snooze, lost contact, close (docs/clinical.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NONE, NEW, ONGOING, SNOOZED, LOST_CONTACT = "none", "new", "ongoing", "snoozed", "lost_contact"
ACTIONS = ("contacted", "already_in_care", "no_action", "false_alarm")
ACT_NOW = ("open", "rise", "remind", "lost")  # the changes a result's `escalate: true` stands for
EVENTS = {  # the change kinds a partner's webhook hears about
    "open": "escalation.opened",
    "remind": "escalation.reminder",
    "rise": "escalation.rise",
    "lost": "escalation.lost_contact",
    "close": "escalation.closed",
}


@dataclass(frozen=True)
class Rules:
    """How episodes behave; every number is a setting (the escalation_* fields of data/settings.py)."""

    close_after: int = 7  # an episode closes after this many days without a high-band score
    snooze_days: int = 7  # feedback quiets an episode this long: no reminder, no new alert unless the risk rises
    in_care_days: int = 28  # `already_in_care` quiets it this long (the person is with a team already)
    remind_after: int = 2  # an opening nobody answered is reminded once, at the first score this many days later
    rise_factor: float = 2.0  # a high score at least this multiple of the last notified risk notifies again
    lost_contact_days: int = 14  # going stale this soon after an episode closed is still lost contact


@dataclass(frozen=True)
class Episode:
    """The latest episode of one participant at one partner, open or closed."""

    alert_id: str
    since: dt.date  # the day of the score that opened it
    last_high: dt.date  # the newest day with a high-band score in it
    notified_risk: float  # the risk of its last notification (opening or rise): a rise is measured from it
    answered: str | None = None  # the care team's latest feedback action
    quiet_until: dt.date | None = None  # feedback's snooze: no reminder, and no new alert without a rise, to this day
    reminded: bool = False
    lost_on: dt.date | None = None  # the day it was first answered lost_contact (one notification per episode)
    closed_on: dt.date | None = None
    post_event: bool = False  # opened within the washout after an event reported late: neither warning nor false alarm
    ended_by_event: bool = False  # closed because an event was reported: a silence after it is not lost contact

    @property
    def open(self) -> bool:
        return self.closed_on is None

    def quiet(self, day: dt.date) -> bool:
        return self.quiet_until is not None and day <= self.quiet_until


@dataclass(frozen=True)
class Change:
    """One append-only fact about an episode, stored as it happens; replicas and restarts fold them with `apply`."""

    alert_id: str
    kind: str  # open | high | remind | rise | snooze | lost | close | post | event
    day: dt.date
    reason: str | None = None
    risk: float | None = None
    until: dt.date | None = None


def apply(episode: Episode | None, c: Change) -> Episode | None:
    """The episode after one change (a change of an older episode leaves the latest one as it is)."""
    if c.kind == "open":
        return Episode(c.alert_id, c.day, c.day, c.risk or 0.0)
    if episode is None or episode.alert_id != c.alert_id:
        return episode
    replace = dataclasses.replace
    if c.kind == "high":
        return replace(episode, last_high=max(episode.last_high, c.day))
    if c.kind == "rise":
        return replace(episode, last_high=max(episode.last_high, c.day), notified_risk=c.risk or episode.notified_risk)
    if c.kind == "remind":
        return replace(episode, reminded=True)
    if c.kind == "snooze":
        return replace(episode, answered=c.reason, quiet_until=c.until)
    if c.kind == "lost":
        return replace(episode, lost_on=episode.lost_on or c.day)
    if c.kind == "close":
        return replace(episode, closed_on=episode.closed_on or c.day)
    if c.kind == "post":
        return replace(episode, post_event=True)
    if c.kind == "event":
        return replace(episode, closed_on=episode.closed_on or c.day, ended_by_event=True)
    raise ValueError(f"unknown episode change {c.kind!r}")


def fold(changes: Iterable[Change]) -> Episode | None:
    return fold_onto(None, changes)


def step(
    episode: Episode | None, day: dt.date, *, stale: bool, high: bool, risk: float | None, rules: Rules = Rules()
) -> tuple[str, list[Change]]:
    """A result for `day` against the participant's latest episode -> (the state to answer, the changes to store)."""
    changes: list[Change] = []
    if episode is not None and episode.open and (day - episode.last_high).days > rules.close_after:
        changes.append(Change(episode.alert_id, "close", day, f"{rules.close_after} days out of the high band"))
        episode = apply(episode, changes[-1])
    if stale:
        return _stale(episode, day, rules, changes)
    if high and (episode is None or not episode.open):
        quiet = episode is not None and episode.quiet(day) and (risk or 0.0) < rules.rise_factor * episode.notified_risk
        if quiet:  # dismissed as a false alarm a few days ago, and no higher now
            return SNOOZED, changes
        return NEW, [*changes, Change(str(uuid.uuid4()), "open", day, risk=risk)]
    if episode is None or not episode.open:
        return NONE, changes
    if high and (risk or 0.0) >= rules.rise_factor * episode.notified_risk and day > episode.last_high:
        changes.append(Change(episode.alert_id, "rise", day, f"risk {risk:.2f} from {episode.notified_risk:.2f}", risk))
    elif high and day > episode.last_high:
        changes.append(Change(episode.alert_id, "high", day))
    if episode.answered is None and not episode.reminded and (day - episode.since).days >= rules.remind_after:
        changes.append(Change(episode.alert_id, "remind", day, f"unanswered since {episode.since}"))
    return (SNOOZED if episode.quiet(day) else ONGOING), changes


def replay(
    days: Iterable[dt.date], high: Iterable[Any], risk: Iterable[Any], rules: Rules = Rules()
) -> list[tuple[str, list[Change]]]:
    """The state and changes the service would give one participant scored on each of these days, with no feedback
    (held-out data: the card's alert load and episode precision are counted under the service's own rules)."""
    episode, out = None, []
    for day, is_high, p in zip(days, high, risk, strict=True):
        state, changes = step(episode, day, stale=False, high=bool(is_high), risk=float(p), rules=rules)
        episode = fold_onto(episode, changes)
        out.append((state, changes))
    return out


def fold_onto(episode: Episode | None, changes: Iterable[Change]) -> Episode | None:
    for c in changes:
        episode = apply(episode, c)
    return episode


def _stale(episode: Episode | None, day: dt.date, rules: Rules, changes: list[Change]) -> tuple[str, list[Change]]:
    """Silent while at risk: an open episode, or one closed within `lost_contact_days`, is lost contact (notified once)."""
    if episode is None or episode.ended_by_event:
        return NONE, changes
    if episode.closed_on is not None and (day - episode.closed_on).days > rules.lost_contact_days:
        return NONE, changes
    if episode.lost_on is None:
        changes.append(Change(episode.alert_id, "lost", day, "no recent data while at risk"))
    return LOST_CONTACT, changes


def feedback(episode: Episode, action: str, day: dt.date, rules: Rules = Rules()) -> list[Change]:
    """What a care team's answer does: every answer stops the reminder and quiets the episode (`already_in_care` for
    longer); `false_alarm` also closes it, and a new one opens after the quiet time or on a material rise."""
    days = rules.in_care_days if action == "already_in_care" else rules.snooze_days
    changes = [Change(episode.alert_id, "snooze", day, action, until=day + dt.timedelta(days=days))]
    if action == "false_alarm" and episode.open:
        changes.append(Change(episode.alert_id, "close", day, "feedback: false_alarm"))
    return changes


def on_event(episode: Episode | None, event_day: dt.date, washout_days: int) -> list[Change]:
    """An event reported for `event_day` ends the episode it falls in; one opened after it within the washout (the
    report came late) was a post-event alert, neither an early warning nor a false alarm."""
    if episode is None or episode.ended_by_event or episode.since > event_day + dt.timedelta(days=washout_days):
        return []
    late = event_day < episode.since
    changes = [Change(episode.alert_id, "post", episode.since, f"opened after an event on {event_day}")] if late else []
    if episode.open or late:
        changes.append(Change(episode.alert_id, "event", max(event_day, episode.since), "event reported"))
    return changes


def answer(state: str, episode: Episode | None, changes: list[Change]) -> dict[str, Any]:
    """The `escalation` object of a result, with the notifications it queued (each naming its episode: a closing
    may name the one before the episode a result opens)."""
    notified = [{"event": EVENTS[c.kind], "alert_id": c.alert_id} for c in changes if c.kind in EVENTS]
    if episode is None or (state == NONE and not notified):
        return {"state": state}
    out: dict[str, Any] = {"state": state, "alert_id": episode.alert_id, "since": episode.since.isoformat()}
    if state == LOST_CONTACT and episode.lost_on is not None:
        out["lost_since"] = episode.lost_on.isoformat()
    if state == SNOOZED and episode.quiet_until is not None:
        out["quiet_until"] = episode.quiet_until.isoformat()
    return out | ({"notified": notified} if notified else {})
