"""Model inputs from raw windows: scaled level, deviation from the person's baseline (raw and in own SDs), mask, recency,
and whether the signal was sent at all."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

# `present`: the signal arrived on some day of the input history. A signal a partner never sends is absent, which the
# model must tell from one that stopped arriving (present, but not observed on the recent days).
CHANNELS = ("level", "deviation", "personal_z", "observed", "since_seen", "present")


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

    def usual_gaps(self, history: np.ndarray) -> np.ndarray:
        """[B, F] how many of the lookback's days each signal is usually missing: its missing share over the baseline
        period (counted from the person's first day with any signal), times the lookback."""
        period = self.baseline_period(history)
        started = np.maximum.accumulate((~np.isnan(history)).any(axis=2), axis=1)[:, -period.shape[1] - self.recent_days :]
        started = started[:, : period.shape[1], None]
        days = started.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = (np.isnan(period) & started).sum(axis=1) / days
        return np.rint(np.where(days > 0, share, 0.0) * self.lookback).astype(np.int64)

    def only(self, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """`transform`'s inputs as if the signals not in `keep` ([F] or [B, F] bool) had never been sent: each signal's
        channels depend on its own days only, so this equals transforming the history with those signals blanked."""
        n = len(self.features)
        dropped = ~np.broadcast_to(np.asarray(keep, bool), (x.shape[0], n))
        out = x.copy()
        never = (np.arange(x.shape[1], dtype=np.float32) + 1) / x.shape[1]  # days since seen of a signal never seen
        for i, name in enumerate(CHANNELS):
            part = out[..., i * n : (i + 1) * n]  # a view into `out`
            value = (
                np.broadcast_to(never[None, :, None], part.shape) if name == "since_seen" else np.zeros(part.shape, np.float32)
            )
            np.copyto(part, value, where=np.broadcast_to(dropped[:, None, :], part.shape))
        return out

    def usual(self, x: np.ndarray, baseline: np.ndarray, usual_gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """From `transform`'s inputs, its baseline and `usual_gaps`: (the person as usual, the window with only its
        unusual gaps filled). As usual: every window day of each signal sent at the person's baseline level
        (deviation 0), except that as many days stay missing as the person usually misses (the window's earliest
        gaps); a signal with no baseline keeps its days. Filled: the window as it is, the gaps beyond the usual count
        at the baseline level. Drivers measured against the first explain the change from the person's usual days; the
        second splits off what the unusual gaps did. The baseline itself is the window's own, so nothing is
        recomputed."""
        n = len(self.features)
        part = {name: x[..., i * n : (i + 1) * n] for i, name in enumerate(CHANNELS)}
        known = np.isfinite(baseline)[:, None, :] & (part["present"] == 1)
        missing = part["observed"] == 0
        kept_gap = missing & (np.cumsum(missing, axis=1) <= usual_gaps[:, None, :])
        level = np.broadcast_to(np.clip(np.nan_to_num(baseline, nan=0.0), -10, 10)[:, None, :], missing.shape)
        return self._at_baseline(x, known & ~kept_gap, level), self._at_baseline(x, known & missing & ~kept_gap, level)

    def _at_baseline(self, x: np.ndarray, cells: np.ndarray, level: np.ndarray) -> np.ndarray:
        """A copy of inputs whose `cells` ([B, L, F]) hold the person's baseline level, observed."""
        n = len(self.features)
        out = x.copy()
        part = {name: out[..., i * n : (i + 1) * n] for i, name in enumerate(CHANNELS)}  # views into `out`
        part["level"][cells] = level[cells]
        part["deviation"][cells] = 0.0
        part["personal_z"][cells] = 0.0
        part["observed"][cells] = 1.0
        part["since_seen"][:] = _since_seen(part["observed"] > 0)
        return out

    def transform(self, history: np.ndarray) -> np.ndarray:
        """[B, D, F] raw days ending on each window's last day (D >= lookback; the last `lookback` are the window) ->
        [B, lookback, 6F] float32 inputs with no NaN (CHANNELS, each F wide). The personal baseline is the person's
        days before the recent ones, over `baseline_days` of history (or the window's earlier days for bundles without
        one)."""
        return self.transform_with_baseline(history)[0]

    def transform_with_baseline(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`transform`, and each person's [B, F] scaled baseline mean and SD (NaN where the signal has no baseline)."""
        center = np.asarray(self.center, np.float32)
        scale = np.asarray(self.scale, np.float32)
        b, _, f = history.shape
        values = history[:, -self.lookback :]
        observed = ~np.isnan(values)
        # One array, each channel written in place: this runs for every training batch and every scoring pass.
        out = np.empty((b, values.shape[1], len(CHANNELS) * f), np.float32)
        level, deviation, personal_z, seen, since_seen, present = (out[..., i * f : (i + 1) * f] for i in range(len(CHANNELS)))
        # Scaled values are clipped so an extreme but legal reading cannot dominate (or overflow) the network.
        np.clip((values - center) / scale, -10, 10, out=level)
        if self.baseline_days:  # statistics of the raw days, then scaled: one pass over the long history
            mean, spread = _mean_and_sd((history[:, -self.baseline_days : -self.recent_days] - center) / scale)
            baseline = np.clip(mean, -10, 10)
        else:
            earlier = level[:, : -self.recent_days] if values.shape[1] > self.recent_days else level
            baseline, spread = _mean_and_sd(earlier)
        # A signal never seen in the earlier days has a NaN baseline: its deviation is then 0.
        np.subtract(level, baseline, out=deviation)
        np.nan_to_num(deviation, copy=False, nan=0.0)
        # The same change means more for a person whose signal is usually steady.
        np.divide(deviation, np.maximum(np.nan_to_num(spread, nan=1.0), 0.1), out=personal_z)
        np.clip(personal_z, -5, 5, out=personal_z)
        np.nan_to_num(level, copy=False, nan=0.0)
        seen[:] = observed
        since_seen[:] = _since_seen(observed)
        present[:] = (~np.isnan(history)).any(axis=1, keepdims=True)
        return out, baseline[:, 0], spread[:, 0]

    def missing_filled(self, x: np.ndarray, baseline: np.ndarray, spread: np.ndarray, sign: float) -> np.ndarray:
        """Inputs whose missing window days (of signals that were sent) hold the person's baseline plus `sign` of their
        baseline SDs, as if observed: how the score would read had those days been a little worse or better than
        usual. Works on `transform`'s output (the baseline is kept), so it costs no second pass over the history."""
        n = len(self.features)
        out = x.copy()
        parts = {name: out[..., i * n : (i + 1) * n] for i, name in enumerate(CHANNELS)}  # views into `out`
        gap = (parts["observed"] == 0) & (parts["present"] == 1)
        sd = np.nan_to_num(spread, nan=1.0)[:, None, :]
        moved = np.broadcast_to(sign * sd, gap.shape)
        parts["deviation"][gap] = moved[gap]
        parts["personal_z"][gap] = np.broadcast_to(np.clip(sign * sd / np.maximum(sd, 0.1), -5, 5), gap.shape)[gap]
        parts["level"][gap] = np.broadcast_to(
            np.clip(np.nan_to_num(baseline, nan=0.0)[:, None, :] + sign * sd, -10, 10), gap.shape
        )[gap]
        parts["observed"][gap] = 1.0
        parts["since_seen"][parts["present"] == 1] = 0.0  # every day of a sent signal now holds a value
        return out

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


def _since_seen(observed: np.ndarray) -> np.ndarray:
    """[B, L, F] days since each signal was last observed on or before each day, over the lookback (never: day + 1)."""
    days = observed.shape[1]
    steps = np.arange(days, dtype=np.float32)[None, :, None]
    last_seen = np.maximum.accumulate(np.where(observed, steps, -1.0), axis=1)
    return (np.where(last_seen < 0, steps + 1, steps - last_seen) / days).astype(np.float32)


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
