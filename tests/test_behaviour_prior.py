"""The behavioural penalties move only what they claim to: recent change the worse way, or a stable level."""

from __future__ import annotations

import torch

from training.module import RelapseRiskModule, level_moved, worsened
from training.preprocess import CHANNELS


def _inputs(b: int = 64, days: int = 28, n: int = 3) -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randn(b, days, len(CHANNELS) * n)
    observed = CHANNELS.index("observed")
    x[:, :, observed * n : (observed + 1) * n] = (torch.rand(b, days, n) > 0.3).float()
    return x


def _part(x: torch.Tensor, name: str, n: int = 3) -> torch.Tensor:
    i = CHANNELS.index(name)
    return x[:, :, i * n : (i + 1) * n]


def test_worsening_moves_only_recent_observed_days_of_directed_signals_the_worse_way():
    x = _inputs()
    worse = torch.tensor([-1.0, 0.0, 1.0])  # lower is worse, no direction, higher is worse
    moved = worsened(x, worse, recent_days=7)
    delta = moved - x
    for name in ("level", "observed", "since_seen"):
        assert torch.equal(_part(delta, name), torch.zeros_like(_part(delta, name)))
    for name in ("deviation", "personal_z"):
        d = _part(delta, name)
        assert torch.equal(d[:, :-7], torch.zeros_like(d[:, :-7]))  # the baseline days are never touched
        assert (d[:, :, 0] <= 0).all() and (d[:, :, 2] >= 0).all() and (d[:, :, 1] == 0).all()
        assert (d[:, -7:][_part(x, "observed")[:, -7:] == 0] == 0).all()  # unobserved days stay missing
        assert (d != 0).any()


def test_a_level_move_changes_only_the_level_of_observed_days():
    x = _inputs()
    delta = level_moved(x, 3) - x
    assert torch.equal(_part(delta, "level")[_part(x, "observed") == 0], torch.zeros(int((_part(x, "observed") == 0).sum())))
    assert (_part(delta, "level") != 0).any()
    for name in ("deviation", "personal_z", "observed", "since_seen"):
        assert torch.equal(_part(delta, name), torch.zeros_like(_part(delta, name)))


def test_the_penalties_join_the_loss_only_when_weighted():
    x, y = _inputs(), (torch.rand(64) > 0.8).float()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * len(CHANNELS) * 3, 1), torch.nn.Flatten(0))
    plain = RelapseRiskModule(net, worse=(-1, 0, 1))
    weighted = RelapseRiskModule(net, worse=(-1, 0, 1), behaviour_weight=1.0)
    torch.manual_seed(1)
    base = plain.training_step((x, y), 0)
    torch.manual_seed(1)
    with_penalty = weighted.training_step((x, y), 0)
    assert with_penalty > base  # a random linear net is neither monotone nor level-invariant
