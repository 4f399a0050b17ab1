"""LightningModule: the training logic (loss, optimiser, validation metric) around any additive risk architecture."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import BinaryAUROC

from earlywarn.data.contract import EITHER_WAY
from earlywarn.training.nets import AdditiveNet, channel

# The one metric key that drives checkpointing, early stopping, Optuna pruning and what MLflow records as best.
MONITOR = "val_auroc"
MONITOR_MODE = "max"


class RelapseRiskModule(pl.LightningModule):
    """Binary cross-entropy on window labels; AUROC on the validation participants each epoch.

    With a positive `behaviour_weight` a soft monotone constraint from domain knowledge joins the loss (a pointwise
    penalty in the manner of Sill 1998 and Gupta et al. 2019): moving the recent observed days of a signal the worse
    way for the model's condition (`worse`: +1 higher is worse, -1 lower is worse, EITHER_WAY further from the person's
    baseline either way, 0 none), relative to the person's baseline, must not lower that signal's term, so it cannot
    lower the score — e.g. a week of shorter sleep never lowers a person's risk. The penalty is on each signal's own
    term, which is what a driver shows. (A stable personal level cannot move the score: the level channel is not an
    input for event outcomes; see nets.py.)"""

    def __init__(
        self,
        net: AdditiveNet,
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
        if weight > 0:  # one pass over the batch and its moved copy: fewer, larger matrix products
            moved = worsened(x, self._worse, self.hparams["recent_days"])
            terms, worse_terms = self.net.terms(torch.cat((x, moved))).split(len(y))
        else:
            terms = self.net.terms(x)
        loss = self.loss(self.net.combine(terms, x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        if weight > 0:
            behaviour = torch.relu(terms - worse_terms).sum(-1).mean()
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


def worsened(x: torch.Tensor, worse: torch.Tensor, recent_days: int) -> torch.Tensor:
    """Model inputs [B, days, channels x F] whose recent observed days moved the worse way on a random half of the
    directed signals, by up to 3 robust SDs (the behavioural checks move sleep by about 2.5), in the channels that
    measure change from the person's baseline. A two-sided signal (EITHER_WAY) moves further the way it already
    deviates (a random way where it does not)."""
    n = worse.numel()
    worse = worse.to(x.device).view(1, 1, n)
    observed = channel(x, "observed", n)[:, -recent_days:]
    deviation = channel(x, "deviation", n)[:, -recent_days:]
    lean = torch.sign((deviation * observed).sum(dim=1, keepdim=True))
    lean = torch.where(lean == 0, torch.randint(0, 2, lean.shape, device=x.device) * 2.0 - 1, lean)
    direction = torch.where(worse == EITHER_WAY, lean, worse)
    chosen = (torch.rand(x.shape[0], 1, n, device=x.device) < 0.5) * direction
    step = 3.0 * torch.rand(x.shape[0], 1, 1, device=x.device) * chosen
    moved = x.clone()
    for name in ("deviation", "personal_z"):
        part = channel(moved, name, n)  # a view: adding to it moves `moved`
        part[:, -recent_days:] += step * observed
    return moved
