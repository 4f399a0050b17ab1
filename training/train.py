"""The training stage: `train(cfg) -> TrainResult` — windows, person-level folds, fit, calibrate, evaluate, log, register."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only
from sklearn.metrics import roc_auc_score

from earlywarn.data import state
from earlywarn.data.contract import PARTICIPANT
from earlywarn.data.erasure import TAG
from earlywarn.data.ingest import DEFAULT_CHUNK_ROWS, GridData, load_care, load_grid
from earlywarn.data.oracle import oracle_auroc, oracle_for, oracle_scores
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.summary import window_summary
from earlywarn.data.synth import COHORT_META, SynthConfig, synth
from earlywarn.data.windows import WindowConfig, WindowSet, build_windows
from earlywarn.training import tracking
from earlywarn.training.bundle import ModelBundle, sha256
from earlywarn.training.calibration import BANDS, Bands, Calibration, Method, band_rates
from earlywarn.training.evaluate import (
    calibration_slope_intercept,
    decision_metrics,
    evaluate,
    expected_calibration_error,
    interval_metrics,
    person_metrics,
    person_scores,
    youden_threshold,
)
from earlywarn.training.fit import FitConfig, fit_net
from earlywarn.training.interval_fit import INTERVAL_WINDOWS, fit_interval, term_covariance
from earlywarn.training.model_card import build_card, card_markdown
from earlywarn.training.plots import save_plots
from earlywarn.training.profiles import PROFILE_WINDOWS
from earlywarn.training.splits import SPLIT, FoldPlan, Folds, TrainingDataError, plan_folds
from earlywarn.training.uncertainty import CHECKED, Interval, logit

MAX_LOGGED_FOLDS = 10  # per-fold MLflow runs with per-epoch curves; leave-one-subject-out would make one per person


def _rank() -> int:
    """This process's global rank; DDP children re-run the command, and only rank zero may log or write."""
    return int(getattr(rank_zero_only, "rank", 0))


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; paths left empty mean the default synthetic cohort."""

    features: Path | None = None
    outcomes: Path | None = None
    attributes: Path | None = None  # default: participants.csv beside the features
    window: WindowConfig = field(default_factory=WindowConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    cv_folds: Folds = 0  # 0/1 one participant split; K grouped folds; "loso" leave one subject out
    calibration: Method = "spline"
    alert_budget: float = 0.05
    elevated_budget: float = 0.15
    bootstrap_reps: int = 200
    compare_baseline: bool = True
    out: Path = field(default_factory=lambda: state.path("train"))
    register: bool = True
    log_model: bool = True  # tuning trials skip it; only the retrained best is kept
    experiment: str = tracking.EXPERIMENT
    run_name: str | None = None
    nested: bool = False
    chunk_rows: int = DEFAULT_CHUNK_ROWS  # rows of the features file read at a time
    original_data: tuple[Path, Path] | None = None  # for a retrained model: the first training data it extends


@dataclass
class TrainResult:
    """What a run produced; on non-zero DDP ranks only `is_global_zero=False` is meaningful."""

    is_global_zero: bool
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    model_version: str | None = None
    out_dir: Path | None = None
    bundle: ModelBundle | None = None
    folds: list[FoldPlan] = field(default_factory=list)


@dataclass
class _Fitted:
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
class _Fold:
    plan: FoldPlan
    model: _Fitted
    test: WindowSet
    test_risk: np.ndarray
    baseline: _Fitted | None
    baseline_risk: np.ndarray | None


def resolve_data(cfg: TrainConfig) -> tuple[Path, Path]:
    """The configured tables, or the default synthetic cohort (generated on first use)."""
    if cfg.features is not None:
        if cfg.outcomes is None:
            raise ValueError("--outcomes is required with --features")
        return cfg.features, cfg.outcomes
    cohort = state.path("cohort")
    features = cohort / "features.parquet"
    if not features.exists() and _rank() == 0:
        synth(SynthConfig(), cohort)
    return features, cohort / "outcomes.csv"


def heldout_digest(ids: np.ndarray) -> str:
    """A fingerprint of the held-out participants, so promotion can check it re-derived the same split."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def _bundle(
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


def _at_most_mask(n: int, cap: int, seed: int = 0) -> np.ndarray:
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
        windows = windows.subset(_at_most_mask(len(windows), PROFILE_WINDOWS, seed))
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
        made = _bundle(
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
) -> _Fitted | None:
    """Fit on the fold's train participants (early stopping on validation); calibrate one map per source profile on
    the calibration and validation participants together (a 10% calibration split alone carries its own case mix
    into every score) — or, when the splits are too small or one-class, on cross-fitted out-of-fold predictions;
    set the bands on the validation windows; fit the risk interval on the calibration and validation windows.
    A `comparison` model (the baseline beside the registered one) gets the full-data map and bands only."""
    made = _bundle(
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
    return _Fitted(bundle, val_score, tuning, tuning_risk)


def _train_fold(
    cfg: TrainConfig, windows: WindowSet, plan: FoldPlan, callbacks, run_id, oracle: pd.DataFrame | None, labels: bool
) -> _Fold | None:
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
    return _Fold(plan, model, test, risk, baseline, baseline.bundle.risk(test) if baseline else None)


def train(cfg: TrainConfig, callbacks: list[Callback] | None = None) -> TrainResult:
    """Train, evaluate on held-out participants, log to MLflow and register the model as `challenger`."""
    features_path, outcomes_path = resolve_data(cfg)
    data = load_grid(features_path, outcomes_path, pad=cfg.window.lookback - 1, chunk_rows=cfg.chunk_rows)
    windows = build_windows(data.panel, data.outcomes, cfg.window, data.mode, care=load_care(features_path))
    if len(windows) == 0:
        raise TrainingDataError(f"no usable windows (skipped: {windows.skipped})")
    plans = plan_folds(windows, cfg.cv_folds, cfg.fit.seed)
    is_zero = _rank() == 0
    run_id = tracking.start_run(cfg.experiment, cfg.run_name, cfg.nested) if is_zero else None
    oracle = _side_tables(cfg, features_path)[1]
    try:
        folds: list[_Fold] = []
        for k, plan in enumerate(plans):
            per_fold_run = is_zero and 1 < len(plans) <= MAX_LOGGED_FOLDS
            fold_run = tracking.start_run(cfg.experiment, f"fold-{k}", nested=True) if per_fold_run else run_id
            logged = fold_run if len(plans) <= MAX_LOGGED_FOLDS else None
            fold = _train_fold(cfg, windows, plan, callbacks, logged, oracle, data.mode == "label")
            if per_fold_run:
                tracking.end_run()
            if fold is None:
                return TrainResult(is_global_zero=False)
            folds.append(fold)
        assert run_id is not None
        metrics, frame, risk = _evaluate(cfg, data, windows, folds, features_path)
        return _record(cfg, data, windows, folds, metrics, frame, risk, (features_path, outcomes_path), run_id)
    finally:
        if is_zero:
            tracking.end_run()


def _side_tables(cfg: TrainConfig, features_path: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Participant attributes (for subgroups) and the synthetic oracle, where they exist beside the data."""
    attributes_path = cfg.attributes or (features_path.parent / "participants.csv")
    attributes = pd.read_csv(attributes_path, dtype={PARTICIPANT: str}) if attributes_path.exists() else None
    oracle_path = features_path.parent / "oracle.parquet"
    return attributes, (pd.read_parquet(oracle_path) if oracle_path.exists() else None)


def _decisions(
    folds: list[_Fold], models: list[_Fitted], risks: list[np.ndarray], prefix: str, cfg: TrainConfig
) -> dict[str, float]:
    """Per-day and per-person MCC and balanced accuracy at thresholds each fold chose on its own tuning windows."""
    frame = pd.concat([f.test.frame() for f in folds], ignore_index=True)
    risk = np.concatenate(risks)
    cuts = [m.cuts() for m in models]
    day_cut = np.concatenate([np.full(len(f.test), c[0]) for f, c in zip(folds, cuts, strict=True)])
    person_cut = pd.Series({str(p): c[1] for f, c in zip(folds, cuts, strict=True) for p in f.plan.test})
    out = decision_metrics(frame["label"].to_numpy(int), risk >= day_cut, f"{prefix}day_")
    out |= {f"{prefix}{k}": v for k, v in person_metrics(frame, risk, person_cut, cfg.bootstrap_reps, cfg.fit.seed).items()}
    return out


def _evaluate(
    cfg: TrainConfig, data: GridData, windows: WindowSet, folds: list[_Fold], features_path: Path
) -> tuple[dict[str, float], pd.DataFrame, np.ndarray]:
    """Pooled out-of-fold metrics per day (with the high band) and per person, baseline beside, oracle where known."""
    attributes, oracle = _side_tables(cfg, features_path)
    frame = pd.concat([f.test.frame() for f in folds], ignore_index=True)
    risk = np.concatenate([f.test_risk for f in folds])
    high = np.concatenate([np.full(len(f.test), f.model.bundle.bands.high) for f in folds])
    events = data.outcomes if data.mode == "event" else None
    oracle = oracle_for(oracle, windows)
    oracle_value = None
    if oracle is not None:
        evaluated = windows.subset(np.isin(windows.end_row, np.concatenate([f.test.end_row for f in folds])))
        oracle_value = oracle_auroc(oracle, evaluated)
    elevated = np.concatenate([np.full(len(f.test), f.model.bundle.bands.elevated) for f in folds])
    metrics = evaluate(
        frame, risk, high, cfg.window.horizon, events, attributes, oracle_value, cfg.bootstrap_reps, cfg.fit.seed, elevated
    )
    metrics |= _decisions(folds, [f.model for f in folds], [f.test_risk for f in folds], "", cfg)
    baselines = [f.baseline for f in folds if f.baseline is not None]
    if len(baselines) == len(folds):
        base_risk = np.concatenate([f.baseline_risk for f in folds if f.baseline_risk is not None])
        base_high = np.concatenate([np.full(len(f.test), b.bundle.bands.high) for f, b in zip(folds, baselines, strict=True)])
        base = evaluate(frame, base_risk, base_high, cfg.window.horizon, None, None, None, cfg.bootstrap_reps, cfg.fit.seed)
        metrics |= {f"baseline_{k}": base[k] for k in ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "ece", "brier")}
        metrics |= _decisions(folds, baselines, [f.baseline_risk for f in folds if f.baseline_risk is not None], "baseline_", cfg)
    metrics |= _interval_metrics(folds, oracle_for(oracle, windows), cfg.fit.seed)
    metrics |= _profile_metrics(folds, cfg.fit.seed)
    metrics["val_score_best"] = float(np.mean([f.model.val_score for f in folds]))
    metrics["n_folds"] = float(len(folds))
    metrics["folds_cross_fitted_calibration"] = float(sum(bool(f.plan.cross_fit) for f in folds))
    return metrics, frame, risk


def _interval_note(interval: Interval) -> str:
    if interval.fitted_on == CHECKED:
        cells = ", ".join(f"{k} {v:.2f}" for k, v in sorted(interval.scales.items()))
        return (
            f"{interval.coverage:.0%} interval: the model's own uncertainty (participant-clustered covariance of each "
            "signal's last layer) and the missing days (what hiding such days moves each signal's term), "
            f"split-conformal against the true risk of {interval.n_fitted} calibration windows, one scale per band and "
            f"class of days missing (band:class = scale: {cells})"
        )
    return (
        f"{interval.coverage:.0%} interval from the model's own uncertainty and the missing days with a normal-theory "
        "scale: no true risk was known, so its coverage was not checked (the API says `interval_checked: false`)"
    )


def _interval_metrics(folds: list[_Fold], oracle: pd.DataFrame | None, seed: int) -> dict[str, float]:
    """The risk intervals on the held-out windows: width by days missing, how much the logit width varies between
    people, how much blanking 8 of the last 14 days widens it, and, where the true risk is known, coverage overall,
    per band and per missing-days class."""
    parts: list[tuple[np.ndarray, ...]] = []
    widening: list[tuple[np.ndarray, np.ndarray]] = []
    for f in folds:
        bundle = f.model.bundle
        test = f.test.subset(_at_most_mask(len(f.test), INTERVAL_WINDOWS, seed))
        histories = test.history(None, bundle.input_days)
        made = bundle.assess(histories)
        missing = (~(~np.isnan(histories[:, -bundle.window.lookback :])).any(axis=2)).sum(axis=1)
        truth = oracle_scores(oracle, test) if oracle is not None else np.full(len(made.low), np.nan)
        parts.append((made.low, made.high, missing, truth, bundle.bands.assign(made.risk)))
        widening.append(_blanked_widening(bundle, histories, seed))
    low, high, missing, truth, band = (np.concatenate(p) for p in zip(*parts, strict=True))
    out = interval_metrics(low, high, missing, truth if oracle is not None else None, band)
    half = (logit(high) - logit(low)) / 2
    out["interval_logit_half_width_mean"] = float(half.mean())
    out["interval_logit_half_width_cv"] = float(half.std() / half.mean()) if half.mean() > 0 else float("nan")
    before, after = (np.concatenate(w) for w in zip(*widening, strict=True))
    out["interval_blanked_windows"] = float(len(before))
    out["interval_blanked_width_before"] = float(before.mean()) if len(before) else float("nan")
    out["interval_blanked_width_after"] = float(after.mean()) if len(after) else float("nan")
    return out


BLANKED_DAYS, BLANKED_OF = 8, 14  # the widening check: 8 random days of the last 14 emptied
BLANKED_WINDOWS = 3000  # of the held-out windows that had all 14 (a mean width to about ±0.005)


def _blanked_widening(bundle: ModelBundle, histories: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Interval widths of the windows whose last 14 days all carry a signal, before and after emptying 8 of them (none
    for a lookback shorter than 14 days)."""
    if bundle.window.lookback < BLANKED_OF:
        return np.empty(0), np.empty(0)
    recent = (~np.isnan(histories[:, -BLANKED_OF:])).any(axis=2).all(axis=1)
    chosen = histories[recent][:BLANKED_WINDOWS]
    if not len(chosen):
        return np.empty(0), np.empty(0)
    rng = np.random.default_rng(seed)
    days = rng.random((len(chosen), BLANKED_OF)).argsort(axis=1)[:, :BLANKED_DAYS]  # 8 distinct days per window
    blanked = chosen.copy()
    blanked[np.arange(len(chosen))[:, None], chosen.shape[1] - BLANKED_OF + days] = np.nan
    before, after = bundle.assess(chosen), bundle.assess(blanked)
    return before.high - before.low, after.high - after.low


def _profile_metrics(folds: list[_Fold], seed: int) -> dict[str, float]:
    """Each source profile (wearable only, phone only, check-ins only, ...) on the held-out windows, the same windows
    with the other sources never sent: calibration in the large, slope, ECE, AUROC and the high band's share."""
    rows: dict[tuple[str, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    for f in folds:
        bundle = f.model.bundle
        test = f.test.subset(_at_most_mask(len(f.test), PROFILE_WINDOWS, seed))
        for sources, logits, keys in bundle.profile_scores(test.history(None, bundle.input_days)):
            rows.setdefault(sources, []).append((bundle.calibration(logits, keys), test.label))
    out: dict[str, float] = {}
    high_budget = folds[-1].model.bundle.bands
    for sources, parts in rows.items():
        risk, labels = (np.concatenate(p) for p in zip(*parts, strict=True))
        key = "profile_" + "_and_".join(sources)
        slope, _ = calibration_slope_intercept(labels, risk)
        out |= {
            f"{key}_calibration_in_the_large": float(risk.mean() - labels.mean()),
            f"{key}_calibration_slope": slope,
            f"{key}_ece": expected_calibration_error(labels, risk),
            f"{key}_auroc": float(roc_auc_score(labels, risk)) if len(np.unique(labels)) == 2 else float("nan"),
            f"{key}_high_share": float((risk >= high_budget.high).mean()),
        }
    return out


def _protocol(cfg: TrainConfig, folds: list[_Fold]) -> str:
    crossed = sum(bool(f.plan.cross_fit) for f in folds)
    calibration = (
        f"Calibration, bands and decision thresholds were tuned on cross-fitted out-of-fold predictions in {crossed} of "
        f"{len(folds)} folds (their calibration split was too small or one-class), on the calibration and validation "
        "splits otherwise."
        if crossed
        else "Calibration on each fold's calibration split; bands and decision thresholds on its validation split."
    )
    if cfg.cv_folds == "loso":
        split = "Leave-one-subject-out: each participant is held out once; out-of-fold predictions on every participant."
    elif cfg.cv_folds >= 2:
        split = (
            f"{cfg.cv_folds}-fold cross-validation grouped by participant and stratified by outcome; "
            "out-of-fold predictions on every participant."
        )
    else:
        split = f"Participants split {SPLIT} (seed {cfg.fit.seed}), stratified by outcome; nobody appears in two splits."
    return (
        f"{split} Nested: early stopping, calibration, bands and thresholds never see a fold's test participants. "
        f"{calibration} The registered model is the last fold's."
    )


def _card(
    cfg: TrainConfig, data: GridData, windows: WindowSet, folds: list[_Fold], metrics: dict[str, float], source: Path, run_id: str
) -> dict:
    final = folds[-1].model.bundle
    model_info = {
        "architecture": {
            "additive": "one small network per signal over the window's days, added up (each signal's part in a score "
            "is exact), scaled for the signals a partner sends",
            "baseline": "logistic regression on per-signal window summaries",
        }[cfg.fit.kind],
        "kind": cfg.fit.kind,
        "condition": cfg.fit.condition,
        "hyperparameters": json.dumps(cfg.fit.hparams | {"lr": cfg.fit.lr, "weight_decay": cfg.fit.weight_decay}),
        "calibration": cfg.calibration,
        "calibrated_on": folds[-1].plan.calibration,
        "risk_interval": _interval_note(folds[-1].model.bundle.interval),
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "mlflow_run_id": run_id,
    }
    synthetic = (source.parent / COHORT_META).exists()
    data_info = {
        "source": str(source),
        "validation_data": "synthetic (generated by earlywarn data synth)" if synthetic else "real (as supplied; not synthetic)",
        "participants": len(data.panel.participants),
        "participant_days": data.participant_days,
        "date_range": f"{data.first_date:%Y-%m-%d} to {data.last_date:%Y-%m-%d}",
        "windows_evaluated": int(metrics["n_windows"]),
        "windows_skipped": json.dumps(windows.skipped),
        "outcome_mode": data.mode,
        "prevalence": round(float(metrics["prevalence"]), 4),
        "missing_share": round(data.missing_share, 4),
        "features": final.features,
    }
    outcome = (
        "A window ending on day t is positive when an event falls in (t, t + horizon]."
        if data.mode == "event"
        else "The window ending on an assessment date carries that assessment's 0/1 label."
    )
    baseline = (
        f"AUROC {metrics['baseline_auroc']:.3f} "
        f"({metrics['baseline_auroc_ci_low']:.3f}–{metrics['baseline_auroc_ci_high']:.3f}), AUPRC {metrics['baseline_auprc']:.3f}"
        if "baseline_auroc" in metrics
        else None
    )
    evaluation = {
        "outcome": outcome,
        "horizon": cfg.window.horizon,
        "lookback": cfg.window.lookback,
        "protocol": _protocol(cfg, folds),
        "baseline": baseline,
    }
    bands = {
        "elevated": float(final.bands.elevated),
        "high": float(final.bands.high),
        "alert_budget": cfg.alert_budget,
        "observed": final.bands.observed,
    }
    return build_card(None, model_info, data_info, evaluation, metrics, bands)


def _record(
    cfg: TrainConfig,
    data: GridData,
    windows: WindowSet,
    folds: list[_Fold],
    metrics: dict[str, float],
    frame: pd.DataFrame,
    risk: np.ndarray,
    paths: tuple[Path, Path],
    run_id: str,
) -> TrainResult:
    """Write metrics, plots, reference sample and card; log them and the training-data record; register the model."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    final = folds[-1].model.bundle  # with CV, the last fold's model is registered; its held-out fold is its test set
    # Undefined metrics (e.g. lead time without events) are null, so strict JSON readers still parse the file.
    finite = {k: (v if np.isfinite(v) else None) for k, v in metrics.items()}
    (out / "metrics.json").write_text(json.dumps(finite, indent=2, sort_keys=True, allow_nan=False))
    events = data.outcomes if data.mode == "event" else None
    thresholds = {"elevated": float(final.bands.elevated), "high": float(final.bands.high)}
    plots = save_plots(frame, risk, thresholds, out, events, title=f"({cfg.fit.kind})")
    card = _card(cfg, data, windows, folds, metrics, paths[0], run_id)
    final.meta = {"model_card": card, "metrics": metrics, "trained_at": card["model"]["trained_at"], "run_id": run_id}
    reference_sample(windows, folds[-1].test, final, cfg.fit.seed).to_parquet(out / "reference.parquet", index=False)
    spec = {"features": final.features, **{k: getattr(cfg.window, k) for k in ("lookback", "horizon", "min_observed_days")}}
    (out / "feature_spec.json").write_text(json.dumps(spec, indent=2))
    record = tracking.TrainingData(
        features_path=str(paths[0].resolve()),
        outcomes_path=str(paths[1].resolve()),
        features_sha256=sha256(paths[0]),
        outcomes_sha256=sha256(paths[1]),
        window=asdict(cfg.window),
        split_seed=cfg.fit.seed,
        cv_folds=cfg.cv_folds,
        heldout_sha256=heldout_digest(folds[-1].plan.test),
        original_features_path=str(cfg.original_data[0].resolve()) if cfg.original_data else None,
        original_outcomes_path=str(cfg.original_data[1].resolve()) if cfg.original_data else None,
    )
    params = {
        "model": cfg.fit.kind,
        **{f"window_{k}": v for k, v in asdict(cfg.window).items()},
        **{k: v for k, v in asdict(cfg.fit).items() if k not in ("hparams", "kind", "progress")},
        **{f"hp_{k}": v for k, v in cfg.fit.hparams.items()},
        "cv_folds": cfg.cv_folds,
        "calibration": cfg.calibration,
        "alert_budget": cfg.alert_budget,
        "n_features": len(final.features),
    }
    tracking.log_run(
        params, metrics, [out / "metrics.json", out / "reference.parquet", out / "feature_spec.json", *plots], record
    )
    model_version = tracking.log_model(final, cfg.register) if cfg.log_model else None
    card["version"] = model_version
    (out / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    (out / "model_card.md").write_text(card_markdown(card))
    tracking.log_run({}, {}, [out / "model_card.json", out / "model_card.md"])
    if model_version is not None:
        tracking.set_alias(tracking.CHALLENGER, model_version)
    return TrainResult(True, metrics, run_id, model_version, out, final, [f.plan for f in folds])


def reference_sample(windows: WindowSet, test: WindowSet, bundle: ModelBundle, seed: int, n: int = 20_000) -> pd.DataFrame:
    """What monitoring compares live traffic with: input summaries of windows from every participant the model
    learned from (inputs do not depend on the model, and more people make drift tests sharper), plus risk, band and
    label on held-out participants only, where the scores are unbiased. Participants appear as codes and keyed tags
    (`Pseudonymizer.row_tag`), not ids."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(windows), size=min(n, len(windows)), replace=False))
    sample = windows.subset(idx)
    frame = window_summary(sample.values(), bundle.features)
    frame["participant"] = pd.factorize(sample.participant_id)[0].astype(np.int32)
    tag = Pseudonymizer.from_env().row_tag  # keyed: lets a withdrawal find a person's rows without naming anyone
    frame[TAG] = pd.Series(sample.participant_id).astype(str).map({p: tag(p) for p in set(map(str, sample.participant_id))})
    heldout = np.isin(sample.participant, np.unique(test.participant))  # codes into the same day grid
    risk = np.full(len(sample), np.nan, np.float32)
    risk[heldout] = bundle.risk(sample.subset(np.flatnonzero(heldout)))
    frame["heldout"] = heldout
    frame["risk"] = risk
    frame["band"] = pd.Series([BANDS[b] for b in bundle.bands.assign(risk)]).where(heldout, None)
    frame["label"] = pd.Series(sample.label, dtype="float32").where(heldout)
    return frame
