"""LightningModule: the training logic (loss, optimiser, validation metric) around any risk architecture."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import BinaryAUROC

# The one metric key that drives checkpointing, early stopping, Optuna pruning and what MLflow records as best.
MONITOR = "val_auroc"
MONITOR_MODE = "max"


class RelapseRiskModule(pl.LightningModule):
    """Binary cross-entropy on window labels; AUROC on the validation participants each epoch."""

    def __init__(self, net: nn.Module, lr: float = 2e-3, weight_decay: float = 1e-4):
        super().__init__()
        self.net = net
        self.save_hyperparameters(ignore=["net"])
        self.loss = nn.BCEWithLogitsLoss()
        self.val_auroc = BinaryAUROC()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_auroc.update(torch.sigmoid(logits), y.long())
        self.log("val_loss", self.loss(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(MONITOR, self.val_auroc, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])
