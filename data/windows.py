"""Lookback windows over a dense per-participant day grid, with horizon labels, washout and participant splits."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, LABEL, PARTICIPANT
from earlywarn.data.panel import Panel, build_panel, day_number

_KEY = np.int64(1 << 32)  # participant index and day number packed into one sortable key


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry: lookback L days ending on day t, events counted in (t, t+horizon]."""

    lookback: int = 28
    horizon: int = 14
    min_observed_days: int = 14
    washout_days: int = 28
    stride: int = 1
    # The person's own history the model compares the recent days with (causal, ends at t), so a stable personal
    # level is not mistaken for a change. 0: the window's own earlier days (bundles from before issue 14).
    baseline_days: int = 90

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "min_observed_days", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.min_observed_days > self.lookback:
            raise ValueError("min_observed_days cannot exceed lookback")
        if self.washout_days < 0:
            raise ValueError("washout_days cannot be negative")
        if self.baseline_days and self.baseline_days < self.lookback:
            raise ValueError("baseline_days must be 0 (the window's own earlier days) or at least the lookback")


@dataclass
class WindowSet:
    """Windows as (end row, label) pairs over a shared panel; window arrays are sliced only when asked for."""

    panel: Panel
    cfg: WindowConfig
    end_row: np.ndarray  # [W] panel row of each window's last day
    label: np.ndarray  # [W] int8
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.end_row.shape[0])

    @property
    def participant(self) -> np.ndarray:
        """Participant index (into panel.participants) of each window."""
        return np.searchsorted(self.panel.offsets, self.end_row, side="right") - 1

    @property
    def participant_id(self) -> np.ndarray:
        return self.panel.participants[self.participant]

    @property
    def end_day(self) -> np.ndarray:
        p = self.participant
        return self.panel.first_day[p] + (self.end_row - self.panel.offsets[p] - self.panel.pad)

    @property
    def end_date(self) -> np.ndarray:
        return self.end_day.astype("datetime64[D]")

    def rows(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """[B, L] panel rows of the selected windows, oldest day first."""
        ends = self.end_row if idx is None else self.end_row[idx]
        return ends[:, None] - np.arange(self.cfg.lookback - 1, -1, -1)[None, :]

    def values(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """[B, L, F] float32 window values (NaN = missing)."""
        return self.panel.values[self.rows(idx)]

    def history(self, idx: np.ndarray | slice | None = None, days: int | None = None) -> np.ndarray:
        """[B, days, F] each window's own days and the person's history before them (NaN = missing or before
        their first day); `days` defaults to the lookback."""
        ends = self.end_row if idx is None else self.end_row[idx]
        return self.panel.history(ends, days or self.cfg.lookback)

    def subset(self, mask_or_idx: np.ndarray) -> WindowSet:
        return replace(self, end_row=self.end_row[mask_or_idx], label=self.label[mask_or_idx])

    def for_participants(self, ids: set[str] | np.ndarray) -> WindowSet:
        # Through participant codes: an object-array isin sorts strings, which took minutes at 15 M windows.
        wanted = pd.Index(self.panel.participants).get_indexer(np.asarray(list(ids), dtype=object))
        chosen = np.zeros(len(self.panel.participants), bool)
        chosen[wanted[wanted >= 0]] = True
        return self.subset(chosen[self.participant])

    def frame(self) -> pd.DataFrame:
        """One row per window: participant, end date, label."""
        return pd.DataFrame({PARTICIPANT: self.participant_id, DATE: self.end_date, LABEL: self.label})


def _observed_days(panel: Panel, lookback: int) -> np.ndarray:
    """Days with any observed signal in the lookback ending at each row."""
    observed = (~np.isnan(panel.values)).any(axis=1).astype(np.int32)
    cum = np.concatenate([[0], np.cumsum(observed)])
    start = np.maximum(np.arange(panel.n_rows) - lookback + 1, 0)
    return cum[1:] - cum[start]


WINDOW_BLOCK_ROWS = 2_000_000  # grid rows handled at a time: bounds the working arrays, not the result


def build_windows(
    features: pd.DataFrame | Panel,
    outcomes: pd.DataFrame | None,
    cfg: WindowConfig,
    mode: Literal["event", "label"] | None = None,
    feature_names: list[str] | None = None,
    block_rows: int = WINDOW_BLOCK_ROWS,
    care: pd.DataFrame | None = None,
) -> WindowSet:
    """Turn validated features (a table, or a day grid already built from a file) and outcomes into labelled windows,
    counting every window skipped and why. Participants are taken a block at a time, so the working arrays stay the
    size of a block; the result costs 9 bytes per window.

    `care` (participant_id, date) lists days a care team acted on an escalation (event mode). Care can prevent the
    event the model foresaw, so a window whose horizon care may have touched — care on a day in (end - horizon,
    end + horizon] — is censored, whatever followed: its outcome says what care did, not what the signals foretold.
    Windows whose horizon runs past the end of follow-up are censored alike."""
    if isinstance(features, Panel):
        panel = features
        if panel.pad < cfg.lookback - 1:
            raise ValueError(f"the day grid has {panel.pad} padding days; a {cfg.lookback}-day lookback needs {cfg.lookback - 1}")
    else:
        panel = build_panel(features, feature_names, pad=cfg.lookback - 1)
    if mode is None:
        mode = "label" if outcomes is not None and LABEL in outcomes.columns else "event"
    owner = np.empty(0, np.int64)
    skipped: dict[str, int] = {}
    if outcomes is not None:
        owner = pd.Index(panel.participants).get_indexer(outcomes[PARTICIPANT])
        if mode == "label":
            skipped["outside_data"] = int((owner < 0).sum())
    care_owner = pd.Index(panel.participants).get_indexer(care[PARTICIPANT]) if care is not None else np.empty(0, np.int64)
    ends, labels = [], []
    lo, n = 0, len(panel.participants)
    while lo < n:
        hi = max(lo + 1, int(np.searchsorted(panel.offsets, panel.offsets[lo] + block_rows, side="right")) - 1)
        hi = min(hi, n)
        mine = outcomes[(owner >= lo) & (owner < hi)] if outcomes is not None else None
        cared = care[(care_owner >= lo) & (care_owner < hi)] if care is not None else None
        block = _block_windows(panel.block(lo, hi), mine, cfg, mode, cared)
        ends.append(block.end_row + panel.offsets[lo])
        labels.append(block.label)
        for reason, count in block.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
        lo = hi
    end_row = np.concatenate(ends) if ends else np.empty(0, np.int64)
    label = np.concatenate(labels) if labels else np.empty(0, np.int8)
    return WindowSet(panel, cfg, end_row, label, skipped)


def _block_windows(
    panel: Panel,
    outcomes: pd.DataFrame | None,
    cfg: WindowConfig,
    mode: Literal["event", "label"],
    care: pd.DataFrame | None = None,
) -> WindowSet:
    """Windows of one block of participants (outcomes already limited to them), rows counted within the block."""
    owner = panel.row_participant()
    real = (np.arange(panel.n_rows) - panel.offsets[owner]) >= panel.pad
    observed = _observed_days(panel, cfg.lookback)
    panel_codes = pd.Index(panel.participants)  # outcomes arrive limited to this block's participants
    skipped: dict[str, int] = {}

    if mode == "label":
        assert outcomes is not None
        rows = panel.rows_for(panel_codes.get_indexer(outcomes[PARTICIPANT]), day_number(outcomes[DATE]))
        labels = outcomes[LABEL].to_numpy(np.int8)
        outside = rows < 0
        skipped["outside_data"] = int(outside.sum())
        rows, labels = rows[~outside], labels[~outside]
        few = observed[rows] < cfg.min_observed_days
        skipped["too_few_observed_days"] = int(few.sum())
        return WindowSet(panel, cfg, rows[~few].astype(np.int64), labels[~few], skipped)

    candidates = np.flatnonzero(real)
    local = candidates - panel.offsets[owner[candidates]] - panel.pad
    candidates = candidates[local % cfg.stride == 0]
    p = owner[candidates]
    day = panel.first_day[p] + (candidates - panel.offsets[p] - panel.pad)
    last_day = panel.first_day + (np.diff(panel.offsets) - panel.pad - 1)
    label = np.zeros(len(candidates), np.int8)
    keep = np.ones(len(candidates), bool)
    if outcomes is not None and len(outcomes):
        e_p = panel_codes.get_indexer(outcomes[PARTICIPANT]).astype(np.int64)
        e_day = day_number(outcomes[DATE])
        e_key = np.sort(e_p * _KEY + e_day)
        t_key = p * _KEY + day
        nxt = np.searchsorted(e_key, t_key, side="right")
        has_next = nxt < len(e_key)
        nxt_key = e_key[np.minimum(nxt, len(e_key) - 1)]
        label = (has_next & (nxt_key // _KEY == p) & (nxt_key - t_key <= cfg.horizon)).astype(np.int8)
        prev_key = e_key[np.maximum(nxt - 1, 0)]
        in_washout = (nxt > 0) & (prev_key // _KEY == p) & (t_key - prev_key < cfg.washout_days)
        skipped["washout"] = int((in_washout & keep).sum())
        keep &= ~in_washout
        # A follow-up that ends with an event reported after the last day of signals runs to that event.
        last_event = np.full(len(panel.participants), np.iinfo(np.int64).min)
        np.maximum.at(last_event, e_p, e_day)
        ended_by_event = last_event > last_day
        last_day = np.maximum(last_day, last_event)
    else:
        ended_by_event = np.zeros(len(panel.participants), bool)
    if care is not None and len(care):
        c_p = panel_codes.get_indexer(care[PARTICIPANT]).astype(np.int64)
        c_key = np.sort(c_p[c_p >= 0] * _KEY + day_number(care[DATE])[c_p >= 0])
        t_key = p * _KEY + day
        near = np.searchsorted(c_key, t_key + cfg.horizon, "right") - np.searchsorted(c_key, t_key - cfg.horizon, "right")
        # Both classes alike: dropping only the negatives would leave the alert-like windows care acted on with
        # their events and without their quiet outcomes, teaching the next model that such windows are riskier.
        censored = keep & (near > 0)
        skipped["censored_after_care"] = int(censored.sum())
        keep &= ~censored
    # A horizon that runs past the end of follow-up is unknown whatever happened before that end (keeping the windows
    # an event ended early would keep positives and drop negatives); a follow-up ended by an event leaves none unknown.
    incomplete = keep & (day + cfg.horizon > last_day[p]) & ~(ended_by_event[p] & (label == 1))
    skipped["incomplete_follow_up"] = int(incomplete.sum())
    keep &= ~incomplete
    few = keep & (observed[candidates] < cfg.min_observed_days)
    skipped["too_few_observed_days"] = int(few.sum())
    keep &= ~few
    return WindowSet(panel, cfg, candidates[keep].astype(np.int64), label[keep], skipped)
