"""Raw wearable import end to end: synthetic minute files -> import-actigraphy -> the generator's daily truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from earlywarn.cli import app
from earlywarn.data.actigraphy import circadian, cole_kripke, nonwear, to_minutes
from earlywarn.data.validation import ContractError

# Documented in docs/data-contract.md: median absolute error per day against the generator's truth.
TOLERANCE = {
    "sleep_duration_h": 0.25,
    "sleep_midpoint_h": 0.25,
    "sleep_efficiency": 0.06,
    "active_minutes": 3.0,
    "sedentary_minutes": 40.0,
}
TRUTH = list(TOLERANCE)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """6 case-control participants x 21 days, exported as 30-second epochs, imported back with labels."""
    root = tmp_path_factory.mktemp("acti")
    runner = CliRunner()
    args = ["data", "synth", "--design", "case-control", "--participants", "6", "--days", "21", "--seed", "2"]
    res = runner.invoke(app, [*args, "--out", str(root / "cohort"), "--minutes", str(root / "raw"), "--epoch-seconds", "30"])
    assert res.exit_code == 0, res.output
    labels = pd.read_csv(root / "cohort" / "outcomes.csv").groupby("participant_id")["label"].max().reset_index()
    labels.to_csv(root / "labels.csv", index=False)
    res = runner.invoke(
        app, ["data", "import-actigraphy", str(root / "raw"), "--out", str(root / "out"), "--labels", str(root / "labels.csv")]
    )
    assert res.exit_code == 0, res.output
    assert "epochs [30.0] s" in res.output
    truth = pd.read_parquet(root / "cohort" / "features.parquet")
    got = pd.read_csv(root / "out" / "features.csv", parse_dates=["date"])
    return root, truth.merge(got, on=["participant_id", "date"], suffixes=("_truth", ""))


def test_daily_features_match_the_generators_truth(imported):
    _, both = imported
    worn = both[[f + "_truth" for f in TRUTH]].notna().all(axis=1)
    for name, limit in TOLERANCE.items():
        pair = both.loc[worn, [name + "_truth", name]].dropna()
        assert len(pair) >= 0.9 * worn.sum(), f"{name}: only {len(pair)} of {worn.sum()} worn days imported"
        error = (pair[name] - pair[name + "_truth"]).abs().median()
        assert error <= limit, f"{name}: median absolute error {error:.3f} > {limit}"


def test_unworn_days_are_missing_never_zeros(imported):
    _, both = imported
    unworn = both[[f + "_truth" for f in TRUTH]].isna().any(axis=1)
    assert unworn.sum() > 0
    assert both.loc[unworn, TRUTH].isna().all().all()
    assert (both.loc[unworn, "wear_share"] < 0.7).all()


def test_circadian_metrics_and_labels_are_written(imported):
    root, _ = imported
    got = pd.read_csv(root / "out" / "features.csv")
    # Trailing-window metrics need two days of history (cold start), and a worn day.
    later = got.groupby("participant_id").cumcount() >= 1
    worn = got["wear_share"] >= 0.7
    for name in ("circadian_is", "circadian_iv", "circadian_ra", "circadian_l5", "circadian_m10"):
        assert got.loc[later & worn, name].notna().mean() > 0.9, name
        assert got.loc[~worn, name].isna().all(), name
    assert got["circadian_is"].dropna().between(0, 1).all() and got["circadian_ra"].dropna().between(0, 1).all()
    outcomes = pd.read_csv(root / "out" / "outcomes.csv")
    assert len(outcomes) == len(got) and set(outcomes["label"]) == {0, 1}  # one label per person, on each of their days


def test_circadian_definitions_on_known_rhythms():
    days = 7
    square = np.tile(np.r_[np.zeros(8), np.full(16, 100.0)], (days, 1))  # asleep 00-08 every day, perfectly regular
    m = circadian(square)
    assert m["circadian_is"] == pytest.approx(1.0) and m["circadian_ra"] == pytest.approx(1.0)
    assert m["circadian_l5"] == 0 and m["circadian_l5_onset_h"] in (0, 1, 2, 3) and m["circadian_m10"] == 100
    # 13 jumps of 100 between consecutive hours over 7 x 24 points; variance 100² · (8/24) · (16/24)
    n = days * 24
    assert m["circadian_iv"] == pytest.approx(n * 13 * 100**2 / ((n - 1) * n * 100**2 * (8 / 24) * (16 / 24)))
    noise = np.random.default_rng(0).uniform(0, 100, (days, 24))
    r = circadian(noise)
    assert r["circadian_is"] < 0.3 and r["circadian_iv"] > 1.5  # no rhythm: low stability, high fragmentation


def test_scoring_rules_follow_their_definitions():
    counts = np.r_[np.full(10, 0.0), np.full(5, 5000.0), np.full(200, 0.0)]
    assert cole_kripke(counts)[:6].all() and not cole_kripke(counts)[10:15].any()
    off = nonwear(counts, 90)
    assert off[15:].all() and not off[:15].any()  # the 200-minute zero run is non-wear; the 10-minute one is not


def test_bad_raw_files_name_the_problem(tmp_path):
    frame = pd.DataFrame({"timestamp": ["2025-01-01T00:00:00", "not a time"], "activity": [1, 2]})
    with pytest.raises(ContractError, match="row 2"):
        to_minutes(frame, "p1.csv")
    hourly = pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=5, freq="h").astype(str), "activity": 1})
    with pytest.raises(ContractError, match="epoch length 3600 s"):
        to_minutes(hourly, "p2.csv")
