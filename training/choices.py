"""The names a training config chooses between, importable without torch (the CLI offers them as choices)."""

from __future__ import annotations

from typing import Literal

ModelKind = Literal["additive", "baseline"]
ModelChoice = Literal["additive", "baseline", "auto"]  # auto: both on the same folds, the better one kept
Method = Literal["spline", "platt", "isotonic"]  # calibration of the raw logits
