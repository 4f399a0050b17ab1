"""One fold of a training run: fit on its training participants, calibrate and band on in-fold windows, score its test ones."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from earlywarn.data.oracle import oracle_for
from earlywarn.data.windows import WindowSet
from earlywarn.training import tracking
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.calibration import Bands, Calibration, band_rates
from earlywarn.training.fit import FitConfig, fit_net
from earlywarn.training.interval_fit import fit_interval, term_covariance
from earlywarn.training.person_metrics import person_scores, youden_threshold
from earlywarn.training.profiles import PROFILE_WINDOWS
from earlywarn.training.splits import FoldPlan

if TYPE_CHECKING:
    from earlywarn.training.train import TrainConfig


@dataclass
class Fitted:
    """A fold's calibrated, banded model, and the in-fold windows (never test ones) its bands and cuts were tuned on."""

    bundle: ModelBundle
    val_score: float
    tuning: WindowSet
    tuning_risk: np.ndarray

    def cuts(self) -> tuple[float, float]:
        """Per-window and per-person decision thresholds (balanced accuracy) chosen on the tuning windows."""
        per = person_scores(self.tuning.frame(), self.tuning_risk)
        return youden_threshold(self.tuning.label, self.tuning_risk), youden_threshold(
            per["label"].to_numpy(), per["risk"].to_numpy()
        )


@dataclass
class Fold:
    plan: FoldPlan
    model: Fitted
    test: WindowSet
    test_risk: np.ndarray
    baseline: Fitted | None
    baseline_risk: np.ndarray | None


def fit_bundle(
    cfg: TrainConfig, fit: FitConfig, train: WindowSet, val: WindowSet, callbacks, run_id, labels: bool, complete: bool = True
) -> tuple[ModelBundle, float] | None:
    """Fit a network; with `complete`, also the interval's model part (not needed by the models that only cross-fit
    calibration logits)."""
    logger = tracking.lightning_logger(run_id) if run_id else None
    outcome = fit_net(fit, train, val, logger=logger, callbacks=callbacks, labels=labels)
    if not outcome.is_global_zero:
        return None
    calibration = Calibration.identity(list(outcome.preprocessor.features))
    bundle = ModelBundle(fit.kind, outcome.hparams, outcome.preprocessor, calibration, Bands(0, 1, 0, 0), cfg.window, outcome.net)
    if complete:
        bundle.net.term_covariance.copy_(term_covariance(bundle, train, fit.seed))
    return bundle, outcome.best_score


def at_most_mask(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """A seeded random choice of at most `cap` of n rows, as a mask."""
    keep = np.ones(n, bool)
    if n > cap:
        keep[:] = False
        keep[np.random.default_rng(seed).choice(n, cap, replace=False)] = True
    return keep


@dataclass
class _ProfileScores:
    """Logits of the same windows as every source profile would send them, pooled: [N] logits, labels, profile keys."""

    logits: np.ndarray
    labels: np.ndarray
    keys: np.ndarray

    @classmethod
    def of(cls, bundle: ModelBundle, windows: WindowSet, seed: int) -> _ProfileScores:
        windows = windows.subset(at_most_mask(len(windows), PROFILE_WINDOWS, seed))
        parts = list(bundle.profile_scores(windows.history(None, bundle.input_days)))
        labels = np.tile(windows.label, len(parts))
        return cls(np.concatenate([p[1] for p in parts]), labels, np.concatenate([p[2] for p in parts]))

    @classmethod
    def pooled(cls, parts: list[_ProfileScores]) -> _ProfileScores:
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("logits", "labels", "keys")))


def _cross_fitted(
    cfg: TrainConfig, fit: FitConfig, windows: WindowSet, plan: FoldPlan, labels: bool
) -> tuple[WindowSet, np.ndarray, _ProfileScores]:
    """Out-of-fold logits for every non-test participant, each from a model that never saw them: (the windows, their
    full-profile logits, the logits of every source profile pooled)."""
    predicted = np.concatenate([inner["predict"] for inner in plan.cross_fit])
    tuning = windows.for_participants(set(predicted))
    logits = np.empty(len(tuning), np.float32)
    quiet = replace(fit, progress=False, devices=1, strategy="auto")
    profiles = []
    for inner in plan.cross_fit:
        part = np.isin(tuning.participant_id, inner["predict"])
        made = fit_bundle(
            cfg,
            quiet,
            windows.for_participants(set(inner["train"])),
            windows.for_participants(set(inner["val"])),
            None,
            None,
            labels,
            complete=False,
        )
        assert made is not None
        logits[part] = made[0].logits(tuning.subset(part))
        profiles.append(_ProfileScores.of(made[0], tuning.subset(part), fit.seed))
    return tuning, logits, _ProfileScores.pooled(profiles)


def _fit_and_calibrate(
    cfg: TrainConfig,
    fit: FitConfig,
    windows: WindowSet,
    plan: FoldPlan,
    callbacks,
    run_id,
    oracle: pd.DataFrame | None,
    labels: bool,
    comparison: bool = False,
) -> Fitted | None:
    """Fit on the fold's train participants (early stopping on validation); calibrate one map per source profile on
    the calibration and validation participants together (a 10% calibration split alone carries its own case mix
    into every score) — or, when the splits are too small or one-class, on cross-fitted out-of-fold predictions;
    set the bands on the validation windows; fit the risk interval on the calibration and validation windows.
    A `comparison` model (the baseline beside the registered one) gets the full-data map and bands only."""
    made = fit_bundle(
        cfg,
        fit,
        windows.for_participants(set(plan.train)),
        windows.for_participants(set(plan.val)),
        callbacks,
        run_id,
        labels,
        complete=not comparison,
    )
    if made is None:
        return None
    bundle, val_score = made
    full = bundle.calibration.full
    if plan.cross_fit:
        tuning, logits, profiles = _cross_fitted(cfg, fit, windows, plan, labels)
        bundle.calibration = Calibration.fit(profiles.logits, profiles.labels, profiles.keys, full, cfg.calibration)
        tuning_risk = bundle.calibration(logits, bundle.profiles(tuning.history(None, bundle.input_days)))
        held = windows.for_participants(set(plan.val))
    else:
        held = windows.for_participants(set(plan.calib) | set(plan.val))
        if comparison:  # the data as they are: only the full profile's map is needed beside the registered model
            logits, keys = bundle.scores(held)
            profiles = _ProfileScores(logits, held.label.copy(), keys)
        else:
            profiles = _ProfileScores.of(bundle, held, fit.seed)
        bundle.calibration = Calibration.fit(profiles.logits, profiles.labels, profiles.keys, full, cfg.calibration)
        tuning = windows.for_participants(set(plan.val))
        tuning_risk = bundle.risk(tuning)
    bundle.bands = Bands.fit(tuning_risk, cfg.alert_budget, cfg.elevated_budget)
    if not comparison:
        bundle.interval = fit_interval(bundle, held, oracle_for(oracle, windows), fit.seed)
    return Fitted(bundle, val_score, tuning, tuning_risk)


def train_fold(
    cfg: TrainConfig, windows: WindowSet, plan: FoldPlan, callbacks, run_id, oracle: pd.DataFrame | None, labels: bool
) -> Fold | None:
    model = _fit_and_calibrate(cfg, cfg.fit, windows, plan, callbacks, run_id, oracle, labels)
    if model is None:
        return None
    test = windows.for_participants(set(plan.test))
    risk = model.bundle.risk(test)
    # What each band means, stated as the event rate observed in it on the fold's held-out participants.
    bands = model.bundle.bands
    model.bundle.bands = replace(bands, observed=band_rates(bands.assign(risk), test.label, test.participant, cfg.fit.seed))
    baseline = None
    if cfg.compare_baseline and cfg.fit.kind != "baseline":
        base_fit = replace(cfg.fit, kind="baseline", hparams={}, progress=False, devices=1, strategy="auto")
        baseline = _fit_and_calibrate(cfg, base_fit, windows, plan, None, None, oracle, labels, comparison=True)
    return Fold(plan, model, test, risk, baseline, baseline.bundle.risk(test) if baseline else None)
