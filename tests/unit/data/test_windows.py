"""Windows: labels from the horizon, washout, follow-up, observed-day minimum, participant splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.data.validation import validate_features, validate_outcomes
from earlywarn.data.windows import WindowConfig, build_windows


def _daily(pid: str, days: int, start: str = "2025-01-01", missing: tuple[int, ...] = ()) -> pd.DataFrame:
    dates = pd.date_range(start, periods=days).strftime("%Y-%m-%d")
    steps = np.arange(days, dtype=float)
    steps[list(missing)] = np.nan
    return pd.DataFrame({"participant_id": pid, "date": dates, "steps": steps})


def test_event_labels_washout_and_follow_up():
    feats = validate_features(_daily("a", 60))
    events = validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-02-10"], "event": ["relapse"]}))
    cfg = WindowConfig(lookback=7, horizon=5, min_observed_days=7, washout_days=10)
    ws = build_windows(feats, events, cfg)
    frame = ws.frame().set_index("date")["label"]
    event = pd.Timestamp("2025-02-10")
    # Positive exactly when the event falls in (t, t+5].
    assert frame.loc[event - pd.Timedelta(days=5)] == 1 and frame.loc[event - pd.Timedelta(days=1)] == 1
    assert frame.loc[event - pd.Timedelta(days=6)] == 0
    # No window ends on the event day or in the 10 days after it.
    for k in range(10):
        assert event + pd.Timedelta(days=k) not in frame.index
    assert frame.index.min() == pd.Timestamp("2025-01-07")  # first full lookback
    # Last days lack a full horizon of follow-up and are skipped, not called negative.
    assert frame.index.max() == pd.Timestamp("2025-03-01") - pd.Timedelta(days=5)
    assert ws.skipped["washout"] == 10 and ws.skipped["incomplete_follow_up"] == 5
    window = ws.values(np.array([0]))[0, :, 0]
    np.testing.assert_array_equal(window, np.arange(7, dtype=np.float32))


def test_min_observed_days_and_gaps():
    feats = validate_features(_daily("a", 40, missing=tuple(range(10, 20))))
    ws = build_windows(feats, None, WindowConfig(lookback=14, horizon=3, min_observed_days=10, washout_days=0))
    observed = (~np.isnan(ws.values())).any(axis=2).sum(axis=1)
    assert observed.min() >= 10 and ws.skipped["too_few_observed_days"] > 0


def test_label_mode_windows_end_on_assessment_dates():
    feats = validate_features(pd.concat([_daily("a", 40), _daily("b", 40)]))
    labels = validate_outcomes(
        pd.DataFrame({"participant_id": ["a", "b", "b"], "date": ["2025-02-01", "2025-02-05", "2025-03-30"], "label": [1, 0, 1]})
    )
    ws = build_windows(feats, labels, WindowConfig(lookback=28, horizon=14, min_observed_days=20))
    assert ws.frame()["date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-02-01", "2025-02-05"]
    assert ws.label.tolist() == [1, 0] and ws.skipped["outside_data"] == 1


def test_windows_share_one_panel_instead_of_copying():
    feats = validate_features(pd.concat([_daily(f"p{i}", 200) for i in range(20)]))
    ws = build_windows(feats, None, WindowConfig())
    # ~3,500 windows of 28 days would be ~100k window-rows if copied; the panel holds ~4.5k rows.
    assert ws.panel.values.shape[0] < 5_000 < len(ws) * ws.cfg.lookback


def test_a_window_needs_room_for_its_minimum_days():
    with pytest.raises(ValueError):
        WindowConfig(lookback=7, min_observed_days=8)


def test_training_history_equals_what_serving_grids_for_the_same_day():
    """The personal baseline a training window sees is exactly the history the scoring core builds from a table:
    the same days, NaN before the person's first day, nothing from the participant stored before them."""
    from earlywarn.training.scoring import histories_from_frame

    table = pd.concat([_daily("a", 50, missing=(3, 4)), _daily("b", 120, start="2024-12-01", missing=(100,))])
    feats = validate_features(table)
    ws = build_windows(feats, None, WindowConfig(lookback=7, min_observed_days=1, baseline_days=90))
    for i in (0, 40, len(ws) - 1):
        pid, end = ws.participant_id[i], pd.Timestamp(ws.end_date[i])
        own = feats[(feats["participant_id"] == pid) & (feats["date"] <= end)]
        served = histories_from_frame(own, ["steps"], 90).values[0]
        np.testing.assert_array_equal(ws.history(np.array([i]), 90)[0], served)
    first_b = int(np.flatnonzero(ws.participant_id == "b")[0])
    assert np.isnan(ws.history(np.array([first_b]), 90)[0, :-7]).all()  # nothing borrowed from participant a


def test_windows_care_may_have_changed_are_censored_whatever_followed():
    """After a care team acted on an escalation, what followed says what care did: every window whose horizon care
    could have touched is dropped, positives as well as negatives, so censoring cannot make alert-like windows look
    riskier than they were."""
    feats = validate_features(_daily("a", 90))
    events = validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-03-20"], "event": ["relapse"]}))
    cfg = WindowConfig(lookback=7, horizon=5, min_observed_days=7, washout_days=10)
    care = pd.DataFrame(
        {"participant_id": ["a", "a", "nobody"], "date": pd.to_datetime(["2025-02-01", "2025-03-17", "2025-02-01"])}
    )
    plain = build_windows(feats, events, cfg).frame().set_index("date")["label"]
    censored = build_windows(feats, events, cfg, care=care)
    kept = censored.frame().set_index("date")["label"]
    gone = [d for d in plain.index if d not in kept.index]
    # Windows ending in [care - 5 days, care + 5 days) go, the positives before the 2025-03-20 event among them.
    expected = [*pd.date_range("2025-01-27", periods=10), *pd.date_range("2025-03-12", "2025-03-19")]
    assert gone == expected, gone
    assert plain.loc[pd.Timestamp("2025-03-15") : pd.Timestamp("2025-03-19")].eq(1).all()
    assert censored.skipped["censored_after_care"] == len(gone)


def test_a_horizon_past_the_end_of_follow_up_is_censored_in_both_classes():
    """Data end on 2025-03-01 (administrative end) with an event on 2025-02-27: the windows whose horizon runs past the
    end are unknown for a quiet outcome, so the positive ones go too. An event reported after the last day of
    signals ends the follow-up itself: the windows before it are known positives and stay."""
    feats = validate_features(_daily("a", 60))
    cfg = WindowConfig(lookback=7, horizon=5, min_observed_days=7, washout_days=10)
    inside = validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-02-27"], "event": ["relapse"]}))
    kept = build_windows(feats, inside, cfg).frame().set_index("date")["label"]
    assert kept.index.max() == pd.Timestamp("2025-02-24")  # the last window whose horizon ends on 2025-03-01
    after = validate_outcomes(pd.DataFrame({"participant_id": ["a"], "date": ["2025-03-04"], "event": ["relapse"]}))
    ended = build_windows(feats, after, cfg).frame().set_index("date")["label"]
    assert ended.index.max() == pd.Timestamp("2025-03-01") and ended.loc["2025-02-27":].eq(1).all()
