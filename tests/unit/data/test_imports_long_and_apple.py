"""Long-format and Apple Health imports on small fixtures written from the published formats, checked by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from earlywarn.data.apple_health import AppleHealthImportConfig, import_apple_health
from earlywarn.data.long_format import LongImportConfig, import_long
from earlywarn.data.validation import ContractError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LONG = """participant_id,timestamp,signal,value,device
p1,2025-03-01T08:15:00+01:00,steps,1200,watch
p1,2025-03-01T18:40:00+01:00,steps,800,watch
p1,2025-03-01T21:00:00+01:00,mood_ema,6,app
p1,2025-03-01T09:00:00+01:00,mood_ema,4,app
p1,2025-03-02T07:00:00+01:00,sleep_duration_h,6.5,watch
p1,2025-03-02T07:05:00+01:00,sleep_duration_h,7.0,watch
p1,2025-03-01T23:30:00-05:00,screen_time_min,30,phone
p2,2025-03-01,places_visited,3,phone
p2,2025-03-01,places_visited,5,phone
"""


def test_long_format_aggregates_each_signal_by_its_rule_on_the_local_day(tmp_path):
    source = tmp_path / "long.csv"
    source.write_text(LONG)
    r = import_long(LongImportConfig(source, tmp_path / "out"))
    table = pd.read_csv(r.features_path).set_index(["participant_id", "date"])
    assert (r.n_participants, r.n_days, r.n_measurements) == (2, 3, 9)
    assert table.loc[("p1", "2025-03-01"), "steps"] == 2000  # counts add up
    assert table.loc[("p1", "2025-03-01"), "mood_ema"] == 5  # ratings average
    assert table.loc[("p1", "2025-03-01"), "screen_time_min"] == 30  # 23:30 local on the 1st, not the 2nd in UTC
    assert table.loc[("p1", "2025-03-02"), "sleep_duration_h"] == 7.0  # a night's figure: the last report wins
    assert table.loc[("p2", "2025-03-01"), "places_visited"] == 5  # distinct places: the day's maximum


def test_long_format_errors_name_the_file_row_and_column(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text(LONG + "p3,2025-03-01,coffee_cups,2,app\np3,yesterday,steps,10,app\np3,2025-03-01,steps,lots,app\n")
    with pytest.raises(ContractError) as err:
        import_long(LongImportConfig(source, tmp_path / "out"))
    text = str(err.value)
    assert "row 10" in text and "coffee_cups" in text and "row 11" in text and "timestamp" in text and "row 12" in text
    (tmp_path / "cols.csv").write_text("participant,time,signal,value\n")
    with pytest.raises(ContractError, match="participant_id"):
        import_long(LongImportConfig(tmp_path / "cols.csv", tmp_path / "out"))


def test_apple_health_export_to_days(tmp_path):
    r = import_apple_health(AppleHealthImportConfig(FIXTURES / "apple_health_export.xml", "ah-1", tmp_path))
    table = pd.read_csv(r.features_path).set_index("date")
    assert r.n_records == 12 and r.n_days == 2 and set(table["participant_id"]) == {"ah-1"}
    first, second = table.loc["2025-03-01"], table.loc["2025-03-02"]
    assert first["steps"] == 5000  # the Phone's 3000 + 2000 beat the Watch's 3500: overlapping sources never add
    assert first["active_energy_kcal"] == 250.5 and first["resting_hr_bpm"] == 60
    assert second["steps"] == 800 and second["hrv_sdnn_ms"] == 42 and "hrv_rmssd_ms" not in table.columns
    # The night 23:00-06:30 with a 30-minute wake: 7 h asleep, ending on the 2nd; in bed 22:30-07:00 (8.5 h).
    assert second["sleep_duration_h"] == 7.0 and second["sleep_efficiency"] == pytest.approx(7 / 8.5)
    assert second["sleep_midpoint_h"] == pytest.approx(2.75)  # halfway between 23:00 and 06:30
    assert pd.isna(first["sleep_duration_h"])


def test_an_apple_export_with_entities_or_wrong_units_is_refused(tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><HealthData>&a;</HealthData>')
    with pytest.raises(Exception, match=r"(?i)entit"):
        import_apple_health(AppleHealthImportConfig(bomb, "x", tmp_path / "o"))
    wrong = tmp_path / "units.xml"
    wrong.write_text(
        '<HealthData><Record type="HKQuantityTypeIdentifierStepCount" sourceName="P" unit="km" '
        'startDate="2025-03-01 08:00:00 +0100" endDate="2025-03-01 09:00:00 +0100" value="3"/></HealthData>'
    )
    with pytest.raises(ContractError, match=r"row 1.*expected 'count'"):
        import_apple_health(AppleHealthImportConfig(wrong, "x", tmp_path / "o"))
