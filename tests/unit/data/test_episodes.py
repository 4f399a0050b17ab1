"""Escalation episodes as a state machine and in the store: one alert per episode, not one per high score."""

from __future__ import annotations

import datetime as dt

from earlywarn.data import store
from earlywarn.data.episodes import CLOSE_AFTER_DAYS, NEW, NONE, ONGOING, step

D0 = dt.date(2025, 5, 1)


def _replay(highs: list[bool]) -> list[tuple[str, str | None]]:
    episode, out = None, []
    for i, high in enumerate(highs):
        state, episode, _ = step(episode, high, D0 + dt.timedelta(days=i))
        out.append((state, episode.alert_id if episode else None))
    return out


def test_only_the_first_high_score_of_an_episode_escalates():
    states = _replay([False, True, True, False, True, True])
    assert [s for s, _ in states] == [NONE, NEW, ONGOING, NONE, ONGOING, ONGOING]
    assert len({a for s, a in states if s != NONE}) == 1


def test_an_episode_closes_after_days_out_of_the_high_band_and_the_next_high_opens_another():
    almost = _replay([True] + [False] * (CLOSE_AFTER_DAYS - 1) + [True])
    assert almost[-1][0] == ONGOING  # CLOSE_AFTER_DAYS - 1 days out of the band: still the same episode
    states = _replay([True] + [False] * CLOSE_AFTER_DAYS + [True])
    assert [s for s, _ in states].count(NEW) == 2 and states[0][1] != states[-1][1]


def test_closing_is_recorded_with_its_reason():
    _, episode, opened = step(None, True, D0)
    state, after, changes = step(episode, False, D0 + dt.timedelta(days=CLOSE_AFTER_DAYS + 1))
    assert [c.kind for c in opened] == ["open"] and state == NONE and after is None
    assert [c.kind for c in changes] == ["close"] and "out of the high band" in (changes[0].reason or "")


def test_the_store_rebuilds_open_episodes_from_their_changes(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    store.migrate(engine)
    now = dt.datetime.now(dt.UTC).isoformat()
    episode, rows = None, []
    for i, high in enumerate([True, True, False]):
        _, episode, changes = step(episode, high, D0 + dt.timedelta(days=i))
        rows += [
            {"record_id": f"{i}-{c.kind}", "created_at": now, "partner": "acme", "participant_key": "k1"}
            | {"alert_id": c.alert_id, "kind": c.kind, "day": c.day.isoformat(), "reason": c.reason}
            for c in changes
        ]
    store.insert_ignoring_duplicates(engine, "escalation_changes", rows)
    stored = store.open_episodes(engine, [("acme", "k1"), ("beta", "k1")])
    assert stored == {("acme", "k1"): episode}
    _, _, closing = step(episode, False, D0 + dt.timedelta(days=30))
    close = closing[0]
    store.insert_ignoring_duplicates(
        engine,
        "escalation_changes",
        [
            {"record_id": "close", "created_at": now, "partner": "acme", "participant_key": "k1"}
            | {"alert_id": close.alert_id, "kind": close.kind, "day": close.day.isoformat(), "reason": close.reason}
        ],
    )
    assert store.open_episodes(engine, [("acme", "k1")]) == {}
