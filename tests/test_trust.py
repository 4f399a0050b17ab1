"""How far a score can be trusted and what drove it: the risk interval, drivers against the person's own baseline, texts
in the person's language."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.validation import load_validated
from data.windows import WindowConfig, build_windows
from serving.scoring import MISSING_DATA, score
from training import messages
from training.fit import FitConfig
from training.scoring import histories_from_frame
from training.train import TrainConfig, train
from training.uncertainty import Interval, imputations


@pytest.fixture(scope="module")
def run(small_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.setenv("EARLYWARN_ARTIFACT_ROOT", str(root / "artifacts"))
    cfg = TrainConfig(
        features=small_cohort.features_path,
        outcomes=small_cohort.outcomes_path,
        out=root / "out",
        fit=FitConfig(max_epochs=3, progress=False),
        bootstrap_reps=20,
        compare_baseline=False,
    )
    result = train(cfg)
    mp.undo()
    return result


@pytest.fixture(scope="module")
def features(small_cohort) -> pd.DataFrame:
    return pd.read_parquet(small_cohort.features_path)


def _complete_windows(small_cohort, bundle, n: int = 300) -> np.ndarray:
    data = load_validated(small_cohort.features_path, small_cohort.outcomes_path)
    ws = build_windows(data.features, data.outcomes, WindowConfig(lookback=bundle.window.lookback))
    histories = ws.history(np.random.default_rng(1).choice(len(ws), n, replace=False), bundle.input_days)
    complete = (~np.isnan(histories[:, -bundle.window.lookback :])).any(axis=2).all(axis=1)
    return histories[complete]


# --- the risk interval -----------------------------------------------------------------------------------------------


def test_the_interval_covers_the_true_risk_at_about_its_stated_rate_on_held_out_windows(run):
    """Fitted on the calibration split against the synthetic cohort's true risk; checked on the test participants."""
    m = run.metrics
    assert run.bundle.interval.fitted_on == "true_risk" and run.bundle.interval.coverage == 0.8
    assert 0.68 <= m["interval_coverage"] <= 0.92, m["interval_coverage"]
    assert m["interval_n_missing_0"] > 0 and m["interval_width_mean"] > 0


def test_the_interval_holds_the_risk_and_widens_when_days_are_missing(run, small_cohort):
    bundle = run.bundle
    histories = _complete_windows(small_cohort, bundle)
    risk = bundle.risk(histories)
    low, high = bundle.risk_interval(histories, risk)
    assert np.all((low <= risk) & (risk <= high)) and np.all(high > low)
    gappy = histories.copy()
    gappy[:, -7:] = np.nan  # a week with nothing
    gappy_risk = bundle.risk(gappy)
    gappy_low, gappy_high = bundle.risk_interval(gappy, gappy_risk)
    assert np.all((gappy_low <= gappy_risk) & (gappy_risk <= gappy_high))
    wider = (gappy_high - gappy_low) > (high - low)
    assert wider.mean() >= 0.9, wider.mean()


def test_conformal_fit_reaches_its_coverage_on_fresh_draws():
    rng = np.random.default_rng(0)

    def draw(n):
        spread = rng.uniform(0, 1, n)
        truth = rng.uniform(-3, 1, n)
        risk = 1 / (1 + np.exp(-(truth + rng.normal(0, 0.2 + spread))))  # errors grow with the spread
        return risk, spread, 1 / (1 + np.exp(-truth))

    interval = Interval.fit(*draw(2000))
    risk, spread, truth = draw(20000)
    low, high = interval.bounds(risk, spread)
    assert abs(((truth >= low) & (truth <= high)).mean() - 0.8) < 0.03
    assert Interval.fit(*draw(10)).fitted_on == "none"  # too few windows: the unfitted default, said so


def test_imputations_fill_only_missing_window_days_from_the_persons_own_values():
    history = np.full((2, 10, 2), np.nan, np.float32)
    history[0, :, 0] = np.arange(10)
    history[0, 8:, 0] = np.nan
    history[1, :5, 1] = 100 + np.arange(5)
    filled, gappy = imputations(history, lookback=4, draws=5)
    assert gappy.tolist() == [True, True]
    assert np.isin(filled[:, 0, 8:, 0], np.arange(8)).all()  # drawn from participant 0's own steps
    assert np.isnan(filled[:, 0, :, 1]).all()  # never seen: stays missing
    assert np.isin(filled[:, 1, 6:, 1], 100 + np.arange(5)).all() and np.isnan(filled[:, 1, 5, 1]).all()
    np.testing.assert_array_equal(filled[:, 0, :8, 0], np.broadcast_to(np.arange(8), (5, 8)))


# --- drivers ---------------------------------------------------------------------------------------------------------


def _last_days(features: pd.DataFrame, pid: str, bundle) -> pd.DataFrame:
    return features[features["participant_id"] == pid].sort_values("date").tail(bundle.input_days).copy()


def _scored(bundle, frame: pd.DataFrame, language: str = "en") -> dict:
    (result,), _, _ = score(bundle, histories_from_frame(frame, bundle.features, bundle.input_days), language=language)
    assert result["status"] == "scored", result
    return result


def test_a_week_of_three_hour_nights_makes_sleep_a_top_driver_that_raises_risk(run, features):
    bundle, hits = run.bundle, 0
    for pid in ["P00", "P01", "P02", "P03"]:
        person = _last_days(features, pid, bundle)
        person.loc[person["date"] > person["date"].max() - pd.Timedelta(days=7), "sleep_duration_h"] = 3.0
        drivers = _scored(bundle, person)["drivers"]
        top = {d["signal"]: d for d in drivers[:3]}
        sleep = top.get("sleep_duration_h")
        hits += sleep is not None and sleep["direction"] == "raises risk" and sleep["kind"] == "change"
        if sleep:
            assert sleep["recent_mean"] == 3.0 and sleep["text"].startswith("Sleep was ")
    assert hits >= 3, hits


def test_steps_missing_for_a_week_gives_a_missing_data_driver(run, features):
    bundle = run.bundle
    for pid in ["P00", "P01"]:
        person = _last_days(features, pid, bundle)
        person.loc[person["date"] > person["date"].max() - pd.Timedelta(days=7), "steps"] = np.nan
        steps = [d for d in _scored(bundle, person)["drivers"] if d["signal"] == "steps"]
        assert steps and steps[0]["kind"] == MISSING_DATA and steps[0]["recent_days_missing"] == 7, steps
        assert steps[0]["text"] == "Step count: no data arrived on 7 of the last 7 days."


def test_contributions_add_up_to_the_change_from_the_persons_baseline(run, small_cohort):
    bundle = run.bundle
    histories = _complete_windows(small_cohort, bundle, 80)
    made = bundle.attributions(histories)
    gap = np.abs(made.contributions.sum(axis=1) - made.logit_change)
    assert np.all(gap <= 0.05 * np.abs(made.logit_change) + 0.02), gap.max()


def test_the_baseline_shown_is_the_one_the_model_used(run, features):
    bundle = run.bundle
    person = _last_days(features, "P04", bundle)
    result = _scored(bundle, person)
    days = person["date"] <= person["date"].max() - pd.Timedelta(days=bundle.preprocessor.recent_days)
    for d in result["drivers"]:
        expected = person.loc[days, d["signal"]].mean()
        assert d["baseline_mean"] == pytest.approx(expected, abs=1e-3)


# --- languages -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", [lang for lang in messages.LANGUAGES if lang != messages.DEFAULT])
def test_every_message_is_in_every_catalog_with_the_same_placeholders(language):
    catalog = messages.catalog(language)
    for msgid in messages.msgids():
        assert catalog.get(msgid), f"{language}: no translation of {msgid!r}"
        assert messages.placeholders(catalog[msgid]) == messages.placeholders(msgid), (language, msgid)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("es", "es"),
        ("pt-BR,pt;q=0.9,en;q=0.5", "pt"),
        ("fr;q=0.4, de;q=0.8", "de"),
        ("ja, hi;q=0.3", "hi"),
        ("ja, zh", "en"),
        ("*", "en"),
        ("en;q=0, *;q=0.5", "es"),
        ("it;q=0, es;q=0.2", "es"),
        ("de;q=oops, fr;q=0.1", "fr"),
        ("DE-at", "de"),
    ],
)
def test_accept_language_is_negotiated_with_q_values(header, expected):
    assert messages.negotiate(header) == expected


def test_drivers_speak_the_negotiated_language_with_its_numbers(run, features):
    bundle = run.bundle
    person = _last_days(features, "P00", bundle)
    person.loc[person["date"] > person["date"].max() - pd.Timedelta(days=7), "sleep_duration_h"] = 3.5
    english = _scored(bundle, person)["drivers"]
    german = _scored(bundle, person, "de")["drivers"]
    assert [d["signal"] for d in english] == [d["signal"] for d in german]
    sleep = next(d for d in german if d["signal"] == "sleep_duration_h")
    assert sleep["text"].startswith("Schlaf: ") and "3,5" in sleep["text"], sleep["text"]
