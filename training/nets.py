"""Architectures (plain nn.Modules), each additive over signals: one term per signal, so what drove a score is exact.

logit = offset(present) + gain(present) · Σ_f term_f(the signal's own days). A signal's term sees only that signal's
window, so its change from the person's usual days is its whole contribution to the score: drivers need no gradients
and add up to the score's change by construction. `offset` and `gain` depend only on which signals a partner sends at
all, so a partner with a wearable and no phone gets a scale fitted for what it sends (trained with whole sources
dropped at random, see datamodule.py), and a signal never sent moves nothing."""

from __future__ import annotations

import torch
from torch import nn

from earlywarn.training.choices import ModelKind
from earlywarn.training.preprocess import CHANNELS


def channel(x: torch.Tensor, name: str, n_features: int) -> torch.Tensor:
    """[B, L, channels x F] -> [B, L, F]: one input channel of every signal."""
    i = CHANNELS.index(name)
    return x[..., i * n_features : (i + 1) * n_features]


class AdditiveNet(nn.Module):
    """The presence-dependent offset and gain around per-signal terms; subclasses define `features` and the last,
    linear layer (`term_weight` [F, H], `term_bias` [F])."""

    term_weight: nn.Parameter
    term_bias: nn.Parameter
    term_covariance: torch.Tensor

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features
        self.presence = nn.Linear(n_features, 2, bias=False)  # which signals are absent -> (offset, log gain)
        nn.init.zeros_(self.presence.weight)
        self.base = nn.Parameter(torch.tensor(-3.0))  # about the log-odds of a 5% event rate

    def init_covariance(self) -> None:
        """The buffer for the clustered covariance of how the terms combine ([intercept, one weight per signal]), set
        after training and saved with the weights; zero until then (an interval from the missing days alone)."""
        self.register_buffer("term_covariance", torch.zeros(self.n_features + 1, self.n_features + 1))

    def present(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F] 1 where the signal arrived on some day of the person's input history."""
        return channel(x, "present", self.n_features)[:, 0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F, H] what each signal's last, linear layer reads."""
        raise NotImplementedError

    def term(self, features: torch.Tensor) -> torch.Tensor:
        """[B, F, H] -> [B, F]: each signal's term (linear in `features` with `term_weight`)."""
        return (features * self.term_weight).sum(-1) + self.term_bias

    def terms(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, channels x F] -> [B, F] each signal's term."""
        return self.term(self.features(x))

    def scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """([B] offset, [B] gain) for the signals each input carries. With every signal present the gain is 1 and the
        offset `base`: the terms carry the scale, and a partner sending less gets only its adjustment (a free gain
        would trade off against the terms, and weight decay would hand the whole scale to it)."""
        offset, log_gain = nn.functional.linear(self.present(x) - 1, self.presence.weight).unbind(-1)
        return self.base + offset, torch.exp(log_gain)

    def combine(self, terms: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        offset, gain = self.scale(x)
        return offset + gain * terms.sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, channels x F] -> [B] logits."""
        return self.combine(self.terms(x), x)


class SignalAdditiveNet(AdditiveNet):
    """Per signal, a two-layer MLP over the window's days (deviation from the person's baseline, in raw and own SDs,
    whether observed, days since last seen; with `level`, the scaled value itself) gives the signal's term.

    The level channel is left out for event outcomes, so a person's stable level alone cannot move the score (the
    deviations are the same for any constant shift): level-invariance by construction, not by a penalty. Case-control
    labels are a lasting difference between people, which only the level shows."""

    def __init__(self, n_features: int, lookback: int, hidden: int = 16, dropout: float = 0.3, level: bool = False):
        super().__init__(n_features)
        self.lookback = lookback
        names = [c for c in CHANNELS if c != "present" and (level or c != "level")]
        self.inputs = [CHANNELS.index(c) for c in names]
        n_in = len(names) * lookback
        self.w1 = nn.Parameter(torch.randn(n_features, n_in, hidden) / n_in**0.5)
        self.b1 = nn.Parameter(torch.zeros(n_features, 1, hidden))
        self.w2 = nn.Parameter(torch.randn(n_features, hidden, hidden) / hidden**0.5)
        self.b2 = nn.Parameter(torch.zeros(n_features, 1, hidden))
        self.term_weight = nn.Parameter(torch.randn(n_features, hidden) / hidden**0.5)
        self.term_bias = nn.Parameter(torch.zeros(n_features))
        self.drop = nn.Dropout(dropout)
        self.init_covariance()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b, days, _ = x.shape
        per_signal = x.view(b, days, len(CHANNELS), self.n_features)[:, :, self.inputs]
        z = per_signal.permute(3, 0, 2, 1).reshape(self.n_features, b, len(self.inputs) * days)  # [F, B, channels x days]
        h = self.drop(nn.functional.gelu(torch.baddbmm(self.b1, z, self.w1)))
        h = self.drop(nn.functional.gelu(torch.baddbmm(self.b2, h, self.w2)))
        return h.transpose(0, 1)  # [B, F, H]


class SummaryLogisticNet(AdditiveNet):
    """Logistic regression (L2 through the optimiser's weight decay) on per-signal window summaries: the recent week's
    level, deviation from the personal baseline and own-SD deviation, its day-to-day variability (for sleep midpoint
    this is circadian regularity), its change from the window's earlier days, and the share of days missing."""

    SUMMARIES = ("level", "deviation", "personal_z", "variability", "change", "missing")

    def __init__(self, n_features: int, recent_days: int = 7):
        super().__init__(n_features)
        self.recent_days = recent_days
        self.term_weight = nn.Parameter(torch.zeros(n_features, len(self.SUMMARIES)))
        self.term_bias = nn.Parameter(torch.zeros(n_features))
        self.init_covariance()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        n, recent, earlier = self.n_features, slice(-self.recent_days, None), slice(None, -self.recent_days)
        observed = channel(x, "observed", n)

        def mean(name: str, days: slice, power: int = 1) -> torch.Tensor:
            seen = observed[:, days]
            return (channel(x, name, n)[:, days] ** power * seen).sum(dim=1) / seen.sum(dim=1).clamp(min=1)

        z = mean("personal_z", recent)
        variability = (mean("personal_z", recent, 2) - z**2).clamp(min=0).sqrt()
        has_earlier = (observed[:, earlier].sum(dim=1) > 0).float()  # no earlier days: no change, not a change from 0
        change = (mean("deviation", recent) - mean("deviation", earlier)) * has_earlier
        missing = (1 - observed.mean(dim=1)) * self.present(x)
        return torch.stack([mean("level", recent), mean("deviation", recent), z, variability, change, missing], dim=-1)


def build_net(kind: ModelKind, n_features: int, lookback: int, hparams: dict) -> AdditiveNet:
    """The architecture for a model kind, sized from the data (number of features, lookback), not repeated config."""
    if kind == "additive":
        return SignalAdditiveNet(
            n_features,
            lookback,
            int(hparams.get("hidden", 16)),
            float(hparams.get("dropout", 0.3)),
            bool(hparams.get("level", False)),
        )
    if kind == "baseline":
        if hparams.get("summaries") != list(SummaryLogisticNet.SUMMARIES):
            raise ValueError("this baseline model was made by an older release with other window summaries; train it again")
        return SummaryLogisticNet(n_features)
    raise ValueError(f"unknown model kind {kind!r}; choose additive or baseline")
