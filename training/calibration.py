"""Calibration of raw logits on held-out participants, and risk bands set for an alert budget and stated as observed rates.

The default map is a monotone spline on the logit scale: log-odds piecewise linear in the network's logit, with knots at
quantiles of the calibration logits and a non-negative slope on every segment, so it is increasing by construction.
The behavioural constraints and the per-signal structure leave most windows in a narrow band of logits and a long
upper tail: one Platt line fitted to the bulk under-states the tail, where the alerts are. A few segments follow it
without the steps (and the overfitting on small cohorts) of isotonic regression."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from earlywarn.training.choices import Method

BANDS = ("low", "elevated", "high")
KNOT_QUANTILES = (0.5, 0.75, 0.85, 0.9, 0.95, 0.98)  # the bulk, the shoulder, and the tail where the bands are
SMOOTHING = 1.0  # penalty on the squared slope change between neighbouring segments (keeps small-cohort maps smooth)
MIN_KNOT_EVENTS = 10  # events above a knot for it to be kept: fewer cannot bend the map without overfitting it


def _segments(z: np.ndarray, knots: tuple[float, ...]) -> np.ndarray:
    """[N, K+1] how far each logit runs along each segment (the first segment extends left, the last right)."""
    z = np.asarray(z, np.float64)
    if not knots:
        return z[:, None]
    cols = [np.minimum(z - knots[0], 0.0)]
    cols += [np.clip(z - lo, 0.0, hi - lo) for lo, hi in itertools.pairwise(knots)]
    cols.append(np.maximum(z - knots[-1], 0.0))
    return np.stack(cols, axis=1)


def _fit_spline(logits: np.ndarray, labels: np.ndarray, knots: tuple[float, ...]) -> tuple[float, tuple[float, ...]]:
    """Maximum likelihood intercept and non-negative segment slopes, with a smoothness penalty."""
    x, y = _segments(logits, knots), labels.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = theta[0] + x @ theta[1:]
        residual = 1.0 / (1.0 + np.exp(-eta)) - y
        bend = np.diff(theta[1:])
        grad = np.r_[residual.sum(), x.T @ residual]
        grad[1:-1] -= 2 * SMOOTHING * bend
        grad[2:] += 2 * SMOOTHING * bend
        return float(np.sum(np.logaddexp(0, eta) - y * eta) + SMOOTHING * np.sum(bend**2)), grad

    rate = float(np.clip(y.mean(), 1e-4, 1 - 1e-4))
    start = np.r_[np.log(rate / (1 - rate)), np.full(x.shape[1], 0.5)]
    bounds = [(None, None)] + [(0.0, None)] * x.shape[1]
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    return float(fitted[0]), tuple(float(s) for s in fitted[1:])


def _knots(logits: np.ndarray, labels: np.ndarray) -> tuple[float, ...]:
    """Knots at KNOT_QUANTILES of the logits, keeping only those with enough events above them and distinct values."""
    kept: list[float] = []
    for q in KNOT_QUANTILES:
        k = float(np.quantile(logits, q))
        if labels[logits > k].sum() >= MIN_KNOT_EVENTS and (not kept or k > kept[-1] + 1e-6):
            kept.append(k)
    return tuple(kept)


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from the network's logit to a probability, as plain numbers: a spline (intercept and segment
    slopes at knots), Platt scaling (one segment) or isotonic regression."""

    method: Method
    slope: float = 1.0  # platt
    intercept: float = 0.0  # platt and spline
    iso_x: tuple[float, ...] = ()
    iso_y: tuple[float, ...] = ()
    knots: tuple[float, ...] = ()  # spline
    slopes: tuple[float, ...] = ()  # spline: one per segment, all >= 0

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, method: Method = "spline") -> Calibrator:
        logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise ValueError("calibration split holds only one class; use more participants or a longer horizon")
        if method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(logits, labels)
            return cls("isotonic", iso_x=tuple(map(float, iso.X_thresholds_)), iso_y=tuple(map(float, iso.y_thresholds_)))
        knots = _knots(logits, labels) if method == "spline" else ()
        intercept, slopes = _fit_spline(logits, labels, knots)
        if method == "platt":  # the one-segment spline: a slope and a shift, the slope never negative
            return cls("platt", slope=slopes[0], intercept=intercept)
        return cls("spline", intercept=intercept, knots=knots, slopes=slopes)

    def log_odds(self, logits: np.ndarray) -> np.ndarray:
        """The calibrated log-odds of each logit (what a shown risk is the sigmoid of)."""
        logits = np.asarray(logits, np.float64)
        if self.method == "platt":
            return self.slope * logits + self.intercept
        if self.method == "spline":
            return self.intercept + _segments(logits, self.knots) @ np.asarray(self.slopes)
        p = np.clip(np.interp(logits, self.iso_x, self.iso_y), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def local_slope(self, logits: np.ndarray) -> np.ndarray:
        """d log-odds / d logit at each logit: how much an uncertainty on the logit scale is worth in log-odds."""
        logits = np.asarray(logits, np.float64)
        if self.method == "platt":
            return np.full(len(logits), self.slope)
        if self.method == "spline":
            segment = np.searchsorted(np.asarray(self.knots), logits)
            return np.asarray(self.slopes)[segment]
        step = 0.05
        return (self.log_odds(logits + step) - self.log_odds(logits - step)) / (2 * step)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.log_odds(logits), -50, 50)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        return cls(
            d["method"],
            d["slope"],
            d["intercept"],
            tuple(d["iso_x"]),
            tuple(d["iso_y"]),
            tuple(d.get("knots", ())),
            tuple(d.get("slopes", ())),
        )


@dataclass(frozen=True)
class Bands:
    """Risk thresholds: `high` flags the top `alert_budget` share of tuning windows, `elevated` the next tier. Each band
    carries the event rate observed in it on those windows (`observed`, with a participant-bootstrap 95% interval and
    the windows behind it), which is what a band means: "about 4 in 10 people in this band had an event"."""

    elevated: float
    high: float
    alert_budget: float
    elevated_budget: float
    observed: dict[str, dict[str, float]] | None = None  # band -> rate, ci_low, ci_high, windows, events

    @classmethod
    def fit(
        cls,
        risk: np.ndarray,
        alert_budget: float = 0.05,
        elevated_budget: float = 0.15,
        labels: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        seed: int = 0,
    ) -> Bands:
        if not 0 < alert_budget < elevated_budget < 1:
            raise ValueError("need 0 < alert_budget < elevated_budget < 1")
        high = float(np.quantile(risk, 1 - alert_budget))
        elevated = float(np.quantile(risk, 1 - elevated_budget))
        # Ties in a compressed risk scale could make the two thresholds (nearly) equal, an empty elevated band: keep
        # them apart by at least a tenth of the high threshold.
        elevated = float(min(elevated, high * 0.9))
        bands = cls(elevated, high, alert_budget, elevated_budget)
        if labels is None:
            return bands
        return cls(elevated, high, alert_budget, elevated_budget, band_rates(bands.assign(risk), labels, groups, seed))

    def assign(self, risk: np.ndarray) -> np.ndarray:
        """Band index per risk: 0 low, 1 elevated, 2 high."""
        return (risk >= self.elevated).astype(np.int8) + (risk >= self.high).astype(np.int8)

    def rate(self, band: str) -> float | None:
        """The event rate observed in a band on the tuning windows (None for bands fitted without labels)."""
        return None if not self.observed or band not in self.observed else self.observed[band]["rate"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Bands:
        return cls(d["elevated"], d["high"], d["alert_budget"], d["elevated_budget"], d.get("observed"))


def band_rates(
    band: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None, seed: int = 0, reps: int = 200
) -> dict[str, dict[str, float]]:
    """Per band: the observed event rate, its participant-bootstrap 95% interval (windows when no groups), windows, events."""
    labels = np.asarray(labels, np.float64)
    codes = np.unique(groups, return_inverse=True)[1] if groups is not None else np.arange(len(labels))
    rng = np.random.default_rng(seed)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    weights = [np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[codes] for _ in range(reps)]
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(BANDS):
        inside = band == i
        if not inside.any():
            continue
        draws = [float((w[inside] * labels[inside]).sum() / w[inside].sum()) for w in weights if w[inside].sum() > 0]
        out[name] = {
            "rate": float(labels[inside].mean()),
            "ci_low": float(np.percentile(draws, 2.5)) if draws else float("nan"),
            "ci_high": float(np.percentile(draws, 97.5)) if draws else float("nan"),
            "windows": float(inside.sum()),
            "events": float(labels[inside].sum()),
        }
    return out


MIN_PROFILE_EVENTS = 20  # events a source profile needs for its own map (fewer: the map of every source is used)


def profile_keys(present: np.ndarray, features: list[str]) -> np.ndarray:
    """[B] each window's source profile: the contract sources it carries any signal from, joined ("phone+wearable")."""
    from earlywarn.data.contract import SOURCES, source

    sources = [source(f) for f in features]
    names = [s for s in SOURCES if s in sources]
    has = np.stack([present[:, [j for j, s in enumerate(sources) if s == name]].any(axis=1) for name in names], axis=1)
    return np.array(["+".join(n for n, h in zip(names, row, strict=True) if h) for row in has.tolist()], dtype=object)


@dataclass(frozen=True)
class Calibration:
    """One monotone map per source profile. A partner that sends a wearable and no phone gets a map fitted on the
    calibration windows with the phone and check-in signals taken away, so its risks mean what they say too."""

    maps: dict[str, Calibrator]
    full: str  # the profile with every source the model knows; its map also serves profiles too rare to fit

    @classmethod
    def identity(cls, features: list[str]) -> Calibration:
        """The uncalibrated sigmoid for every profile (before calibration is fitted)."""
        full = str(profile_keys(np.ones((1, len(features)), bool), features)[0])
        return cls({full: Calibrator("platt")}, full)

    def calibrator(self, key: str) -> Calibrator:
        return self.maps.get(key, self.maps[self.full])

    def _apply(self, name: str, logits: np.ndarray, keys: np.ndarray) -> np.ndarray:
        out = np.empty(len(logits))
        for key in np.unique(keys):
            rows = keys == key
            out[rows] = getattr(self.calibrator(str(key)), name)(np.asarray(logits)[rows])
        return out

    def log_odds(self, logits: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return self._apply("log_odds", logits, keys)

    def local_slope(self, logits: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return self._apply("local_slope", logits, keys)

    def __call__(self, logits: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.log_odds(logits, keys), -50, 50)))

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, keys: np.ndarray, full: str, method: Method = "spline") -> Calibration:
        """A map for every profile among `keys` with at least MIN_PROFILE_EVENTS events (the full profile always)."""
        maps = {full: Calibrator.fit(logits[keys == full], labels[keys == full], method)}
        for key in set(np.unique(keys)) - {full}:
            rows = keys == key
            if labels[rows].sum() >= MIN_PROFILE_EVENTS and (labels[rows] == 0).sum() >= MIN_PROFILE_EVENTS:
                maps[str(key)] = Calibrator.fit(logits[rows], labels[rows], method)
        return cls(maps, full)

    def to_dict(self) -> dict:
        return {"full": self.full, "maps": {k: m.to_dict() for k, m in self.maps.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls({k: Calibrator.from_dict(m) for k, m in d["maps"].items()}, d["full"])
