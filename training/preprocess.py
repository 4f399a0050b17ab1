"""Model inputs from raw windows: scaled level, deviation from the person's baseline (raw and in own SDs), mask, recency."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

CHANNELS = ("level", "deviation", "personal_z", "observed", "since_seen")


@dataclass(frozen=True)
class Preprocessor:
    """Per-feature centre and scale fitted on the training split only; serving applies the very same numbers."""

    features: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    lookback: int
    recent_days: int = 7
    baseline_days: int = 0  # 0: the baseline is the window's own earlier days (bundles from before the long baseline)

    @classmethod
    def fit(
        cls, rows: np.ndarray, features: list[str], lookback: int, recent_days: int = 7, baseline_days: int = 0
    ) -> Preprocessor:
        """Fit on [N, F] daily rows of training participants (NaN = missing)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            center = np.nanmedian(rows, axis=0)
            q75, q25 = np.nanpercentile(rows, [75, 25], axis=0)
            std = np.nanstd(rows, axis=0)
        scale = np.where((q75 - q25) > 0, (q75 - q25) / 1.349, std)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        center = np.where(np.isfinite(center), center, 0.0)
        return cls(tuple(features), tuple(map(float, center)), tuple(map(float, scale)), lookback, recent_days, baseline_days)

    @property
    def input_days(self) -> int:
        """How many days of a person's history `transform` takes: the window, or the longer baseline period."""
        return max(self.lookback, self.baseline_days)

    @property
    def n_inputs(self) -> int:
        return len(CHANNELS) * len(self.features)

    def baseline_period(self, history: np.ndarray) -> np.ndarray:
        """The raw days the personal baseline is computed from: before the recent days, over `baseline_days` of history
        (or the window's earlier days for bundles without one)."""
        if self.baseline_days:
            return history[:, -self.baseline_days : -self.recent_days]
        values = history[:, -self.lookback :]
        return values[:, : -self.recent_days] if values.shape[1] > self.recent_days else values

    def baseline_means(self, history: np.ndarray) -> np.ndarray:
        """[B, F] each person's baseline mean in raw units (NaN where the signal was never seen): the model's own."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(self.baseline_period(history), axis=1)

    def reference(self, history: np.ndarray) -> np.ndarray:
        """The person as usual: every window day holds their baseline mean of each signal (a signal with no baseline
        keeps its days), so attributions against it explain the change from the person's own baseline."""
        out = history.copy()
        means = self.baseline_means(history)
        window = out[:, -self.lookback :]
        known = np.broadcast_to(np.isfinite(means)[:, None, :], window.shape)
        window[known] = np.broadcast_to(means[:, None, :], window.shape)[known]
        return out

    def transform(self, history: np.ndarray) -> np.ndarray:
        """[B, D, F] raw days ending on each window's last day (D >= lookback; the last `lookback` are the window) ->
        [B, lookback, 5F] float32 inputs with no NaN. The personal baseline is the person's days before the recent
        ones, over `baseline_days` of history (or the window's earlier days for bundles without one)."""
        center = np.asarray(self.center, np.float32)
        scale = np.asarray(self.scale, np.float32)
        values = history[:, -self.lookback :]
        observed = ~np.isnan(values)
        # Scaled values are clipped so an extreme but legal reading cannot dominate (or overflow) the network.
        level = np.clip((values - center) / scale, -10, 10)
        if self.baseline_days:  # statistics of the raw days, then scaled: one pass over the long history
            earlier = (history[:, -self.baseline_days : -self.recent_days] - center) / scale
            mean, spread = _mean_and_sd(earlier)
            baseline = np.clip(mean, -10, 10)
        else:
            earlier = level[:, : -self.recent_days] if values.shape[1] > self.recent_days else level
            baseline, spread = _mean_and_sd(earlier)
        # A signal never seen in the earlier days has a NaN baseline: its deviation is then 0.
        deviation = np.nan_to_num(level - baseline, nan=0.0)
        # The same change means more for a person whose signal is usually steady.
        personal_z = np.clip(np.nan_to_num(deviation / np.maximum(np.nan_to_num(spread, nan=1.0), 0.1)), -5, 5)
        steps = np.arange(values.shape[1], dtype=np.float32)[None, :, None]
        last_seen = np.maximum.accumulate(np.where(observed, steps, -1.0), axis=1)
        since_seen = np.where(last_seen < 0, steps + 1, steps - last_seen) / values.shape[1]
        out = np.concatenate(
            [np.nan_to_num(level, nan=0.0), deviation, personal_z, observed.astype(np.float32), since_seen], axis=2
        )
        return out.astype(np.float32, copy=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessor:
        return cls(
            tuple(d["features"]),
            tuple(d["center"]),
            tuple(d["scale"]),
            int(d["lookback"]),
            int(d["recent_days"]),
            int(d.get("baseline_days", 0)),
        )


def _mean_and_sd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD over axis 1 ignoring NaN ([B, 1, F] each, NaN where nothing was seen), for scaled values. Masked
    sums over a contiguous day axis are several times faster than nanmean/nanstd, and this runs for every batch."""
    days_last = np.ascontiguousarray(x.transpose(0, 2, 1))
    seen = ~np.isnan(days_last)
    n = seen.sum(axis=2, dtype=np.float32)
    filled = np.where(seen, days_last, np.float32(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=2) / n
        sd = np.sqrt(np.maximum(np.einsum("bfd,bfd->bf", filled, filled) / n - mean * mean, 0))
    return mean[:, None, :], sd[:, None, :]
