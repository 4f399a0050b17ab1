"""`earlywarn train | promote | tune`: parse arguments, build the stage's config, call it, print the outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from earlywarn.data.cli import BatchRows, Horizon, Lookback, MinObservedDays
from earlywarn.data.contract import Condition
from earlywarn.data.ingest import DEFAULT_CHUNK_ROWS
from earlywarn.data.settings import MODEL_NAME
from earlywarn.data.windows import WindowConfig
from earlywarn.training.choices import Method, ModelChoice, ModelKind
from earlywarn.training.configs import FitConfig, PromoteConfig

if TYPE_CHECKING:
    from earlywarn.training.splits import Folds

app = typer.Typer()

# Stage modules import torch, Lightning and MLflow; importing them inside each command keeps `earlywarn --help` instant.


_WINDOW = WindowConfig()  # the window defaults live in data/windows.py only


def _folds(text: str) -> Folds:
    if text == "loso":
        return "loso"
    if not text.isdigit():
        raise typer.BadParameter("a number of folds (0 = one split) or loso", param_hint="--cv-folds")
    return int(text)


def _fit_config(model: ModelKind, **fit: Any) -> FitConfig:
    from earlywarn.data import progress

    devices = fit.pop("devices", "1")
    return FitConfig(kind=model, progress=progress.shown(), devices=int(devices) if str(devices).isdigit() else devices, **fit)


Features = Annotated[Path | None, typer.Option(help="Daily behaviour table; omit for the default synthetic cohort")]
Outcomes = Annotated[Path | None, typer.Option(help="Events or dated labels")]
Attributes = Annotated[
    Path | None, typer.Option(help="Participant attributes for subgroup metrics (default: participants.csv beside features)")
]
Model = Annotated[
    ModelKind,
    typer.Option(help="additive: a small network per signal over the window's days; baseline: logistic on window summaries"),
]
TrainModel = Annotated[
    ModelChoice,
    typer.Option(
        help="auto: for cohorts of at most 200 people choose between the sequence model and the logistic baseline by "
        "nested participant-grouped CV (the sequence model above); choose: always; or additive / baseline"
    ),
]
Seed = Annotated[int, typer.Option(help="Random seed for splits, initialisation and batches")]
MaxEpochs = Annotated[int, typer.Option(min=1, help="Most epochs; early stopping on validation AUROC usually ends sooner")]
AurocTolerance = Annotated[
    float, typer.Option(min=0.0, help="Gate: the challenger's AUROC may trail the champion's by at most this much")
]
MaxEce = Annotated[float, typer.Option(min=0.0, help="Gate: largest expected calibration error on held-out participants")]
MaxSubgroupDrop = Annotated[
    float, typer.Option(min=0.0, help="Gate: largest AUROC drop of any subgroup below the challenger's overall AUROC")
]


@app.command("train")
def train_cmd(
    features: Features = None,
    outcomes: Outcomes = None,
    attributes: Attributes = None,
    lookback: Lookback = _WINDOW.lookback,
    horizon: Horizon = _WINDOW.horizon,
    min_observed_days: MinObservedDays = _WINDOW.min_observed_days,
    washout_days: Annotated[int, typer.Option(help="Days after an event that are never scored")] = _WINDOW.washout_days,
    baseline_days: Annotated[
        int, typer.Option(help="Personal baseline: days of the person's history before the window's last week (0 = the window's)")
    ] = _WINDOW.baseline_days,
    cv_folds: Annotated[
        str, typer.Option(help="K for person-level K-fold cross-validation, 0 for one participant split, or loso")
    ] = "0",
    model: TrainModel = "auto",
    seed: Seed = 0,
    out: Annotated[Path | None, typer.Option(help="Metrics, plots and card (default: train/ under EARLYWARN_HOME)")] = None,
    max_epochs: MaxEpochs = FitConfig.max_epochs,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per training batch")] = 512,
    behaviour_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Weight of the behavioural penalty: worse recent days never lower a signal's part in the score "
            "(0 = off; docs/training.md)",
        ),
    ] = 0.1,
    condition: Annotated[
        Condition,
        typer.Option(
            help="Which way is worse: depression (one way per signal, as the data contract says) or bipolar (manic and "
            "depressive weeks both: sleep, activity, phone use, calls, mobility and mood either way)"
        ),
    ] = "depression",
    devices: Annotated[str, typer.Option(help="Lightning devices (e.g. 2, or auto)")] = "1",
    strategy: Annotated[str, typer.Option(help="Lightning strategy (auto, ddp, ...)")] = "auto",
    accelerator: Annotated[str, typer.Option(help="Lightning accelerator (cpu, gpu, auto)")] = "cpu",
    num_nodes: Annotated[int, typer.Option(min=1, help="Machines taking part in distributed training")] = 1,
    calibration: Annotated[
        Method,
        typer.Option(help="Calibration of raw scores on held-out participants: monotone spline, logistic (platt) or isotonic"),
    ] = "spline",
    alert_budget: Annotated[float, typer.Option(help="Share of validation windows in the high band")] = 0.05,
    baseline: Annotated[bool, typer.Option(help="Also train the logistic baseline for comparison")] = True,
    batch_rows: BatchRows = DEFAULT_CHUNK_ROWS,
) -> None:
    """Train a relapse-risk model, evaluate it on held-out participants, log to MLflow, register it as challenger."""
    from earlywarn.data import state
    from earlywarn.training.choose import choose_and_train
    from earlywarn.training.splits import TrainingDataError
    from earlywarn.training.train import TrainConfig, train

    fit = _fit_config(
        "baseline" if model == "baseline" else "additive",  # auto and choose start from the sequence model
        seed=seed,
        max_epochs=max_epochs,
        batch_size=batch_size,
        behaviour_weight=behaviour_weight,
        condition=condition,
        devices=devices,
        strategy=strategy,
        accelerator=accelerator,
        num_nodes=num_nodes,
    )
    cfg = TrainConfig(
        features=features,
        outcomes=outcomes,
        attributes=attributes,
        window=WindowConfig(
            lookback=lookback,
            horizon=horizon,
            min_observed_days=min_observed_days,
            washout_days=washout_days,
            baseline_days=baseline_days,
        ),
        fit=fit,
        cv_folds=_folds(cv_folds),
        calibration=calibration,
        alert_budget=alert_budget,
        compare_baseline=baseline,
        chunk_rows=batch_rows,
        out=out or state.path("train"),
    )
    try:
        if model in ("auto", "choose"):
            result, why = choose_and_train(cfg, "small" if model == "auto" else "always")
        else:
            result, why = train(cfg), ""
    except TrainingDataError as err:  # the task is impossible on this data: say so in one line
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    if not result.is_global_zero:
        return
    if why:
        typer.echo(f"model choice: {why}")
    m = result.metrics
    typer.echo(
        f"AUROC {m['auroc']:.3f} ({m['auroc_ci_low']:.3f}–{m['auroc_ci_high']:.3f}), AUPRC {m['auprc']:.3f}, ECE {m['ece']:.3f}"
    )
    if "oracle_auroc" in m:
        typer.echo(f"oracle AUROC on the same windows {m['oracle_auroc']:.3f} (ratio {m['auroc'] / m['oracle_auroc']:.3f})")
    if "baseline_auroc" in m:
        typer.echo(f"baseline AUROC {m['baseline_auroc']:.3f}")
    typer.echo(
        f"metrics, plots and model card in {result.out_dir}; MLflow run {result.run_id}; "
        f"registered version {result.model_version} (challenger)"
    )


@app.command("promote")
def promote_cmd(
    rollback: Annotated[bool, typer.Option(help="Restore the previous champion instead")] = False,
    auroc_tolerance: AurocTolerance = PromoteConfig.auroc_tolerance,
    max_ece: MaxEce = PromoteConfig.max_ece,
    max_subgroup_drop: MaxSubgroupDrop = PromoteConfig.max_subgroup_drop,
    force: Annotated[
        bool, typer.Option(help="Promote even if gates fail; needs --reason, and records who and why on the model version")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why the failed gates do not apply (with --force)")] = None,
    by: Annotated[str | None, typer.Option(help="Who overrides the gates (with --force; default: the login name)")] = None,
) -> None:
    """Move alias `champion` to the challenger if it passes the gates; say which gate failed otherwise."""
    from earlywarn.training.promote import PromoteConfig, promote
    from earlywarn.training.run_report import comparison_table

    if force and not (reason or "").strip():
        raise typer.BadParameter("--force needs --reason: say why the failed gates do not apply", param_hint="--reason")
    result = promote(
        PromoteConfig(
            auroc_tolerance=auroc_tolerance,
            max_ece=max_ece,
            max_subgroup_drop=max_subgroup_drop,
            rollback=rollback,
            force=force,
            reason=reason,
            forced_by=by,
        )
    )
    if result.comparison:
        typer.echo(comparison_table(result))
    for g in result.gates:
        typer.echo(f"gate {g.name}: {'pass' if g.passed else 'FAIL'} — {g.detail}")
    typer.echo(result.message)
    if not result.promoted:
        raise typer.Exit(1)


@app.command("retrain")
def retrain_cmd(
    since: Annotated[
        str | None, typer.Option(help="Only logged windows ending since then: a day (YYYY-MM-DD) or a duration (90d)")
    ] = None,
    features: Annotated[Path | None, typer.Option(help="Original training features (default: the champion's)")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Original training outcomes (default: the champion's)")] = None,
    model: Model = FitConfig.kind,
    max_epochs: MaxEpochs = FitConfig.max_epochs,
    auroc_tolerance: AurocTolerance = PromoteConfig.auroc_tolerance,
    max_ece: MaxEce = PromoteConfig.max_ece,
    max_subgroup_drop: MaxSubgroupDrop = PromoteConfig.max_subgroup_drop,
) -> None:
    """Train a challenger on the training data plus logged inputs and reported outcomes; promote it through the gates."""

    from earlywarn.data.store import url_from_env
    from earlywarn.data.timespec import since_day
    from earlywarn.training.promote import PromoteConfig
    from earlywarn.training.retrain import RetrainConfig, retrain

    cfg = RetrainConfig(
        db_url=url_from_env(),
        since=since_day(since) if since else None,
        base_features=features,
        base_outcomes=outcomes,
        fit=_fit_config(model, max_epochs=max_epochs),
        gates=PromoteConfig(auroc_tolerance=auroc_tolerance, max_ece=max_ece, max_subgroup_drop=max_subgroup_drop),
    )
    result = retrain(cfg)
    typer.echo(
        f"training set: {result.logged_participants} logged participants, {result.logged_days} logged days, "
        f"{result.reported_events} reported events added -> {result.features_path.parent}; left out: "
        f"{result.left_out_partners} partners not opted in, {result.left_out_people} people with too few logged days"
    )
    typer.echo(result.comparison)
    for g in result.promotion.gates:
        typer.echo(f"gate {g.name}: {'pass' if g.passed else 'FAIL'} — {g.detail}")
    typer.echo(result.promotion.message)
    if not result.promotion.promoted:
        raise typer.Exit(1)


@app.command("tune")
def tune_cmd(
    trials: Annotated[int, typer.Option(min=1, help="Trials to run (each one training run, pruned early when behind)")] = 10,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: a journal file under EARLYWARN_HOME/optuna)")
    ] = None,
    study: Annotated[str, typer.Option(help="Study name: workers given the same name and storage share one study")] = MODEL_NAME,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after this many seconds")] = None,
    features: Features = None,
    outcomes: Outcomes = None,
    model: Model = FitConfig.kind,
    seed: Seed = 0,
    max_epochs: MaxEpochs = FitConfig.max_epochs,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: tune/ under EARLYWARN_HOME)")] = None,
    retrain_best: Annotated[
        bool, typer.Option(help="Train the best trial's settings on the whole training split and register it as challenger")
    ] = True,
) -> None:
    """Search hyperparameters with pruning; each trial a nested MLflow run; the best retrained and registered as challenger."""
    from earlywarn.data import state
    from earlywarn.training.train import TrainConfig
    from earlywarn.training.tune import TuneConfig, tune

    base = TrainConfig(
        features=features,
        outcomes=outcomes,
        fit=_fit_config(model, seed=seed, max_epochs=max_epochs),
        compare_baseline=False,
        out=out or state.path("tune"),
    )
    result = tune(TuneConfig(train=base, trials=trials, storage=storage, study=study, timeout=timeout, retrain_best=retrain_best))
    typer.echo(
        f"study {result.study}: {result.n_trials} trials, best val AUROC {result.best_value:.4f} "
        f"with {json.dumps(result.best_params)}"
    )
    if result.final is not None:
        typer.echo(
            f"best retrained: version {result.final.model_version} (challenger), test AUROC {result.final.metrics['auroc']:.3f}"
        )
