"""The behavioural penalty moves only what it claims to (recent change the worse way, either way for two-sided
signals), and a stable level cannot move a score because the level channel is no input for event outcomes."""

from __future__ import annotations

import torch

from earlywarn.data.contract import EITHER_WAY
from earlywarn.training.module import RelapseRiskModule, worsened
from earlywarn.training.nets import SignalAdditiveNet
from earlywarn.training.preprocess import CHANNELS


def _inputs(b: int = 64, days: int = 28, n: int = 4) -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randn(b, days, len(CHANNELS) * n)
    observed = CHANNELS.index("observed")
    x[:, :, observed * n : (observed + 1) * n] = (torch.rand(b, days, n) > 0.3).float()
    present = CHANNELS.index("present")
    x[:, :, present * n : (present + 1) * n] = 1.0
    return x


def _part(x: torch.Tensor, name: str, n: int = 4) -> torch.Tensor:
    i = CHANNELS.index(name)
    return x[:, :, i * n : (i + 1) * n]


def test_worsening_moves_only_recent_observed_days_of_directed_signals_the_worse_way():
    x = _inputs()
    worse = torch.tensor([-1.0, 0.0, 1.0, float(EITHER_WAY)])  # lower is worse, none, higher is worse, either way
    moved = worsened(x, worse, recent_days=7)
    delta = moved - x
    for name in ("level", "observed", "since_seen", "present"):
        assert torch.equal(_part(delta, name), torch.zeros_like(_part(delta, name)))
    lean = torch.sign((_part(x, "deviation")[:, -7:] * _part(x, "observed")[:, -7:]).sum(dim=1))[:, 3]
    for name in ("deviation", "personal_z"):
        d = _part(delta, name)
        assert torch.equal(d[:, :-7], torch.zeros_like(d[:, :-7]))  # the baseline days are never touched
        assert (d[:, :, 0] <= 0).all() and (d[:, :, 2] >= 0).all() and (d[:, :, 1] == 0).all()
        # A two-sided signal moves further the way it already leans from the person's baseline.
        assert ((d[:, -7:, 3] * lean[:, None]) >= 0).all() and (d[:, :, 3] != 0).any()
        assert (d[:, -7:][_part(x, "observed")[:, -7:] == 0] == 0).all()  # unobserved days stay missing


def test_the_penalty_joins_the_loss_only_when_weighted():
    x, y = _inputs(), (torch.rand(64) > 0.8).float()
    torch.manual_seed(2)
    net = SignalAdditiveNet(4, 28, hidden=8, dropout=0.0)
    with torch.no_grad():
        net.term_weight.mul_(30)  # a random net is far from monotone
    plain = RelapseRiskModule(net, worse=(-1, 0, 1, EITHER_WAY))
    weighted = RelapseRiskModule(net, worse=(-1, 0, 1, EITHER_WAY), behaviour_weight=1.0)
    torch.manual_seed(1)
    base = plain.training_step((x, y), 0)
    torch.manual_seed(1)
    with_penalty = weighted.training_step((x, y), 0)
    assert with_penalty > base


def test_a_stable_level_moves_no_term_without_the_level_channel():
    """Deviations are the same for any constant shift of a person's days, so without the level channel (event
    outcomes) a person who always sleeps less scores exactly as if they slept as much as anyone."""
    x = _inputs()
    moved = x.clone()
    _part(moved, "level")[:] += 2.5
    for level, same in ((False, True), (True, False)):
        torch.manual_seed(0)
        net = SignalAdditiveNet(4, 28, hidden=8, dropout=0.0, level=level).eval()
        assert torch.equal(net(x), net(moved)) is same
