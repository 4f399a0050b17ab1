"""Go-live criteria: read strictly from TOML, and each judged against its measured figure (unmeasurable fails)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from earlywarn import golive
from earlywarn.data import store


def test_criteria_are_read_strictly(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[criteria]\nmin_people = 20\nmin_auroc_lower = 0.55\n")
    c = golive.Criteria.load(path)
    assert (c.min_people, c.min_auroc_lower, c.min_events) == (20, 0.55, golive.Criteria().min_events)
    for text, message in (
        ("[criteria]\nmin_people = '20'\n", "numbers"),
        ("[criteria]\nmin_auroc = 0.6\n", "unknown criteria"),
        ("[thresholds]\nmin_rows = 1\n", "no \\[criteria\\]"),
    ):
        path.write_text(text)
        with pytest.raises(golive.CriteriaError, match=message):
            golive.Criteria.load(path)


def test_each_criterion_is_judged_and_an_unmeasurable_one_fails():
    measured = {"people": 60.0, "events": 12.0, "auroc_ci_low": math.nan, "high_band_gap": 0.04}
    checks = golive.judge(golive.Criteria(), measured | {"alerts_per_100_participant_months": 25.0})
    verdict = {c.criterion: c.met for c in checks}
    assert verdict == {
        "min_people": True,
        "min_events": True,
        "min_auroc_lower": False,  # no interval (too few matured predictions): not shown to be good enough
        "max_high_band_gap": True,
        "max_alerts_per_100_participant_months": False,
    }


def test_a_partner_never_silent_cannot_go_live_and_silent_ones_cannot_change_their_criteria(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 's.db'}")
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    with pytest.raises(golive.ModeError, match="not in silent mode"):
        golive.go_live(engine, "acme", now)
    golive.go_silent(engine, "acme", golive.Criteria(min_people=1), now)
    assert store.silent_partners(engine) == {"acme"}
    with pytest.raises(golive.ModeError, match="cannot change while silent"):
        golive.go_silent(engine, "acme", golive.Criteria(min_people=0), now)
    live, checks = golive.go_live(engine, "acme", now)  # no data at all: every criterion that needs some fails
    assert not live and not checks[0].met and store.current_mode(engine, "acme").mode == "silent"
    live, _ = golive.go_live(engine, "acme", now, override="pilot ended; board minute 12")
    assert live and store.current_mode(engine, "acme").override == "pilot ended; board minute 12"
