"""The calibration map: increasing by construction, right in the tail where the bands are, one per source profile."""

from __future__ import annotations

import numpy as np
import pytest

from earlywarn.training.calibration import Bands, Calibration, Calibrator, profile_keys


def _draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits with a narrow bulk and a long upper tail, and outcomes whose true log-odds bend upwards in the tail (as
    the network's logits do against the synthetic cohort's outcomes)."""
    rng = np.random.default_rng(seed)
    z = np.where(rng.random(n) < 0.9, rng.normal(-3.5, 0.4, n), rng.normal(-1.5, 1.0, n))
    true = -3.2 + 0.8 * (z + 3.5) + 1.6 * np.maximum(z + 2.0, 0)
    p = 1 / (1 + np.exp(-true))
    return z, (rng.random(n) < p).astype(int), p


def test_the_spline_is_calibrated_in_the_top_band_where_platt_understates_it():
    z, y, _ = _draw(40_000, 0)
    z_new, _, p_new = _draw(200_000, 1)
    top = z_new >= np.quantile(z_new, 0.95)
    gaps = {}
    for method in ("platt", "spline"):
        risk = Calibrator.fit(z, y, method)(z_new)  # type: ignore[arg-type]
        gaps[method] = risk[top].mean() - p_new[top].mean()
    assert abs(gaps["spline"]) < 0.02 and gaps["platt"] < -0.03, gaps


def test_the_map_is_increasing_by_construction_even_on_hostile_data():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1, 5000)
    y = (rng.random(5000) < np.where(z > 1, 0.05, 0.3)).astype(int)  # outcomes that fall as the logit rises
    grid = np.linspace(-6, 6, 1001)
    for method in ("spline", "platt", "isotonic"):
        calibrator = Calibrator.fit(z, y, method)  # type: ignore[arg-type]
        assert np.all(np.diff(calibrator.log_odds(grid)) >= -1e-12), method
        if method != "isotonic":
            assert np.all(calibrator.local_slope(grid) >= 0), method
    assert Calibrator.fit(z, y, "platt").slope >= 0  # never a negative slope that ranks people backwards


def test_a_map_round_trips_through_the_bundle_format():
    z, y, _ = _draw(5000, 3)
    calibrator = Calibrator.fit(z, y, "spline")
    again = Calibrator.from_dict(calibrator.to_dict())
    np.testing.assert_array_equal(calibrator(z), again(z))


def test_each_source_profile_gets_its_own_map_and_rare_ones_the_full_one():
    features = ["steps", "sleep_duration_h", "screen_time_min", "mood_ema"]
    present = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], bool)
    keys = profile_keys(present, features)
    assert keys.tolist() == ["wearable+phone+check_in", "wearable", "phone", "check_in"]
    z, y, _ = _draw(6000, 4)
    pooled_keys = np.array(["wearable+phone+check_in"] * 3000 + ["wearable"] * 2990 + ["phone"] * 10)
    calibration = Calibration.fit(z, y, pooled_keys, "wearable+phone+check_in")
    assert set(calibration.maps) == {"wearable+phone+check_in", "wearable"}  # "phone" has too few events for its own
    assert calibration.calibrator("phone") is calibration.maps["wearable+phone+check_in"]
    again = Calibration.from_dict(calibration.to_dict())
    np.testing.assert_array_equal(again(z, pooled_keys), calibration(z, pooled_keys))


def test_bands_are_distinct_and_stated_as_observed_rates():
    risk = np.r_[np.full(900, 0.05), np.full(100, 0.0501)]  # a compressed scale: quantiles nearly tie
    labels = np.r_[np.zeros(880), np.ones(20), np.zeros(60), np.ones(40)].astype(int)
    bands = Bands.fit(risk, 0.05, 0.15, labels, np.repeat(np.arange(100), 10))
    assert bands.elevated <= 0.9 * bands.high
    assert bands.rate("high") == pytest.approx(0.4) and bands.observed is not None
    assert bands.observed["high"]["ci_low"] <= 0.4 <= bands.observed["high"]["ci_high"]
