"""The training stage: `train(cfg) -> TrainResult` — windows, participant splits, fit, calibrate, evaluate, log, register."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from data import state
from data.contract import PARTICIPANT
from data.ingest import DEFAULT_CHUNK_ROWS, GridData, load_grid
from data.oracle import oracle_auroc
from data.summary import window_summary
from data.synth import SynthConfig, synth
from data.windows import WindowConfig, WindowSet, build_windows, grouped_folds, split_participants
from training import tracking
from training.bundle import ModelBundle
from training.calibration import BANDS, Bands, Calibrator, Method
from training.evaluate import evaluate
from training.fit import FitConfig, fit_net
from training.model_card import build_card, card_markdown
from training.plots import save_plots


def _rank() -> int:
    """This process's global rank; DDP children re-run the command, and only rank zero may log or write."""
    return int(getattr(rank_zero_only, "rank", 0))


SPLIT = {"train": 0.6, "val": 0.15, "calib": 0.1, "test": 0.15}
CV_INNER = {"train": 0.7, "val": 0.175, "calib": 0.125}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; paths left empty mean the default synthetic cohort."""

    features: Path | None = None
    outcomes: Path | None = None
    attributes: Path | None = None  # default: participants.csv beside the features
    window: WindowConfig = field(default_factory=WindowConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    cv_folds: int = 0
    calibration: Method = "platt"
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


@dataclass
class TrainResult:
    """What a run produced; on non-zero DDP ranks only `is_global_zero=False` is meaningful."""

    is_global_zero: bool
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    model_version: str | None = None
    out_dir: Path | None = None
    bundle: ModelBundle | None = None


@dataclass
class _Fold:
    bundle: ModelBundle
    test: WindowSet
    test_risk: np.ndarray
    val_score: float
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


def split_windows(windows: WindowSet, cfg: TrainConfig) -> list[dict[str, WindowSet]]:
    """One participant split, or K grouped folds each with its own inner train/val/calib split."""
    people = windows.panel.participants
    if cfg.cv_folds < 2:
        return [{k: windows.for_participants(set(v)) for k, v in split_participants(people, SPLIT, cfg.fit.seed).items()}]
    folds = []
    for k, held_out in enumerate(grouped_folds(people, cfg.cv_folds, cfg.fit.seed)):
        rest = np.setdiff1d(people, held_out)
        inner = split_participants(rest, CV_INNER, cfg.fit.seed + k)
        folds.append(
            {"test": windows.for_participants(set(held_out))} | {n: windows.for_participants(set(v)) for n, v in inner.items()}
        )
    return folds


def heldout_digest(ids: np.ndarray) -> str:
    """A fingerprint of the held-out participants, so promotion can check it re-derived the same split."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def _fit_and_calibrate(
    cfg: TrainConfig, fit: FitConfig, parts: dict[str, WindowSet], callbacks: list[Callback] | None, run_id: str | None
) -> tuple[ModelBundle, float] | None:
    logger = MLFlowLogger(tracking_uri=tracking.tracking_uri(), run_id=run_id) if run_id else None
    outcome = fit_net(fit, parts["train"], parts["val"], logger=logger, callbacks=callbacks)
    if not outcome.is_global_zero:
        return None
    bundle = ModelBundle(
        fit.kind, fit.hparams, outcome.preprocessor, Calibrator("platt"), Bands(0, 1, 0, 0), cfg.window, outcome.net
    )
    calib = parts["calib"]
    bundle.calibrator = Calibrator.fit(bundle.logits(calib), calib.label, cfg.calibration)
    bundle.bands = Bands.fit(bundle.risk(parts["val"]), cfg.alert_budget, cfg.elevated_budget)
    return bundle, outcome.best_score


def train(cfg: TrainConfig, callbacks: list[Callback] | None = None) -> TrainResult:
    """Train, evaluate on held-out participants, log to MLflow and register the model as `challenger`."""
    features_path, outcomes_path = resolve_data(cfg)
    data = load_grid(features_path, outcomes_path, pad=cfg.window.lookback - 1, chunk_rows=cfg.chunk_rows)
    windows = build_windows(data.panel, data.outcomes, cfg.window, data.mode)
    if len(windows) == 0 or len(np.unique(windows.label)) < 2:
        raise ValueError(f"no usable windows with both outcomes (got {len(windows)}; skipped {windows.skipped})")
    attributes_path = cfg.attributes or (features_path.parent / "participants.csv")
    attributes = pd.read_csv(attributes_path, dtype={PARTICIPANT: str}) if attributes_path.exists() else None
    oracle_path = features_path.parent / "oracle.parquet"
    oracle = pd.read_parquet(oracle_path) if oracle_path.exists() else None
    is_zero = _rank() == 0

    run_id = None
    if is_zero:
        tracking.configure(cfg.experiment)
        mlflow.set_experiment(cfg.experiment)
        run = mlflow.start_run(run_name=cfg.run_name, nested=cfg.nested)
        run_id = run.info.run_id
    try:
        folds = split_windows(windows, cfg)
        results: list[_Fold] = []
        for k, parts in enumerate(folds):
            fold_run = mlflow.start_run(run_name=f"fold-{k}", nested=True).info.run_id if is_zero and len(folds) > 1 else run_id
            fitted = _fit_and_calibrate(cfg, cfg.fit, parts, callbacks, fold_run)
            if fold_run != run_id and is_zero:
                mlflow.end_run()
            if fitted is None:
                return TrainResult(is_global_zero=False)
            bundle, val_score = fitted
            baseline_risk = None
            if cfg.compare_baseline and cfg.fit.kind != "baseline":
                base_cfg = replace(cfg.fit, kind="baseline", hparams={}, progress=False, devices=1, strategy="auto")
                base = _fit_and_calibrate(cfg, base_cfg, parts, None, None)
                baseline_risk = base[0].risk(parts["test"]) if base else None
            results.append(_Fold(bundle, parts["test"], bundle.risk(parts["test"]), val_score, baseline_risk))
        assert run_id is not None
        return _report(cfg, data, windows, results, attributes, oracle, features_path, outcomes_path, run_id)
    finally:
        if is_zero:
            mlflow.end_run()


def _pooled(results: list[_Fold]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray | None]:
    """Test windows of every fold with their risks, each fold's own high threshold, and the baseline's risks."""
    frame = pd.concat([r.test.frame() for r in results], ignore_index=True)
    risk = np.concatenate([r.test_risk for r in results])
    high = np.concatenate([np.full(len(r.test), r.bundle.bands.high) for r in results])
    base_parts = [r.baseline_risk for r in results if r.baseline_risk is not None]
    base = np.concatenate(base_parts) if len(base_parts) == len(results) else None
    return frame, risk, high, base


def _report(
    cfg: TrainConfig,
    data: GridData,
    windows: WindowSet,
    results: list[_Fold],
    attributes: pd.DataFrame | None,
    oracle: pd.DataFrame | None,
    features_path: Path,
    outcomes_path: Path,
    run_id: str,
) -> TrainResult:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    frame, risk, high, base_risk = _pooled(results)
    events = data.outcomes if data.mode == "event" else None
    oracle_value = None
    if oracle is not None:
        evaluated = windows.subset(np.isin(windows.end_row, np.concatenate([r.test.end_row for r in results])))
        oracle_value = oracle_auroc(oracle, evaluated)
    metrics = evaluate(frame, risk, high, cfg.window.horizon, events, attributes, oracle_value, cfg.bootstrap_reps, cfg.fit.seed)
    baseline_summary = None
    if base_risk is not None:
        base = evaluate(
            frame,
            base_risk,
            np.quantile(base_risk, 1 - cfg.alert_budget),
            cfg.window.horizon,
            None,
            None,
            None,
            cfg.bootstrap_reps,
            cfg.fit.seed,
        )
        metrics.update({f"baseline_{k}": base[k] for k in ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "ece", "brier")})
        baseline_summary = (
            f"AUROC {base['auroc']:.3f} ({base['auroc_ci_low']:.3f}–{base['auroc_ci_high']:.3f}), AUPRC {base['auprc']:.3f}"
        )
    metrics["val_" + "score_best"] = float(np.mean([r.val_score for r in results]))
    final = results[-1].bundle  # with CV, the last fold's model is registered; its held-out fold is its test set
    # Undefined metrics (e.g. lead time without events) are null, so strict JSON readers still parse the file.
    finite = {k: (v if np.isfinite(v) else None) for k, v in metrics.items()}
    (out / "metrics.json").write_text(json.dumps(finite, indent=2, sort_keys=True, allow_nan=False))
    thresholds = {"elevated": float(final.bands.elevated), "high": float(final.bands.high)}
    plots = save_plots(frame, risk, thresholds, out, events, title=f"({cfg.fit.kind})")

    protocol = (
        f"{cfg.cv_folds}-fold cross-validation grouped by participant: out-of-fold predictions on every participant; "
        "each fold calibrated and banded on its own inner split. The registered model is the last fold's."
        if cfg.cv_folds >= 2
        else f"Participants split {SPLIT} (seed {cfg.fit.seed}); nobody appears in two splits. Early stopping on "
        "validation AUROC, calibration on the calibration split, bands on validation, metrics on the test split."
    )
    model_info = {
        "architecture": {
            "tcn": "causal dilated temporal convolutions with attention pooling over daily inputs",
            "gru": "GRU with attention pooling over daily inputs",
            "baseline": "logistic regression on window summaries",
        }[cfg.fit.kind],
        "kind": cfg.fit.kind,
        "hyperparameters": json.dumps(cfg.fit.hparams | {"lr": cfg.fit.lr, "weight_decay": cfg.fit.weight_decay}),
        "calibration": cfg.calibration,
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "mlflow_run_id": run_id,
    }
    data_info = {
        "source": str(features_path),
        "participants": len(data.panel.participants),
        "participant_days": data.participant_days,
        "date_range": f"{data.first_date:%Y-%m-%d} to {data.last_date:%Y-%m-%d}",
        "windows_evaluated": len(frame),
        "windows_skipped": json.dumps(windows.skipped),
        "outcome_mode": data.mode,
        "prevalence": round(float(frame["label"].mean()), 4),
        "missing_share": round(data.missing_share, 4),
        "features": final.features,
    }
    outcome = (
        "A window ending on day t is positive when an event falls in (t, t + horizon]."
        if data.mode == "event"
        else "The window ending on an assessment date carries that assessment's 0/1 label."
    )
    card = build_card(
        None,
        model_info,
        data_info,
        {
            "outcome": outcome,
            "horizon": cfg.window.horizon,
            "lookback": cfg.window.lookback,
            "protocol": protocol,
            "baseline": baseline_summary,
        },
        metrics,
        thresholds | {"alert_budget": cfg.alert_budget},
    )
    final.meta = {"model_card": card, "metrics": metrics, "trained_at": model_info["trained_at"], "run_id": run_id}

    reference_sample(windows, results[-1].test, final, cfg.fit.seed).to_parquet(out / "reference.parquet", index=False)
    feature_spec = {
        "features": final.features,
        "lookback": cfg.window.lookback,
        "horizon": cfg.window.horizon,
        "min_observed_days": cfg.window.min_observed_days,
    }
    (out / "feature_spec.json").write_text(json.dumps(feature_spec, indent=2))
    split_info = {
        "seed": cfg.fit.seed,
        "cv_folds": cfg.cv_folds,
        "heldout_sha256": heldout_digest(results[-1].test.panel.participants[np.unique(results[-1].test.participant)]),
    }

    mlflow.log_params(
        {
            "features_path": str(Path(features_path).resolve()),
            "outcomes_path": str(Path(outcomes_path).resolve()),
            "model": cfg.fit.kind,
            **{f"window_{k}": v for k, v in asdict(cfg.window).items()},
            **{k: v for k, v in asdict(cfg.fit).items() if k not in ("hparams", "kind", "progress")},
            **{f"hp_{k}": v for k, v in cfg.fit.hparams.items()},
            "cv_folds": cfg.cv_folds,
            "calibration": cfg.calibration,
            "alert_budget": cfg.alert_budget,
            "n_features": len(final.features),
        }
    )
    mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
    mlflow.log_dict(split_info, "split.json")
    for path in [out / "metrics.json", out / "reference.parquet", out / "feature_spec.json", *plots]:
        mlflow.log_artifact(str(path))

    model_version = tracking.log_model(final, cfg.register) if cfg.log_model else None
    card["version"] = model_version
    (out / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    (out / "model_card.md").write_text(card_markdown(card))
    mlflow.log_artifact(str(out / "model_card.json"))
    mlflow.log_artifact(str(out / "model_card.md"))
    if model_version is not None:
        tracking.set_alias(tracking.CHALLENGER, model_version)
    return TrainResult(True, metrics, run_id, model_version, out, final)


def reference_sample(windows: WindowSet, test: WindowSet, bundle: ModelBundle, seed: int, n: int = 20_000) -> pd.DataFrame:
    """What monitoring compares live traffic with: input summaries of windows from every participant the model
    learned from (inputs do not depend on the model, and more people make drift tests sharper), plus risk, band and
    label on held-out participants only, where the scores are unbiased. Participants appear as codes, not ids."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(windows), size=min(n, len(windows)), replace=False))
    sample = windows.subset(idx)
    frame = window_summary(sample.values(), bundle.features)
    frame["participant"] = pd.factorize(sample.participant_id)[0].astype(np.int32)
    heldout = np.isin(sample.participant, np.unique(test.participant))  # codes into the same day grid
    risk = np.full(len(sample), np.nan, np.float32)
    risk[heldout] = bundle.risk(sample.values(np.flatnonzero(heldout)))
    frame["heldout"] = heldout
    frame["risk"] = risk
    frame["band"] = pd.Series([BANDS[b] for b in bundle.bands.assign(risk)]).where(heldout, None)
    frame["label"] = pd.Series(sample.label, dtype="float32").where(heldout)
    return frame
