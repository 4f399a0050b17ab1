"""How far to trust a risk: an 80% interval from the spread over plausible fills of the missing days, conformally scaled.

A window with missing days could have said several things. Each missing (day, signal) in the model window is filled
with a value drawn from the person's own observed days of that signal, the model scores every fill, and the spread
of those calibrated logits measures what the gaps leave open. The interval is `logit(risk) ± scale·(spread + floor)`
(normalised split-conformal prediction): `floor` gives fully observed windows a width for what the model itself gets
wrong, and `scale` is the conformal quantile fitted, on the calibration split, against the true risk where one is
known (the synthetic cohort's oracle). Without a true risk the interval keeps a normal-theory scale and the model card
says it was not checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

COVERAGE = 0.8
DRAWS = 8
NORMAL_SCALE = 1.2816  # the two-sided 80% normal quantile: the scale when no true risk is known to fit one on
FLOOR_CANDIDATES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8)  # logit units; the fit keeps the one giving the narrowest intervals
DEFAULT_FLOOR = 0.3


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def imputations(history: np.ndarray, lookback: int, draws: int = DRAWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[B, D, F] raw days -> ([draws, B, D, F] copies whose missing window cells hold values drawn from the same
    person's observed days of that signal, [B] whether anything was filled). One set of uniform draws serves every
    participant, so a participant's interval depends on their own days only, not on who else is in the batch."""
    b, _, f = history.shape
    seen = ~np.isnan(history)
    n = seen.sum(axis=1)  # [B, F] observed days per signal
    pool = np.sort(history, axis=1)  # NaN sorts last: the first n[b, f] entries are that signal's observed values
    u = np.random.default_rng(seed).random((draws, 1, lookback, f))
    pick = np.minimum((u * n[None, :, None, :]).astype(np.int64), np.maximum(n - 1, 0)[None, :, None, :])
    drawn = pool[np.arange(b)[None, :, None, None], pick, np.arange(f)[None, None, None, :]]
    out = np.repeat(history[None], draws, axis=0)
    window = out[:, :, -lookback:, :]
    gap = np.isnan(history[:, -lookback:, :]) & (n[:, None, :] > 0)
    window[:, gap] = drawn[:, gap]
    return out, gap.any(axis=(1, 2))


@dataclass(frozen=True)
class Interval:
    """The interval's fitted numbers; `fitted_on` says what its coverage was fitted against ("true_risk" or "none")."""

    coverage: float = COVERAGE
    scale: float = NORMAL_SCALE
    floor: float = DEFAULT_FLOOR
    fitted_on: str = "none"
    n_fitted: int = 0

    def bounds(self, risk: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B] risk and calibrated-logit spread -> ([B] low, [B] high); always low <= risk <= high."""
        centre = logit(risk)
        half = self.scale * (np.asarray(spread, np.float64) + self.floor)
        low, high = _sigmoid(centre - half), _sigmoid(centre + half)
        return np.minimum(low, risk), np.maximum(high, risk)

    @classmethod
    def fit(cls, risk: np.ndarray, spread: np.ndarray, true_risk: np.ndarray, coverage: float = COVERAGE) -> Interval:
        """Split-conformal fit on calibration windows whose true risk is known: for each candidate floor, the scale is
        the finite-sample conformal quantile of |logit(true) - logit(risk)| / (spread + floor); keep the narrowest."""
        error = np.abs(logit(true_risk) - logit(risk))
        n = len(error)
        if n < 20:
            return cls(coverage)
        rank = min(int(np.ceil((n + 1) * coverage)), n) - 1
        best: Interval | None = None
        best_width = np.inf
        for floor in FLOOR_CANDIDATES:
            scale = float(np.sort(error / (spread + floor))[rank])
            width = float(np.mean(np.diff(cls(coverage, scale, floor).bounds(risk, spread), axis=0)))
            if width < best_width:
                best, best_width = cls(coverage, scale, floor, "true_risk", n), width
        assert best is not None
        return best

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Interval:
        return cls(**d) if d else cls()
