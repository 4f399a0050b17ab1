"""Fit one network with Lightning: seeded, early-stopped and checkpointed on the one monitored metric."""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import Logger

from data.contract import Condition, worse_direction
from data.windows import WindowSet
from training.datamodule import RelapseDataModule
from training.module import MONITOR, MONITOR_MODE, RelapseRiskModule
from training.nets import AdditiveNet, ModelKind, build_net
from training.preprocess import Preprocessor

# Lightning's per-fit banners (hardware, a litlogger advert, "limit_*_batches=1.0 was configured") and a LeafSpec
# deprecation from its own code would flood every training run, and small cohorts run hundreds of fits.
_NOISE = ("litlogger", "available:", "was configured so", "LOCAL_RANK", "`Trainer.fit` stopped")


class _Quiet(logging.Filter):
    """Drops Lightning's per-fit banners; keeps everything else (e.g. that DDP processes registered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in _NOISE)


for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    for _handler in logging.getLogger(_name).handlers:
        _handler.addFilter(_Quiet())
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


@dataclass(frozen=True)
class FitConfig:
    """How to train: architecture, optimiser and Lightning hardware settings (passed straight through)."""

    kind: ModelKind = "additive"
    hparams: dict[str, Any] = field(default_factory=dict)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    max_epochs: int = 12
    patience: int = 3
    seed: int = 0
    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    progress: bool = True
    # Weight of the behavioural penalty (worse recent days never lower a signal's term), 0 = off; see module.py.
    behaviour_weight: float = 0.1
    # Which way is worse: the contract's one direction per signal (depression), or either way for the signals manic
    # and depressive episodes move oppositely (bipolar). See data/contract.py.
    condition: Condition = "depression"
    # The level channel is an input only for case-control labels (None: decided by the outcome mode); see nets.py.
    level: bool | None = None
    # Share of training windows shown as a partner that sends only some sources (wearable, phone, check-ins).
    partial_share: float = 0.5
    limit_batches: float = 1.0  # share of each epoch's batches; below 1 only for benchmarks of very large cohorts


@dataclass
class FitOutcome:
    """The best network (by the monitored metric), its preprocessor and the hyperparameters that rebuild it, and whether
    this process is rank zero."""

    net: AdditiveNet
    preprocessor: Preprocessor
    hparams: dict[str, Any]
    best_score: float
    epochs: int
    is_global_zero: bool


def fit_net(
    cfg: FitConfig,
    train: WindowSet,
    val: WindowSet,
    logger: Logger | None = None,
    callbacks: list[Callback] | None = None,
    labels: bool = False,
) -> FitOutcome:
    """Fit on `train`, early-stopped on `val`; `labels`: the windows carry case-control labels, not events."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = RelapseDataModule(train, val, batch_size=cfg.batch_size, partial_share=cfg.partial_share, seed=cfg.seed)
    hparams = cfg.hparams | ({"level": labels if cfg.level is None else cfg.level} if cfg.kind == "additive" else {})
    net = build_net(cfg.kind, dm.n_features, dm.preprocessor.lookback, hparams)
    worse = [worse_direction(f, cfg.condition) for f in dm.preprocessor.features]
    module = RelapseRiskModule(
        net,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        worse=worse,
        recent_days=dm.preprocessor.recent_days,
        behaviour_weight=cfg.behaviour_weight,
    )
    with tempfile.TemporaryDirectory(prefix="earlywarn-ckpt-") as ckpt_dir:
        checkpoint = ModelCheckpoint(dirpath=ckpt_dir, monitor=MONITOR, mode=MONITOR_MODE, save_top_k=1, save_weights_only=True)
        trainer = pl.Trainer(
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            strategy=cfg.strategy,
            num_nodes=cfg.num_nodes,
            max_epochs=cfg.max_epochs,
            logger=logger if logger is not None else False,
            callbacks=[checkpoint, EarlyStopping(MONITOR, mode=MONITOR_MODE, patience=cfg.patience), *(callbacks or [])],
            enable_progress_bar=cfg.progress,
            enable_model_summary=False,
            deterministic=True,
            num_sanity_val_steps=0,
            limit_train_batches=cfg.limit_batches,
            limit_val_batches=cfg.limit_batches,
        )
        trainer.fit(module, datamodule=dm)
        best = checkpoint.best_model_path
        if trainer.is_global_zero and best and Path(best).exists():
            state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
            module.load_state_dict(state)
        score = checkpoint.best_model_score
    return FitOutcome(
        net=module.net.cpu().eval(),
        preprocessor=dm.preprocessor,
        hparams=hparams,
        best_score=float(score) if score is not None else float("nan"),
        epochs=int(trainer.current_epoch),
        is_global_zero=trainer.is_global_zero,
    )
