"""Criteria a partner fixes in advance (a TOML [criteria] table), and each judged beside its measured figure."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class CriteriaError(ValueError):
    """A criteria file that cannot be read as one."""


@dataclass(frozen=True)
class Criteria:
    """What a partner's own silent-mode data must show before its care teams see scores (a TOML [criteria] table)."""

    min_people: int = 50  # scored participants
    min_events: int = 10  # reported events
    min_auroc_lower: float = 0.6  # lower end of the participant-bootstrap 95% interval on matured predictions
    max_high_band_gap: float = 0.1  # |mean risk - observed event rate| in the high band, matured predictions
    max_alerts_per_100_participant_months: float = 20.0  # escalations the episode rules would have opened

    @classmethod
    def load(cls, path: Path) -> Criteria:
        data = tomllib.loads(path.read_text()).get("criteria")
        if not isinstance(data, dict):
            raise CriteriaError(f"{path}: no [criteria] table")
        known = {f.name: f.type for f in fields(cls)}
        if unknown := sorted(set(data) - set(known)):
            raise CriteriaError(f"{path}: unknown criteria {unknown}; known: {sorted(known)}")
        if wrong := sorted(k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, int | float)):
            raise CriteriaError(f"{path}: [criteria] expects numbers (unquoted) for {wrong}")
        values: dict[str, Any] = {k: int(v) if known[k] == "int" else float(v) for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class Check:
    criterion: str
    limit: float
    measured: float
    met: bool


def judge(criteria: Criteria, measured: dict[str, float]) -> list[Check]:
    """Each criterion beside its measured figure; an unmeasurable figure (NaN) fails its criterion."""
    m = measured
    rows = [
        ("min_people", criteria.min_people, m["people"], m["people"] >= criteria.min_people),
        ("min_events", criteria.min_events, m["events"], m["events"] >= criteria.min_events),
        ("min_auroc_lower", criteria.min_auroc_lower, m["auroc_ci_low"], m["auroc_ci_low"] >= criteria.min_auroc_lower),
        ("max_high_band_gap", criteria.max_high_band_gap, m["high_band_gap"], m["high_band_gap"] <= criteria.max_high_band_gap),
        (
            "max_alerts_per_100_participant_months",
            criteria.max_alerts_per_100_participant_months,
            m["alerts_per_100_participant_months"],
            m["alerts_per_100_participant_months"] <= criteria.max_alerts_per_100_participant_months,
        ),
    ]
    return [Check(name, float(limit), float(value), bool(ok)) for name, limit, value, ok in rows]
