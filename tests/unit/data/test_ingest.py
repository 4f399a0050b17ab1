"""Chunked import gives the same day grid as reading the whole table, and names rows of the whole file in its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.data.ingest import load_grid
from earlywarn.data.panel import build_panel
from earlywarn.data.validation import ContractError, load_validated
from earlywarn.data.windows import WindowConfig, build_windows


@pytest.mark.parametrize("chunk_rows", [997, 1_000_000])
def test_chunked_grid_equals_whole_table(small_cohort, chunk_rows):
    whole = load_validated(small_cohort.features_path, small_cohort.outcomes_path)
    grid = load_grid(small_cohort.features_path, small_cohort.outcomes_path, pad=27, chunk_rows=chunk_rows)
    panel = build_panel(whole.features, pad=27)
    assert list(grid.panel.participants) == list(panel.participants)
    np.testing.assert_array_equal(grid.panel.offsets, panel.offsets)
    np.testing.assert_array_equal(grid.panel.values, panel.values)  # NaN positions included
    assert grid.panel.features == panel.features
    assert grid.participant_days == len(whole.features)
    assert grid.mode == whole.mode
    pd.testing.assert_frame_equal(grid.outcomes, whole.outcomes)
    assert grid.missing_share == pytest.approx(float(whole.features[panel.features].isna().to_numpy().mean()))
    assert grid.first_date == whole.features["date"].min().date()
    cfg = WindowConfig()
    a, b = build_windows(grid.panel, grid.outcomes, cfg, grid.mode), build_windows(whole.features, whole.outcomes, cfg)
    np.testing.assert_array_equal(a.end_row, b.end_row)
    np.testing.assert_array_equal(a.label, b.label)


def _csv(tmp_path, rows: list[tuple[str, str, str]]):
    path = tmp_path / "f.csv"
    pd.DataFrame(rows, columns=["participant_id", "date", "steps"]).to_csv(path, index=False)
    return path


def test_errors_in_several_chunks_are_reported_together_with_file_rows(tmp_path):
    rows = [("a", f"2025-01-{d:02d}", "5000") for d in range(1, 11)]
    rows[2] = ("a", "2025-01-03", "lots")  # row 3, chunk 1
    rows[8] = ("a", "2025-01-09", "-4")  # row 9, chunk 3
    with pytest.raises(ContractError) as err:
        load_grid(_csv(tmp_path, rows), chunk_rows=4)
    assert err.value.total == 2
    where = {(p.row, p.column) for p in err.value.problems}
    assert where == {(3, "steps"), (9, "steps")}


def test_duplicate_day_in_a_later_chunk_is_caught(tmp_path):
    rows = [("a", f"2025-01-{d:02d}", "5000") for d in range(1, 8)] + [("a", "2025-01-02", "6000")]
    with pytest.raises(ContractError, match=r"row 8.*a on 2025-01-02 appears more than once"):
        load_grid(_csv(tmp_path, rows), chunk_rows=3)


def test_grid_with_too_little_padding_is_refused(small_cohort):
    grid = load_grid(small_cohort.features_path, pad=6)
    with pytest.raises(ValueError, match="28-day lookback needs 27"):
        build_windows(grid.panel, None, WindowConfig(lookback=28))


@pytest.mark.parametrize("mode", ["event", "label"])
def test_windows_built_block_by_block_equal_one_block(small_cohort, mode):
    grid = load_grid(small_cohort.features_path, small_cohort.outcomes_path)
    outcomes = grid.outcomes
    if mode == "label":  # a dated 0/1 label every 10th day per participant, plus one for a stranger
        days = pd.DataFrame({"participant_id": grid.panel.participants}).merge(
            pd.DataFrame({"date": pd.date_range(grid.first_date, grid.last_date, freq="10D")}), how="cross"
        )
        days["label"] = (np.arange(len(days)) % 7 == 0).astype(np.int8)
        outcomes = pd.concat([days, pd.DataFrame({"participant_id": ["nobody"], "date": days["date"][:1], "label": [1]})])
    cfg = WindowConfig()
    whole = build_windows(grid.panel, outcomes, cfg, mode, block_rows=10**9)
    blocks = build_windows(grid.panel, outcomes, cfg, mode, block_rows=1_000)  # several participants, or one, per block
    assert len(whole) > 1000 and whole.label.sum() > 0
    np.testing.assert_array_equal(blocks.end_row, whole.end_row)
    np.testing.assert_array_equal(blocks.label, whole.label)
    assert blocks.skipped == whole.skipped
