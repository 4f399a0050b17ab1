"""The dense per-participant day grid windows are cut from: one row per participant-day, padded before the first day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT, feature_columns


@dataclass
class Panel:
    """A dense daily grid: each participant's days from first to last, preceded by lookback-1 empty padding days."""

    participants: np.ndarray  # [P] participant ids
    offsets: np.ndarray  # [P+1] first row of each participant (padding included)
    first_day: np.ndarray  # [P] day number (days since 1970-01-01) of each participant's first real row
    values: np.ndarray  # [rows, F] float32, NaN where not observed
    features: list[str]
    pad: int

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    def row_participant(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.participants)), np.diff(self.offsets))

    def row_day(self) -> np.ndarray:
        """Day number of every row (padding rows get the days before the first real one)."""
        owner = self.row_participant()
        return self.first_day[owner] - self.pad + (np.arange(self.n_rows) - self.offsets[owner])

    def block(self, lo: int, hi: int) -> Panel:
        """Participants lo..hi-1 as a panel of their own: a view, no grid rows are copied."""
        start = self.offsets[lo]
        offsets, values = self.offsets[lo : hi + 1] - start, self.values[start : self.offsets[hi]]
        return Panel(self.participants[lo:hi], offsets, self.first_day[lo:hi], values, self.features, self.pad)

    def history(self, end_row: np.ndarray, days: int) -> np.ndarray:
        """[B, days, F] values of the `days` grid days ending at each row, NaN before the participant's first day."""
        rows = end_row[:, None] - np.arange(days - 1, -1, -1)[None, :]
        owner = np.searchsorted(self.offsets, end_row, side="right") - 1
        before = rows < self.offsets[owner][:, None]
        out = self.values[np.maximum(rows, 0)]
        out[before] = np.nan
        return out

    def rows_for(self, participant_idx: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Row of each (participant, day), or -1 where the day is outside that participant's grid."""
        row = self.offsets[participant_idx] + self.pad + (day - self.first_day[participant_idx])
        inside = (row >= self.offsets[participant_idx] + self.pad) & (row < self.offsets[participant_idx + 1])
        return np.where(inside, row, -1)


def day_number(dates: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as int64."""
    return np.asarray(pd.to_datetime(dates), dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def build_panel(features: pd.DataFrame, feature_names: list[str] | None = None, pad: int = 27) -> Panel:
    """Scatter a validated long table onto a dense day grid (missing days become NaN rows)."""
    names = feature_names if feature_names is not None else feature_columns(list(features.columns))
    codes, participants = pd.factorize(features[PARTICIPANT], sort=True)
    days = day_number(features[DATE])
    first = np.full(len(participants), np.iinfo(np.int64).max)
    last = np.full(len(participants), np.iinfo(np.int64).min)
    np.minimum.at(first, codes, days)
    np.maximum.at(last, codes, days)
    lengths = last - first + 1 + pad
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.full((int(offsets[-1]), len(names)), np.nan, np.float32)
    rows = offsets[codes] + pad + (days - first[codes])
    for j, name in enumerate(names):
        col = features[name].to_numpy(np.float32, na_value=np.nan) if name in features.columns else np.nan
        values[rows, j] = col
    return Panel(np.asarray(participants, dtype=object), offsets, first, values, list(names), pad)
