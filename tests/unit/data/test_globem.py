"""GLOBEM sample import: real data converted into the contract (skips when the sample is absent)."""

from __future__ import annotations

from earlywarn.data.globem import GlobemImportConfig, import_globem, mapping_markdown
from earlywarn.data.validation import load_validated
from earlywarn.data.windows import WindowConfig, build_windows


def test_import_globem_passes_validation_and_gives_labelled_windows(globem_path, tmp_path):
    r = import_globem(GlobemImportConfig(globem_path, tmp_path))
    assert r.n_participants == 40 and r.n_labels == 120
    data = load_validated(r.features_path, r.outcomes_path)
    assert data.mode == "label"
    assert {"steps", "sleep_duration_h", "screen_time_min", "calls_count", "distance_km", "calls_missed"} <= set(
        data.feature_names
    )
    sleep = data.features["sleep_duration_h"].dropna()
    assert 5 < sleep.median() < 9  # minutes were converted to hours
    ws = build_windows(data.features, data.outcomes, WindowConfig(lookback=28, min_observed_days=7))
    assert len(ws) >= 100 and 0 < ws.label.mean() < 1
    assert "`distance_km`" in mapping_markdown()
