"""Calibration of raw logits on held-out participants, and risk-band thresholds for an alert budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from training.choices import Method

BANDS = ("low", "elevated", "high")


@dataclass(frozen=True)
class Calibrator:
    """Platt scaling (a temperature and a shift on the logit) or isotonic regression, as plain numbers."""

    method: Method
    slope: float = 1.0
    intercept: float = 0.0
    iso_x: tuple[float, ...] = ()
    iso_y: tuple[float, ...] = ()

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, method: Method = "platt") -> Calibrator:
        if len(np.unique(labels)) < 2:
            raise ValueError("calibration split holds only one class; use more participants or a longer horizon")
        if method == "platt":
            lr = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), labels)
            return cls("platt", float(lr.coef_[0, 0]), float(lr.intercept_[0]))
        iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(logits, labels)
        return cls("isotonic", iso_x=tuple(map(float, iso.X_thresholds_)), iso_y=tuple(map(float, iso.y_thresholds_)))

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, np.float64)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-np.clip(self.slope * logits + self.intercept, -50, 50)))
        return np.interp(logits, self.iso_x, self.iso_y)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        return cls(d["method"], d["slope"], d["intercept"], tuple(d["iso_x"]), tuple(d["iso_y"]))


@dataclass(frozen=True)
class Bands:
    """Risk thresholds: `high` flags the top `alert_budget` share of validation windows, `elevated` the next tier."""

    elevated: float
    high: float
    alert_budget: float
    elevated_budget: float

    @classmethod
    def fit(cls, risk: np.ndarray, alert_budget: float = 0.05, elevated_budget: float = 0.15) -> Bands:
        if not 0 < alert_budget < elevated_budget < 1:
            raise ValueError("need 0 < alert_budget < elevated_budget < 1")
        high = float(np.quantile(risk, 1 - alert_budget))
        elevated = float(min(np.quantile(risk, 1 - elevated_budget), high))
        return cls(elevated, high, alert_budget, elevated_budget)

    def assign(self, risk: np.ndarray) -> np.ndarray:
        """Band index per risk: 0 low, 1 elevated, 2 high."""
        return (risk >= self.elevated).astype(np.int8) + (risk >= self.high).astype(np.int8)

    def to_dict(self) -> dict:
        return asdict(self)
