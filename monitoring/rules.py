"""Drift and quality alert rules: each a measured value, its limit in the thresholds, and the message the alert carries."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from earlywarn.data.summary import MISSING_SUFFIX


@dataclass(frozen=True)
class Thresholds:
    """Alert limits (a TOML file with a [thresholds] table can override any of them)."""

    min_rows: int = 50  # below this many predictions, or
    min_participants: int = 20  # this many people, say there is too little data to judge instead of testing
    # A column drifts when its normed Wasserstein distance exceeds max(floor, noise * sqrt(1/n + 1/m)), n and m the
    # numbers of participants in the two samples: rows from one person are correlated, so people, not rows, set
    # the noise. 3.5 keeps 19 signals tested every day quiet on same-distribution traffic (docs/monitoring.md).
    drift_noise: float = 3.5
    drift_floor: float = 0.1
    max_drifted_signal_share: float = 0.0  # any drifted signal alerts
    max_high_band_share: float = 0.12  # the model's budget is 5 %; alert when the live high-band share passes this
    max_missing_increase: float = 0.15  # absolute rise in a signal's mean missing share over the reference
    min_auroc: float = 0.65
    max_calibration_gap: float = 0.05  # |mean predicted risk - observed event rate| on matured predictions
    # The same in the high band alone, where alerts are read (the promotion gate holds a model to 0.05 on held-out
    # people; live traffic is noisier): judged once `min_band_windows` matured predictions were in the band.
    max_high_band_gap: float = 0.1
    min_band_windows: int = 50
    min_matured_windows: int = 100
    min_matured_events: int = 10  # positive matured windows needed before AUROC is judged
    # Alert precision: the share of care-team feedback that did not call the escalation a false alarm.
    min_alert_precision: float = 0.2
    min_alert_feedback: int = 20  # feedback on this many escalations before alert precision is judged
    # Per partner (an [alert_budgets] table: `acme = 8`): escalations per 100 participant-months a care team can take.
    alert_budgets: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Thresholds:
        if path is None:
            return cls()
        document = tomllib.loads(path.read_text())
        data, budgets = document.get("thresholds", {}), document.get("alert_budgets", {})
        bad = sorted(k for k, v in budgets.items() if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0)
        if bad:
            raise ValueError(f"{path}: [alert_budgets] expects a positive number per partner; check {bad}")
        unknown = set(data) - set(cls.__dataclass_fields__) | ({"alert_budgets"} & set(data))
        if unknown:
            raise ValueError(f"{path}: unknown threshold(s) {sorted(unknown)}")
        # A quoted number ("0.2") or a boolean would load and fail later, far from the file: refuse it here.
        defaults = cls()
        wanted = {k: int if isinstance(getattr(defaults, k), int) else int | float for k in data}
        wrong = [k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, wanted[k])]
        if wrong:
            kinds = ", ".join(f"{k} ({'a whole number' if wanted[k] is int else 'a number'})" for k in sorted(wrong))
            raise ValueError(f"{path}: [thresholds] expects {kinds}; write each unquoted")
        return cls(**data, alert_budgets={k: float(v) for k, v in budgets.items()})


@dataclass
class Alert:
    scope: str
    kind: str
    subject: str
    value: float
    limit: float
    message: str


@dataclass(frozen=True)
class Rule:
    """One alert rule: the measured value, its limit, whether it applies, and what the alert says."""

    kind: str
    subject: Callable[[_Facts], str]
    value: Callable[[_Facts], float]
    limit: Callable[[_Facts], float]
    message: Callable[[_Facts], str]
    needs_outcomes: bool = False


@dataclass(frozen=True)
class _Facts:
    scope: str
    v: dict[str, float]
    t: Thresholds
    drifted: list[str]
    signals: list[str]
    item: str = ""  # the missing-share column a per-signal rule is about


def _drift_names(f: _Facts) -> str:
    return ", ".join(f"{s} ({f.v[f'ValueDrift:{s}']:.2f})" for s in f.drifted)


RULES: tuple[Rule, ...] = (
    Rule(
        "input_drift",
        lambda f: ",".join(f.drifted),
        lambda f: len(f.drifted) / max(len(f.signals), 1) if f.drifted else 0.0,
        lambda f: f.t.max_drifted_signal_share,
        lambda f: (
            f"[{f.scope}] {len(f.drifted)} of {len(f.signals)} input signals drifted "
            f"(normed Wasserstein > {f.v['signal_drift_limit']:.2f}): {_drift_names(f)}"
        ),
    ),
    Rule(
        "prediction_drift",
        lambda f: "risk",
        lambda f: f.v.get("ValueDrift:risk", 0.0),
        lambda f: f.v["risk_drift_limit"],
        lambda f: (
            f"[{f.scope}] risk scores drifted: distance {f.v['ValueDrift:risk']:.2f} > {f.v['risk_drift_limit']:.2f}; "
            f"mean {f.v.get('MeanValue:risk', float('nan')):.3f}, p90 {f.v.get('QuantileValue:risk:0.9', float('nan')):.3f}"
        ),
    ),
    Rule(
        "high_band_share",
        lambda f: "band",
        lambda f: f.v["high_band_share"],
        lambda f: f.t.max_high_band_share,
        lambda f: (
            f"[{f.scope}] {f.v['high_band_share']:.1%} of live scores are high-band "
            f"(reference {f.v['reference_high_band_share']:.1%}, limit {f.t.max_high_band_share:.0%})"
        ),
    ),
    Rule(
        "performance",
        lambda f: "auroc",
        lambda f: 1.0 - f.v.get("RocAuc", 1.0),  # compared as a shortfall, so every rule alerts when value > limit
        lambda f: 1.0 - f.t.min_auroc,
        lambda f: (
            f"[{f.scope}] AUROC on {f.v['matured_windows']:.0f} matured predictions ({f.v['matured_events']:.0f} with an "
            f"event) is {f.v['RocAuc']:.3f} (< {f.t.min_auroc})"
        ),
        needs_outcomes=True,
    ),
    Rule(
        "calibration",
        lambda f: "risk",
        lambda f: f.v["calibration_gap"],
        lambda f: f.t.max_calibration_gap,
        lambda f: (
            f"[{f.scope}] mean predicted risk {f.v['mean_risk_matured']:.3f} vs observed event rate "
            f"{f.v['MeanValue:label']:.3f} on matured predictions"
        ),
        needs_outcomes=True,
    ),
    Rule(
        "high_band_calibration",
        lambda f: "band",
        lambda f: 0.0 if math.isnan(f.v.get("band_high_gap", math.nan)) else f.v["band_high_gap"],
        lambda f: f.t.max_high_band_gap,
        lambda f: (
            f"[{f.scope}] the high band shows {f.v['band_high_mean_risk']:.3f} on average but "
            f"{f.v['band_high_event_rate']:.3f} of its {f.v['band_high_windows']:.0f} matured predictions had an event"
        ),
        needs_outcomes=True,
    ),
)


_MISSING_RULE = Rule(
    "missing_data",
    lambda f: f.item.removesuffix(MISSING_SUFFIX),
    lambda f: f.v[f.item] - f.v[f"reference_{f.item}"],
    lambda f: f.t.max_missing_increase,
    lambda f: (
        f"[{f.scope}] {f.item.removesuffix(MISSING_SUFFIX)}: missing share up "
        f"{f.v[f.item] - f.v[f'reference_{f.item}']:.0%} over the reference"
    ),
)


def alerts_for(
    scope: str,
    v: dict[str, float],
    t: Thresholds,
    drifted: list[str],
    signals: list[str],
    missing: list[str],
    judged: bool,
) -> list[Alert]:
    """Every rule whose value passes its limit becomes an alert; outcome rules only once predictions have matured."""
    facts = _Facts(scope, v, t, drifted, signals)
    checks = [(r, facts) for r in RULES if judged or not r.needs_outcomes]
    checks += [(_MISSING_RULE, replace(facts, item=m)) for m in missing]
    alerts = []
    for rule, f in checks:
        value, limit = rule.value(f), rule.limit(f)
        if value > limit:
            shown = (1.0 - value, 1.0 - limit) if rule.kind == "performance" else (value, limit)
            alerts.append(Alert(scope, rule.kind, rule.subject(f), *shown, rule.message(f)))
    return alerts
