"""The training stage: `train(cfg) -> TrainResult` — windows, person-level folds, fit, calibrate, evaluate, log, register."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only

from earlywarn.data import state
from earlywarn.data.contract import DATE
from earlywarn.data.erasure import LOGGED, LOGGED_MARK, TAG
from earlywarn.data.ingest import DEFAULT_CHUNK_ROWS, GridData, load_care, load_grid
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.summary import window_summary
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import SynthConfig
from earlywarn.data.windows import WindowConfig, WindowSet, build_windows
from earlywarn.training import tracking
from earlywarn.training.bundle import ModelBundle, sha256
from earlywarn.training.calibration import BANDS, Method
from earlywarn.training.fit import FitConfig
from earlywarn.training.fold_fit import Fold, train_fold
from earlywarn.training.model_card import card_markdown
from earlywarn.training.plots import save_plots
from earlywarn.training.run_report import evaluate_folds, model_card_for, side_tables
from earlywarn.training.splits import FoldPlan, Folds, TrainingDataError, plan_folds

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


def load_windows(cfg: TrainConfig) -> tuple[Path, Path, GridData, WindowSet]:
    """The configured data as scored windows: (features path, outcomes path, the grid, the windows)."""
    features_path, outcomes_path = resolve_data(cfg)
    data = load_grid(features_path, outcomes_path, pad=cfg.window.lookback - 1, chunk_rows=cfg.chunk_rows)
    windows = build_windows(data.panel, data.outcomes, cfg.window, data.mode, care=load_care(features_path))
    if len(windows) == 0:
        raise TrainingDataError(f"no usable windows (skipped: {windows.skipped})")
    return features_path, outcomes_path, data, windows


def train(cfg: TrainConfig, callbacks: list[Callback] | None = None) -> TrainResult:
    """Train, evaluate on held-out participants, log to MLflow and register the model as `challenger`."""
    features_path, outcomes_path, data, windows = load_windows(cfg)
    plans = plan_folds(windows, cfg.cv_folds, cfg.fit.seed)
    is_zero = _rank() == 0
    run_id = tracking.start_run(cfg.experiment, cfg.run_name, cfg.nested) if is_zero else None
    oracle = side_tables(cfg, features_path)[1]
    try:
        folds: list[Fold] = []
        for k, plan in enumerate(plans):
            per_fold_run = is_zero and 1 < len(plans) <= MAX_LOGGED_FOLDS
            fold_run = tracking.start_run(cfg.experiment, f"fold-{k}", nested=True) if per_fold_run else run_id
            logged = fold_run if len(plans) <= MAX_LOGGED_FOLDS else None
            fold = train_fold(cfg, windows, plan, callbacks, logged, oracle, data.mode == "label")
            if per_fold_run:
                tracking.end_run()
            if fold is None:
                return TrainResult(is_global_zero=False)
            folds.append(fold)
        assert run_id is not None
        metrics, frame, risk = evaluate_folds(cfg, data, windows, folds, features_path)
        return _record(cfg, data, windows, folds, metrics, frame, risk, (features_path, outcomes_path), run_id)
    finally:
        if is_zero:
            tracking.end_run()


def _record(
    cfg: TrainConfig,
    data: GridData,
    windows: WindowSet,
    folds: list[Fold],
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
    card = model_card_for(cfg, data, windows, folds, metrics, paths[0], run_id)
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
    ids = pd.Series(sample.participant_id).astype(str)
    frame[TAG] = ids.map({p: tag(p) for p in set(ids)})
    frame[DATE], frame[LOGGED] = sample.end_date, ids.str.contains(LOGGED_MARK, regex=False).to_numpy()  # for retention
    heldout = np.isin(sample.participant, np.unique(test.participant))  # codes into the same day grid
    risk = np.full(len(sample), np.nan, np.float32)
    risk[heldout] = bundle.risk(sample.subset(np.flatnonzero(heldout)))
    frame["heldout"] = heldout
    frame["risk"] = risk
    frame["band"] = pd.Series([BANDS[b] for b in bundle.bands.assign(risk)]).where(heldout, None)
    frame["label"] = pd.Series(sample.label, dtype="float32").where(heldout)
    return frame
