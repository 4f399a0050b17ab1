"""The names a training config chooses between, importable without torch (the CLI offers them as choices)."""

from __future__ import annotations

from typing import Literal

ModelKind = Literal["additive", "baseline"]
# auto: nested-CV choice between the two for cohorts of at most 200 people, the sequence model above; choose: always
ModelChoice = Literal["auto", "choose", "additive", "baseline"]
Method = Literal["spline", "platt", "isotonic"]  # calibration of the raw logits
