"""Optuna search over the model's hyperparameters on the monitored validation metric, with pruning; best retrained."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import optuna
import pytorch_lightning as pl
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from earlywarn.data import progress, state
from earlywarn.data.settings import MODEL_NAME
from earlywarn.training import tracking
from earlywarn.training.module import MONITOR, MONITOR_MODE
from earlywarn.training.train import TrainConfig, TrainResult, train


class PruneOnMonitor(pl.Callback):
    """Report the monitored metric to Optuna each epoch and stop hopeless trials.

    optuna-integration's PyTorchLightningPruningCallback subclasses `lightning.pytorch`, which a
    `pytorch_lightning` Trainer rejects, so this is the same few lines against the package we use.
    """

    def __init__(self, trial: optuna.Trial):
        self.trial = trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or MONITOR not in trainer.callback_metrics:
            return
        self.trial.report(float(trainer.callback_metrics[MONITOR]), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch}")


@dataclass(frozen=True)
class TuneConfig:
    """How many trials, where the study lives, and the training run each trial varies."""

    train: TrainConfig = field(default_factory=TrainConfig)
    trials: int = 10
    storage: str | None = None  # default: a journal file under runs/optuna; a PostgreSQL URL lets workers share a study
    study: str = MODEL_NAME
    timeout: float | None = None
    retrain_best: bool = True


@dataclass
class TuneResult:
    study: str
    n_trials: int
    best_value: float
    best_params: dict
    final: TrainResult | None


def storage_for(url: str | None) -> optuna.storages.BaseStorage | str:
    if url:
        return url
    journal = state.path("optuna", "journal.log")
    journal.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(journal)))


def _suggest(trial: optuna.Trial | optuna.trial.FixedTrial, base: TrainConfig) -> TrainConfig:
    fit = base.fit
    hparams: dict[str, float | int] = {}
    if fit.kind == "additive":
        hparams = {
            "hidden": trial.suggest_categorical("hidden", [8, 16, 32]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }
    fit = replace(
        fit,
        hparams=hparams,
        lr=trial.suggest_float("lr", 3e-4, 5e-3, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        progress=False,
    )
    return replace(base, fit=fit)


def tune(cfg: TuneConfig) -> TuneResult:
    """Run trials (each a nested MLflow run), then retrain the best configuration and register it as challenger."""
    study = optuna.create_study(
        study_name=cfg.study,
        storage=storage_for(cfg.storage),
        direction=optuna.study.StudyDirection.MAXIMIZE if MONITOR_MODE == "max" else optuna.study.StudyDirection.MINIMIZE,
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        sampler=optuna.samplers.TPESampler(seed=cfg.train.fit.seed),  # the same trials every run
    )

    def objective(trial: optuna.Trial) -> float:
        trial_cfg = replace(
            _suggest(trial, cfg.train),
            register=False,
            log_model=False,
            compare_baseline=False,
            bootstrap_reps=0,
            nested=True,
            run_name=f"{cfg.study}-trial-{trial.number}",
            out=Path(cfg.train.out) / "trials" / f"trial-{trial.number}",
        )
        result = train(trial_cfg, callbacks=[PruneOnMonitor(trial)])
        trial.set_user_attr("mlflow_run_id", result.run_id)
        return float(result.metrics["val_score_best"])

    with tracking.run(cfg.train.experiment, run_name=f"tune-{cfg.study}"):
        study.optimize(
            objective, n_trials=cfg.trials, timeout=cfg.timeout, catch=(ValueError,), show_progress_bar=progress.shown()
        )
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            raise RuntimeError(f"study {cfg.study!r} has no completed trial")
        best = study.best_trial
        tracking.log_run({f"best_{k}": v for k, v in best.params.items()}, {f"best_{MONITOR}": float(best.value)}, [])  # type: ignore[arg-type]
        final = None
        if cfg.retrain_best:
            best_cfg = replace(
                _suggest(optuna.trial.FixedTrial(best.params), cfg.train), nested=True, run_name=f"{cfg.study}-best"
            )
            final = train(best_cfg)
    return TuneResult(cfg.study, len(study.trials), float(best.value), dict(best.params), final)  # type: ignore[arg-type]
