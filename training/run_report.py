"""What a training run reports about its held-out participants: pooled metrics, decisions, interval checks, the card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from earlywarn.data.contract import PARTICIPANT
from earlywarn.data.ingest import GridData
from earlywarn.data.oracle import oracle_auroc, oracle_for, oracle_scores
from earlywarn.data.synth import COHORT_META
from earlywarn.data.windows import WindowSet
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.evaluate import evaluate, interval_metrics
from earlywarn.training.fold_fit import Fitted, Fold, at_most_mask
from earlywarn.training.interval_fit import INTERVAL_WINDOWS
from earlywarn.training.metrics import calibration_slope_intercept, expected_calibration_error
from earlywarn.training.model_card import build_card
from earlywarn.training.person_metrics import decision_metrics, person_metrics
from earlywarn.training.profiles import PROFILE_WINDOWS
from earlywarn.training.splits import SPLIT
from earlywarn.training.uncertainty import CHECKED, Interval, logit

if TYPE_CHECKING:
    from earlywarn.training.promote import PromoteResult
    from earlywarn.training.train import TrainConfig


def side_tables(cfg: TrainConfig, features_path: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Participant attributes (for subgroups) and the synthetic oracle, where they exist beside the data."""
    attributes_path = cfg.attributes or (features_path.parent / "participants.csv")
    attributes = pd.read_csv(attributes_path, dtype={PARTICIPANT: str}) if attributes_path.exists() else None
    oracle_path = features_path.parent / "oracle.parquet"
    return attributes, (pd.read_parquet(oracle_path) if oracle_path.exists() else None)


def _decisions(
    folds: list[Fold], models: list[Fitted], risks: list[np.ndarray], prefix: str, cfg: TrainConfig
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


def evaluate_folds(
    cfg: TrainConfig, data: GridData, windows: WindowSet, folds: list[Fold], features_path: Path
) -> tuple[dict[str, float], pd.DataFrame, np.ndarray]:
    """Pooled out-of-fold metrics per day (with the high band) and per person, baseline beside, oracle where known."""
    attributes, oracle = side_tables(cfg, features_path)
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
        frame,
        risk,
        high,
        cfg.window.horizon,
        events,
        attributes,
        oracle_value,
        cfg.bootstrap_reps,
        cfg.fit.seed,
        elevated,
        washout=cfg.window.washout_days,
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


def _interval_metrics(folds: list[Fold], oracle: pd.DataFrame | None, seed: int) -> dict[str, float]:
    """The risk intervals on the held-out windows: width by days missing, how much the logit width varies between
    people, how much blanking 8 of the last 14 days widens it, and, where the true risk is known, coverage overall,
    per band and per missing-days class."""
    parts: list[tuple[np.ndarray, ...]] = []
    widening: list[tuple[np.ndarray, np.ndarray]] = []
    for f in folds:
        bundle = f.model.bundle
        test = f.test.subset(at_most_mask(len(f.test), INTERVAL_WINDOWS, seed))
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


def _profile_metrics(folds: list[Fold], seed: int) -> dict[str, float]:
    """Each source profile (wearable only, phone only, check-ins only, ...) on the held-out windows, the same windows
    with the other sources never sent: calibration in the large, slope, ECE, AUROC and the high band's share."""
    rows: dict[tuple[str, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    for f in folds:
        bundle = f.model.bundle
        test = f.test.subset(at_most_mask(len(f.test), PROFILE_WINDOWS, seed))
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


def _protocol(cfg: TrainConfig, folds: list[Fold]) -> str:
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


def model_card_for(
    cfg: TrainConfig, data: GridData, windows: WindowSet, folds: list[Fold], metrics: dict[str, float], source: Path, run_id: str
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


def comparison_table(result: PromoteResult) -> str:
    """A side-by-side table of the compared versions' held-out metrics."""
    rows = sorted(set().union(*(m.keys() for m in result.comparison.values()))) if result.comparison else []
    cols = list(result.comparison)
    lines = [f"{'metric':<40}" + "".join(f"{c:>14}" for c in cols)]
    for r in rows:
        lines.append(f"{r:<40}" + "".join(f"{result.comparison[c].get(r, float('nan')):>14.3f}" for c in cols))
    return "\n".join(lines)
