"""LightningModule: the training logic (loss, optimiser, validation metric) around any risk architecture."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import BinaryAUROC

from training.preprocess import CHANNELS

# The one metric key that drives checkpointing, early stopping, Optuna pruning and what MLflow records as best.
MONITOR = "val_auroc"
MONITOR_MODE = "max"


class RelapseRiskModule(pl.LightningModule):
    """Binary cross-entropy on window labels; AUROC on the validation participants each epoch.

    With a positive `behaviour_weight` two soft constraints from domain knowledge join the loss (pointwise penalties
    in the manner of Sill 1998 and Gupta et al. 2019):
    - monotone: moving the recent observed days of the signals with a direction in the data contract (`worse`: +1
      higher is worse, -1 lower is worse, 0 none) the worse way, relative to the person's baseline, must not lower
      the score — e.g. a week of shorter sleep never lowers a person's risk;
    - level-invariant: moving a signal's level on every day (a person who always sleeps less) must not move it."""

    def __init__(
        self,
        net: nn.Module,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        worse: Sequence[int] = (),
        recent_days: int = 7,
        behaviour_weight: float = 0.0,
    ):
        super().__init__()
        self.net = net
        self.save_hyperparameters(ignore=["net"])
        self.loss = nn.BCEWithLogitsLoss()
        self.val_auroc = BinaryAUROC()
        self._worse = torch.tensor(list(worse), dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        weight = self.hparams["behaviour_weight"]
        if weight > 0:  # one forward pass over the batch and its two moved copies: fewer, larger matrix products
            moved = (worsened(x, self._worse, self.hparams["recent_days"]), level_moved(x, len(self._worse)))
            logits, worse_logits, level_logits = self(torch.cat((x, *moved))).split(len(y))
        else:
            logits = self(x)
        loss = self.loss(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        if weight > 0:
            behaviour = torch.relu(logits - worse_logits).mean() + (logits - level_logits).abs().mean()
            self.log("train_behaviour", behaviour, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
            loss = loss + weight * behaviour
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_auroc.update(torch.sigmoid(logits), y.long())
        self.log("val_loss", self.loss(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(MONITOR, self.val_auroc, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])


def _channel(name: str, n: int) -> slice:
    i = CHANNELS.index(name)
    return slice(i * n, (i + 1) * n)


def worsened(x: torch.Tensor, worse: torch.Tensor, recent_days: int) -> torch.Tensor:
    """Model inputs [B, days, channels x F] whose recent observed days moved the worse way on a random half of the
    directed signals, by up to 3 robust SDs (the behavioural checks move sleep by about 2.5), in the channels that
    measure change from the person's baseline."""
    n = worse.numel()
    chosen = (torch.rand(x.shape[0], 1, n, device=x.device) < 0.5) * worse.to(x.device).view(1, 1, n)
    step = 3.0 * torch.rand(x.shape[0], 1, 1, device=x.device) * chosen
    recent = x[:, -recent_days:]
    moved = x.clone()
    for name in ("deviation", "personal_z"):
        moved[:, -recent_days:, _channel(name, n)] += step * recent[:, :, _channel("observed", n)]
    return moved


def level_moved(x: torch.Tensor, n: int) -> torch.Tensor:
    """Model inputs whose level channel moved by a random amount per person and signal on every observed day: the
    same person at another stable level, nothing changed against their own baseline."""
    moved = x.clone()
    shift = torch.randn(x.shape[0], 1, n, device=x.device)
    moved[:, :, _channel("level", n)] += shift * x[:, :, _channel("observed", n)]
    return moved
