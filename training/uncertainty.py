"""How far to trust a risk: an 80% interval from the model's own uncertainty and the person's missing days.

Two parts make each window's standard deviation on the network's logit scale:
- the model: how uncertain the training people leave the score's level and the weight of each signal's term — the
  participant-clustered ("sandwich") covariance of the logistic regression of the outcome on the terms, which is what
  a participant bootstrap of that last combination estimates without refitting it — so a score resting on strong
  moves of signals whose weight is uncertain gets a wider interval;
- the missing days: each signal's term with its missing window days filled at the person's usual level plus and minus
  one of their own baseline SDs; half the difference is that signal's SD. It is zero for a complete window, grows
  with the days missing, and grows most where those days matter to the model (a prodrome under way, a signal the
  model weighs heavily). A signal the partner never sends is not missing data: its absence is in the calibration of
  the partner's source profile, not in this interval.
`Interval.fit` scales that SD into the calibrated log-odds per band and class of days missing; an unchecked interval
carries it there through the calibration map's slope (its secant over a logit either side: delta method).

`Interval.fit` turns that SD into an interval that covers the true risk at the stated rate where one is known (the
synthetic cohort's oracle): split-conformal, with one scale per band and class of days missing (Mondrian), so the
coverage holds in each band and missing-days class and not only on average. Where no true risk is known the scale is
the normal 80% quantile on the calibrated log-odds (delta method) and the interval says its coverage is unchecked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

COVERAGE = 0.8
NORMAL_SCALE = 1.2816  # the two-sided 80% normal quantile: the scale when no true risk is known to fit one on
MISSING_CLASSES = ((0, 0), (1, 6), (7, 10**6))  # days of the lookback without any signal, as docs/clinical.md states
MIN_GROUP = 100  # calibration windows for a band x missing-class cell to get its own scale (else its band's, else all)
CHECKED, UNCHECKED = "checked_against_true_risk", "unchecked"


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def missing_class(days_missing: np.ndarray) -> np.ndarray:
    """0, 1 or 2: no day, 1-6 days or 7+ days of the lookback without any signal."""
    days = np.asarray(days_missing)
    return (days >= MISSING_CLASSES[1][0]).astype(np.int8) + (days >= MISSING_CLASSES[2][0]).astype(np.int8)


def clustered_covariance(phi: np.ndarray, p: np.ndarray, y: np.ndarray, groups: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """[P, P] participant-clustered sandwich covariance H⁻¹ M H⁻¹ of a logistic layer's weights at its fit: H the
    log-loss Hessian (plus a small ridge for stability), M the outer products of each participant's summed score."""
    phi = np.asarray(phi, np.float64)
    hessian = (phi * (p * (1 - p))[:, None]).T @ phi
    hessian += ridge * np.trace(hessian) / len(hessian) * np.eye(len(hessian))
    codes = np.unique(groups, return_inverse=True)[1]
    per_person = np.zeros((codes.max() + 1, phi.shape[1]))
    np.add.at(per_person, codes, (y - p)[:, None] * phi)
    inverse = np.linalg.inv(hessian)
    return inverse @ (per_person.T @ per_person) @ inverse


@dataclass(frozen=True)
class Interval:
    """The interval's fitted numbers. `scales` maps "band:missing_class" (and "band:*", "*" for pooled cells) to the
    conformal quantile of |logit(true risk) - calibrated log-odds| / SD; `fitted_on` says whether coverage was fitted
    against a true risk."""

    coverage: float = COVERAGE
    fitted_on: str = UNCHECKED
    n_fitted: int = 0
    scales: dict[str, float] = field(default_factory=dict)

    def scale(self, band: np.ndarray, days_missing: np.ndarray, slope: np.ndarray) -> np.ndarray:
        """[B] the multiplier of each window's SD (on the network's logit scale): its cell's conformal scale, or where
        unfitted the normal quantile times the calibration map's slope (`slope`)."""
        if self.fitted_on != CHECKED:
            return NORMAL_SCALE * np.asarray(slope, np.float64)
        cls = missing_class(days_missing)
        keys = [f"{b}:{c}" for b, c in zip(band.tolist(), cls.tolist(), strict=True)]
        return np.array([self.scales.get(k, self.scales.get(k.split(":")[0] + ":*", self.scales["*"])) for k in keys])

    def bounds(
        self,
        log_odds: np.ndarray,
        sd: np.ndarray,
        band: np.ndarray,
        days_missing: np.ndarray,
        slope: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """[B] calibrated log-odds and the SD of the network's logit -> ([B] low, [B] high) risks; low <= risk <= high.
        `slope` (the calibration map's, default 1) matters only for an unchecked interval."""
        slope = np.ones(len(sd)) if slope is None else slope
        half = self.scale(band, days_missing, slope) * np.asarray(sd, np.float64)
        return _sigmoid(log_odds - half), _sigmoid(log_odds + half)

    @classmethod
    def fit(
        cls,
        log_odds: np.ndarray,
        sd: np.ndarray,
        band: np.ndarray,
        days_missing: np.ndarray,
        true_risk: np.ndarray,
        coverage: float = COVERAGE,
    ) -> Interval:
        """Split-conformal scales on calibration windows whose true risk is known, per band x missing-days cell: each
        cell's scale turns the SD of the network's logit into the calibrated log-odds' error there (within a band the
        calibration map's slope is nearly constant, so the scale absorbs it; a window-by-window slope made the
        coverage of the high band depend on which segment of the map a window fell in)."""
        score = np.abs(logit(true_risk) - log_odds) / np.maximum(sd, 1e-6)
        if len(score) < MIN_GROUP:
            return cls(coverage)
        cells = missing_class(days_missing)
        scales = {"*": _conformal_quantile(score, coverage)}
        for b in np.unique(band):
            in_band = band == b
            if in_band.sum() >= MIN_GROUP:
                scales[f"{b}:*"] = _conformal_quantile(score[in_band], coverage)
            for c in np.unique(cells[in_band]):
                cell = in_band & (cells == c)
                if cell.sum() >= MIN_GROUP:
                    scales[f"{b}:{c}"] = _conformal_quantile(score[cell], coverage)
        return cls(coverage, CHECKED, len(score), scales)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Interval:
        if not d:
            return cls()
        return cls(d["coverage"], d["fitted_on"], d["n_fitted"], dict(d["scales"]))


def _conformal_quantile(score: np.ndarray, coverage: float) -> float:
    """The finite-sample split-conformal quantile: the ceil((n + 1) * coverage)-th smallest score."""
    rank = min(int(np.ceil((len(score) + 1) * coverage)), len(score)) - 1
    return float(np.sort(score)[rank])
