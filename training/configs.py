"""The training stage's typed configs that the CLI reads its defaults from: importable without torch or MLflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from earlywarn.data.contract import Condition
from earlywarn.training.choices import ModelKind

EXPERIMENT = "earlywarn"  # the MLflow experiment every run is logged to


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


@dataclass(frozen=True)
class PromoteConfig:
    """Gate limits, and whether to roll back instead of promoting."""

    auroc_tolerance: float = 0.01  # challenger AUROC may trail the champion's by at most this
    max_ece: float = 0.05
    max_subgroup_drop: float = 0.05  # no subgroup's AUROC may fall by more than this
    # Within one attribute, the best and worst subgroup AUROC may differ by at most this much — unless the gap's
    # participant-bootstrap 95% interval reaches zero (small held-out groups: the gap may be noise).
    max_subgroup_gap: float = 0.05
    min_subgroup_people: int = 20  # in each of the two groups, for the gap to be judged at all
    min_subgroup_windows: int = 50
    # Calibration where alerts are read: the high band's mean shown risk may differ from its observed event rate by
    # at most this much (judged once the band holds `min_band_windows` held-out windows), and the calibration slope
    # must lie in [min_slope, max_slope] (1 is ideal; a negative slope would rank people backwards). Each gate fails
    # when the held-out figure is out of bounds and its participant-bootstrap 95% interval excludes the ideal value
    # (gap 0, slope 1): a few dozen held-out people leave both uncertain by several hundredths, and a gate that
    # failed on noise alone would block good models at random.
    max_high_band_gap: float = 0.05
    min_band_windows: int = 50
    min_slope: float = 0.8
    max_slope: float = 1.25
    # The floor for a first model (no champion to compare with): the held-out AUROC's lower 95% bound (participant
    # bootstrap) above this, and at least `min_events` events among the held-out participants.
    min_auroc_lower: float = 0.5
    min_events: int = 20
    bootstrap_reps: int = 200
    # Promote whatever the gates say, recording who overrode them and why (on the model version, in MLflow).
    force: bool = False
    forced_by: str | None = None
    reason: str | None = None
    rollback: bool = False
    experiment: str = EXPERIMENT
