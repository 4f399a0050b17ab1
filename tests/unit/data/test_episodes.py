"""Escalation episodes: every transition of the state machine, and the store folding stored changes back into it."""

from __future__ import annotations

import datetime as dt

import pytest

from earlywarn.data import store
from earlywarn.data.episodes import (
    LOST_CONTACT,
    NEW,
    NONE,
    ONGOING,
    SNOOZED,
    Change,
    Episode,
    Rules,
    feedback,
    fold,
    fold_onto,
    on_event,
    replay,
    step,
)

D0 = dt.date(2025, 5, 1)
RULES = Rules()


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def run(episode: Episode | None, n: int, *, high: bool = True, risk: float = 0.4, stale: bool = False):
    """(state, change kinds, the episode after) for a result on day n."""
    state, changes = step(episode, day(n), stale=stale, high=high, risk=risk, rules=RULES)
    return state, [c.kind for c in changes], fold_onto(episode, changes)


def opened(n: int = 0, risk: float = 0.4) -> Episode:
    _, kinds, episode = run(None, n, risk=risk)
    assert kinds == ["open"] and episode is not None
    return episode


def test_the_first_high_score_opens_an_episode_and_later_ones_continue_it():
    assert run(None, 0, high=False)[:2] == (NONE, [])
    state, kinds, episode = run(None, 0, risk=0.4)
    assert (state, kinds) == (NEW, ["open"]) and episode.notified_risk == 0.4 and episode.since == D0
    state, kinds, after = run(episode, 1, risk=0.5)
    assert (state, kinds) == (ONGOING, ["high"]) and after.last_high == day(1) and after.alert_id == episode.alert_id
    assert run(after, 1, risk=0.5)[1] == []  # the same day scored again: nothing new
    assert run(after, 2, high=False)[0] == ONGOING  # a day out of the band: still open


def test_an_episode_closes_after_close_after_days_without_a_high_score_and_the_next_high_opens_another():
    episode = opened()
    episode = run(episode, 1)[2]  # answered below, so no reminder mixes in
    episode = fold_onto(episode, feedback(episode, "contacted", day(1), Rules(snooze_days=0)))
    assert run(episode, 1 + RULES.close_after, high=False)[:2] == (ONGOING, [])
    state, kinds, closed = run(episode, 2 + RULES.close_after, high=False)
    assert (state, kinds) == (NONE, ["close"]) and closed.closed_on == day(2 + RULES.close_after)
    state, kinds, again = run(closed, 3 + RULES.close_after)
    assert (state, kinds) == (NEW, ["open"]) and again.alert_id != episode.alert_id


def test_an_unanswered_opening_is_reminded_once_after_the_delay():
    episode = opened()
    assert run(episode, RULES.remind_after - 1)[1] == ["high"]
    state, kinds, reminded = run(episode, RULES.remind_after, high=False)
    assert (state, kinds) == (ONGOING, ["remind"]) and reminded.reminded
    assert run(reminded, RULES.remind_after + 1)[1] == ["high"]  # once only
    answered = fold_onto(episode, feedback(episode, "no_action", day(1)))
    assert "remind" not in run(answered, RULES.remind_after + 3)[1]  # an answered one is never reminded


def test_a_material_rise_notifies_again_even_while_snoozed_and_resets_what_a_rise_is_measured_from():
    episode = opened(risk=0.3)
    snoozed = fold_onto(episode, feedback(episode, "contacted", day(1)))
    assert run(snoozed, 2, risk=0.59)[:2] == (SNOOZED, ["high"])  # under double: quiet
    state, kinds, risen = run(snoozed, 2, risk=0.6)
    assert (state, kinds) == (SNOOZED, ["rise"]) and risen.notified_risk == 0.6
    assert run(risen, 3, risk=0.9)[1] == ["high"]  # 0.9 is not double 0.6
    assert run(episode, 1, risk=0.8, high=False)[1] == []  # a rise must be in the high band


@pytest.mark.parametrize(
    ("action", "quiet_days", "open_after"),
    [("contacted", 7, True), ("no_action", 7, True), ("already_in_care", 28, True), ("false_alarm", 7, False)],
)
def test_each_feedback_action_quiets_the_episode_for_its_time(action, quiet_days, open_after):
    episode = opened()
    after = fold_onto(episode, feedback(episode, action, day(1)))
    assert after.answered == action and after.quiet_until == day(1 + quiet_days) and after.open == open_after
    states = []
    for n in range(2, quiet_days + 3):  # high every day: an open episode stays open through the quiet time
        state, _, after = run(after, n)
        states.append(state)
    assert states[:-1] == [SNOOZED] * quiet_days and states[-1] == (ONGOING if open_after else NEW)


def test_after_a_false_alarm_a_new_episode_waits_for_the_quiet_time_unless_the_risk_rises():
    episode = opened(risk=0.3)
    dismissed = fold_onto(episode, feedback(episode, "false_alarm", day(1)))
    assert run(dismissed, 3, risk=0.5)[:2] == (SNOOZED, [])
    state, kinds, new = run(dismissed, 3, risk=0.61)
    assert (state, kinds) == (NEW, ["open"]) and new.alert_id != episode.alert_id


def test_going_silent_while_at_risk_is_lost_contact_notified_once_per_episode():
    assert run(None, 0, stale=True)[:2] == (NONE, [])
    episode = opened()
    state, kinds, lost = run(episode, 2, stale=True)
    assert (state, kinds) == (LOST_CONTACT, ["lost"]) and lost.lost_on == day(2)
    assert run(lost, 3, stale=True)[:2] == (LOST_CONTACT, [])
    back = run(lost, 4)[2]
    assert run(back, 5, stale=True)[:2] == (LOST_CONTACT, [])  # one notification per episode
    closed = run(episode, 1 + RULES.close_after + 1, high=False)[2]
    assert not closed.open
    state, kinds, _ = run(closed, 1 + RULES.close_after + 1 + RULES.lost_contact_days, stale=True)
    assert (state, kinds) == (LOST_CONTACT, ["lost"])  # recently closed: still at risk
    assert run(closed, 2 + RULES.close_after + 1 + RULES.lost_contact_days, stale=True)[:2] == (NONE, [])
    ended = fold_onto(episode, on_event(episode, day(3), washout_days=28))
    assert run(ended, 5, stale=True)[:2] == (NONE, [])  # in hospital after a reported event: not lost


def test_an_event_ends_its_episode_and_one_opened_after_it_within_the_washout_is_post_event():
    episode = opened(n=10)
    assert [c.kind for c in on_event(episode, day(12), 28)] == ["event"]
    late = on_event(episode, day(5), 28)  # reported late: the episode opened five days after the event
    assert [c.kind for c in late] == ["post", "event"] and fold_onto(episode, late).post_event
    assert on_event(episode, day(10 - 29), 28) == []  # an event long before the episode: nothing to do
    closed = run(episode, 12 + RULES.close_after, high=False)[2]
    assert on_event(closed, day(30), 28) == []  # after it closed: not its event


def test_replay_gives_the_service_rules_over_a_series_of_daily_scores():
    highs = [False, True, True, False, False, True] + [False] * 9 + [True]
    states = [s for s, _ in replay([day(i) for i in range(len(highs))], highs, [0.4] * len(highs))]
    assert states[:6] == [NONE, NEW, ONGOING, ONGOING, ONGOING, ONGOING] and states[-1] == NEW
    assert states.count(NEW) == 2


def test_the_store_folds_each_participants_latest_episode_from_its_changes(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    store.migrate(engine)
    now = dt.datetime.now(dt.UTC)
    episode, rows = None, []

    def keep(changes: list[Change], n: int) -> None:
        nonlocal episode
        episode = fold_onto(episode, changes)
        rows.extend(
            {"record_id": f"{n}-{i}", "created_at": (now + dt.timedelta(seconds=n)).isoformat(), "partner": "acme"}
            | {"participant_key": "k1", "alert_id": c.alert_id, "kind": c.kind, "day": c.day.isoformat()}
            | {"reason": c.reason, "risk": c.risk, "until": c.until.isoformat() if c.until else None}
            for i, c in enumerate(changes)
        )

    keep(step(None, day(0), stale=False, high=True, risk=0.3)[1], 0)
    keep(step(episode, day(2), stale=False, high=True, risk=0.7)[1], 1)
    keep(feedback(episode, "contacted", day(3)), 2)
    keep(step(episode, day(5), stale=True, high=False, risk=None)[1], 3)
    store.insert_ignoring_duplicates(engine, "escalation_changes", rows)
    stored = store.latest_episodes(engine, [("acme", "k1"), ("beta", "k1")])
    assert stored == {("acme", "k1"): episode}
    assert episode.notified_risk == 0.7 and episode.quiet_until == day(10) and episode.lost_on == day(5)
    assert fold([]) is None
