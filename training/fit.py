"""Fit one network with Lightning: seeded, early-stopped and checkpointed on the one monitored metric."""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import Logger

from earlywarn.data.contract import worse_direction
from earlywarn.data.windows import WindowSet
from earlywarn.training.configs import FitConfig
from earlywarn.training.datamodule import RelapseDataModule
from earlywarn.training.module import MONITOR, MONITOR_MODE, RelapseRiskModule
from earlywarn.training.nets import AdditiveNet, SummaryLogisticNet, build_net
from earlywarn.training.preprocess import Preprocessor

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


def _kind_hparams(cfg: FitConfig, labels: bool) -> dict[str, Any]:
    """What a kind's architecture needs recorded with the bundle so that serving rebuilds exactly it."""
    if cfg.kind == "additive":
        return {"level": labels if cfg.level is None else cfg.level}
    return {"summaries": list(SummaryLogisticNet.SUMMARIES)}


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
    hparams = cfg.hparams | _kind_hparams(cfg, labels)
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
