"""The monitoring stage: `monitor(cfg) -> MonitorRun` — live predictions against the champion's reference, per partner too."""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from earlywarn.data import state, store
from earlywarn.data.contract import SIGNALS
from earlywarn.data.summary import MISSING_SUFFIX
from earlywarn.training.calibration import BANDS
from earlywarn.training.evaluate import expected_calibration_error

OVERALL = "all"


def default_workspace() -> Path:
    """The Evidently workspace `monitor run` writes and `monitor ui` opens."""
    return state.path("monitoring", "workspace")


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

    @classmethod
    def load(cls, path: Path | None) -> Thresholds:
        if path is None:
            return cls()
        data = tomllib.loads(path.read_text()).get("thresholds", {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown threshold(s) {sorted(unknown)}")
        # A quoted number ("0.2") or a boolean would load and fail later, far from the file: refuse it here.
        defaults = cls()
        wanted = {k: int if isinstance(getattr(defaults, k), int) else int | float for k in data}
        wrong = [k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, wanted[k])]
        if wrong:
            kinds = ", ".join(f"{k} ({'a whole number' if wanted[k] is int else 'a number'})" for k in sorted(wrong))
            raise ValueError(f"{path}: [thresholds] expects {kinds}; write each unquoted")
        return cls(**data)


@dataclass(frozen=True)
class MonitorConfig:
    """What to compare: which predictions, for which partners, against which reference, with which limits."""

    db_url: str
    since: dt.timedelta = dt.timedelta(days=7)
    partners: tuple[str, ...] | None = None  # None: every partner in the log; each judged alone and all together
    # logged: predictions logged since `now - since`; window_end: predictions whose window ends in that span
    # (backfills, and simulations whose clock is not the wall clock).
    time_basis: Literal["logged", "window_end"] = "logged"
    reference: Path | None = None  # default: the champion's reference sample in MLflow
    horizon_days: int = 14
    outcome_window: dt.timedelta = dt.timedelta(days=28)  # judge predictions whose horizon closed this recently
    feedback_window: dt.timedelta = dt.timedelta(days=90)  # escalations opened this recently count for alert precision
    thresholds: Thresholds = field(default_factory=Thresholds)
    out_dir: Path = field(default_factory=lambda: state.path("monitoring"))
    workspace: Path | None = field(default_factory=default_workspace)
    webhook: str | None = None
    now: dt.datetime | None = None  # default: the wall clock
    # Above this many predictions a uniform sample of participants is judged. The drift limits are set mostly by the
    # reference's participants: 7,000 live people instead of 14,000 widened them by 2 % (0.162 vs 0.159) and saved 6 s.
    max_rows: int = 50_000


@dataclass
class Alert:
    scope: str
    kind: str
    subject: str
    value: float
    limit: float
    message: str


@dataclass
class MonitorResult:
    """The verdict for one scope: all partners together, or one partner."""

    scope: str
    n_current: int
    n_participants: int
    verdict: str  # ok | alert | insufficient_data
    values: dict[str, float] = field(default_factory=dict)
    drifted_signals: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    report_html: Path | None = None
    report_json: Path | None = None
    performance_html: Path | None = None
    snapshot_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class MonitorRun:
    """One monitoring run: the overall result first, then one per partner."""

    now: dt.datetime
    scopes: list[MonitorResult]

    @property
    def overall(self) -> MonitorResult:
        return self.scopes[0]

    def scope(self, name: str) -> MonitorResult:
        return next(s for s in self.scopes if s.scope == name)

    @property
    def alerts(self) -> list[Alert]:
        return [a for s in self.scopes for a in s.alerts]

    @property
    def verdict(self) -> str:
        return "alert" if self.alerts else self.overall.verdict


def champion_reference() -> pd.DataFrame:
    """The reference sample logged with the champion's training run."""
    from earlywarn.training import tracking

    tracking.configure()
    info = tracking.version_info(tracking.CHAMPION)
    if info is None:
        raise LookupError("no champion registered, so there is no reference to compare with")
    return pd.read_parquet(tracking.download(info.run_id, "reference.parquet"))


def matured_labels(preds: pd.DataFrame, outcomes: pd.DataFrame, horizon: int, now: dt.datetime) -> pd.DataFrame:
    """Predictions whose horizon has passed, labelled 1 when the partner reported an event in (end, end + horizon]."""
    end = pd.to_datetime(preds["window_end"])
    matured = preds[end + pd.Timedelta(days=horizon) <= pd.Timestamp(now.date())].copy()
    if matured.empty:
        return matured.assign(label=pd.Series(dtype=int))
    ev = (
        outcomes[["partner", "participant_key", "date"]].copy()
        if not outcomes.empty
        else pd.DataFrame(columns=["partner", "participant_key", "date"])
    )
    ev["date"] = pd.to_datetime(ev["date"])
    matured["_end"] = pd.to_datetime(matured["window_end"])
    joined = matured[["record_id", "partner", "participant_key", "_end"]].merge(ev, on=["partner", "participant_key"], how="left")
    hit = (joined["date"] > joined["_end"]) & (joined["date"] <= joined["_end"] + pd.Timedelta(days=horizon))
    positive = set(joined.loc[hit, "record_id"])
    matured["label"] = matured["record_id"].isin(positive).astype(int)
    return matured.drop(columns="_end")


def _scored(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    out = frame[frame["status"] == "scored"].copy()
    for col in columns:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def _people(frame: pd.DataFrame) -> int:
    return 0 if frame.empty else int(frame[["partner", "participant_key"]].drop_duplicates().shape[0])


def monitor(cfg: MonitorConfig) -> MonitorRun:
    """Judge recent predictions (and matured ones, once outcomes are in) overall and per partner; write reports,
    workspace snapshots and alerts."""
    now = cfg.now or dt.datetime.now(dt.UTC)
    engine = store.engine_for(cfg.db_url)
    today = now.date()
    if cfg.time_basis == "window_end":
        first = today - dt.timedelta(days=max(cfg.since.days, 1) - 1)
        select: dict[str, Any] = {"partner": cfg.partners, "window_end": (first, today)}
    else:
        select = {"since": now - cfg.since, "partner": cfg.partners}
    total = store.count_predictions(engine, **select)
    # Drift statistics need thousands of people, not millions: past max_rows, judge a uniform sample of participants.
    share = min(1.0, cfg.max_rows / total) if total else 1.0
    recent = store.read_predictions(engine, **select, sample=share)
    closed = today - dt.timedelta(days=cfg.horizon_days)
    matured_select: dict[str, Any] = {
        "partner": cfg.partners,
        "window_end": (closed - dt.timedelta(days=cfg.outcome_window.days - 1), closed),
    }
    aged_total = store.count_predictions(engine, **matured_select)
    aged_share = min(1.0, cfg.max_rows / aged_total) if aged_total else 1.0
    aged = store.read_predictions(engine, **matured_select, sample=aged_share)
    outcomes = store.read_outcomes(engine, partner=cfg.partners)
    reference = pd.read_parquet(cfg.reference) if cfg.reference else champion_reference()
    signals = [c for c in reference.columns if c in SIGNALS or c + MISSING_SUFFIX in reference.columns]
    signals = [s for s in signals if s != "days_observed" and not s.endswith(MISSING_SUFFIX)]
    missing = [s + MISSING_SUFFIX for s in signals]
    numeric = [*signals, *missing, "risk", "days_observed"]
    recent, aged = _scored(recent, numeric), _scored(aged, numeric)
    matured = matured_labels(aged, outcomes, cfg.horizon_days, now) if not aged.empty else aged

    partners = sorted(set(recent["partner"]) if not recent.empty else set(cfg.partners or ()))
    scopes = [(OVERALL, recent, matured)]
    if len(partners) > 1:  # with one partner, its scope is the overall one
        scopes += [
            (p, recent[recent["partner"] == p], matured[matured["partner"] == p] if not matured.empty else matured)
            for p in partners
        ]
    from earlywarn.monitoring import evidently_io

    workspace = evidently_io.open_workspace(cfg.workspace) if cfg.workspace is not None else None
    results = [_judge(cfg, now, scope, cur, mat, reference, signals, missing, workspace) for scope, cur, mat in scopes]
    opened = store.read_alerts(engine, partner=cfg.partners, since=today - cfg.feedback_window)
    for result in results:
        mine = opened if result.scope == OVERALL else opened[opened["partner"] == result.scope]
        _judge_feedback(result, mine, cfg.thresholds)
    run = MonitorRun(now, results)
    if share < 1.0:
        run.overall.notes.append(f"{total} predictions in the window: judged a uniform sample of {share:.1%} of participants")
    if run.alerts:
        _record(cfg, run)
    return run


def _judge(
    cfg: MonitorConfig,
    now: dt.datetime,
    scope: str,
    current: pd.DataFrame,
    matured: pd.DataFrame,
    reference: pd.DataFrame,
    signals: list[str],
    missing: list[str],
    workspace: Any,
) -> MonitorResult:
    from earlywarn.monitoring import evidently_io

    t = cfg.thresholds
    n_people = _people(current)
    result = MonitorResult(scope=scope, n_current=len(current), n_participants=n_people, verdict="ok")
    if len(current) < t.min_rows or n_people < t.min_participants:
        result.verdict = "insufficient_data"
        result.notes.append(
            f"{len(current)} scored predictions from {n_people} participants in the window; at least {t.min_rows} "
            f"predictions from {t.min_participants} participants are needed to judge drift"
        )
        return result
    ref_people = int(reference["participant"].nunique()) if "participant" in reference else len(reference)
    heldout = reference[reference["risk"].notna()]
    ref_scored = int(heldout["participant"].nunique()) if "participant" in heldout else len(heldout)
    signal_limit = max(t.drift_floor, t.drift_noise * math.sqrt(1 / n_people + 1 / ref_people))
    risk_limit = max(t.drift_floor, t.drift_noise * math.sqrt(1 / n_people + 1 / max(ref_scored, 1)))
    stamp = now.strftime("%Y%m%dT%H%M%S")
    naive = now.replace(tzinfo=None)
    current = current.assign(**{evidently_io.MISSING_SHARE: current[missing].mean(axis=1)})
    reference = reference.assign(**{evidently_io.MISSING_SHARE: reference[missing].mean(axis=1)})
    drift = evidently_io.drift_report(reference, current, signals, signal_limit, risk_limit, naive)
    v = evidently_io.metric_values(drift)
    v["signal_drift_limit"], v["risk_drift_limit"] = signal_limit, risk_limit
    v["high_band_share"] = float((current["band"] == "high").mean())
    v["reference_high_band_share"] = float((heldout["band"] == "high").mean())
    for m in missing:
        v[f"{m}"], v[f"reference_{m}"] = float(current[m].mean()), float(reference[m].mean())
    result.values = v
    result.drifted_signals = [s for s in signals if v.get(f"ValueDrift:{s}", 0.0) > signal_limit]
    snapshots = [drift]
    result.report_html, result.report_json = evidently_io.save_reports(drift, cfg.out_dir / "reports", f"{stamp}-{scope}-drift")

    n_events = int(matured["label"].sum()) if not matured.empty else 0
    judged = len(matured) >= t.min_matured_windows and n_events >= t.min_matured_events and n_events < len(matured)
    if judged:
        perf = evidently_io.performance_report(matured, naive)
        v |= {k: x for k, x in evidently_io.metric_values(perf).items() if k in ("RocAuc", "MeanValue:label")}
        v |= _band_quality(matured, t)
        v["matured_windows"], v["matured_events"] = float(len(matured)), float(n_events)
        snapshots.append(perf)
        result.performance_html, _ = evidently_io.save_reports(perf, cfg.out_dir / "reports", f"{stamp}-{scope}-performance")
    else:
        result.notes.append(
            f"{len(matured)} matured predictions with {n_events} events: too few to judge AUROC "
            f"(need {t.min_matured_windows} and {t.min_matured_events} events)"
        )
    result.alerts = _alerts(scope, v, t, result.drifted_signals, signals, missing, judged)
    result.verdict = "alert" if result.alerts else "ok"
    if workspace is not None:
        result.snapshot_ids = evidently_io.add_to_workspace(workspace, snapshots, scope, signals, f"{stamp} {scope}")
    return result


def _judge_feedback(result: MonitorResult, opened: pd.DataFrame, t: Thresholds) -> None:
    """Escalations opened in the feedback window and what care teams said about them; alert precision (the share of
    feedback that is not "false_alarm") alerts below its limit once enough escalations have feedback."""
    answered = opened[opened["action"].notna()]
    v = {
        "escalations_opened": float(len(opened)),
        "escalations_with_feedback": float(len(answered)),
        "escalation_feedback_share": float(len(answered) / len(opened)) if len(opened) else float("nan"),
        "escalations_acted_on": float(answered["action"].isin(store.ACTED_ON).sum()),
        "escalations_false_alarm": float((answered["action"] == "false_alarm").sum()),
    }
    v["alert_precision"] = 1.0 - v["escalations_false_alarm"] / len(answered) if len(answered) else float("nan")
    result.values |= v
    if len(answered) < t.min_alert_feedback:
        result.notes.append(
            f"feedback on {len(answered)} of {len(opened)} escalations: too few to judge alert precision "
            f"(need {t.min_alert_feedback})"
        )
    elif v["alert_precision"] < t.min_alert_precision:
        result.alerts.append(
            Alert(
                result.scope,
                "alert_precision",
                "escalations",
                v["alert_precision"],
                t.min_alert_precision,
                f"[{result.scope}] care teams called {v['escalations_false_alarm']:.0f} of {len(answered)} escalations "
                f"false alarms: alert precision {v['alert_precision']:.0%} (< {t.min_alert_precision:.0%})",
            )
        )
        result.verdict = "alert"


def _band_quality(matured: pd.DataFrame, t: Thresholds) -> dict[str, float]:
    """Precision and recall of the high band, calibration overall, and per band the mean predicted risk beside the
    observed event rate (`band_<name>_mean_risk`, `_event_rate`, `_windows`, `_gap`; the gap only with
    `min_band_windows` matured predictions in the band), on matured predictions."""
    from sklearn.metrics import precision_score, recall_score

    label = matured["label"].to_numpy(int)
    high = (matured["band"] == "high").to_numpy()
    risk = matured["risk"].to_numpy(float)
    out = {
        "high_band_precision": float(precision_score(label, high, zero_division=0)),
        "high_band_recall": float(recall_score(label, high, zero_division=0)),
        "mean_risk_matured": float(risk.mean()),
        "calibration_gap": float(abs(risk.mean() - label.mean())),
        "ece": expected_calibration_error(label, risk),  # the same ECE the model card reports
    }
    for band in BANDS:
        inside = (matured["band"] == band).to_numpy()
        key = f"band_{band}"
        out[f"{key}_windows"] = float(inside.sum())
        out[f"{key}_mean_risk"] = float(risk[inside].mean()) if inside.any() else float("nan")
        out[f"{key}_event_rate"] = float(label[inside].mean()) if inside.any() else float("nan")
        judged = inside.sum() >= t.min_band_windows
        out[f"{key}_gap"] = abs(out[f"{key}_mean_risk"] - out[f"{key}_event_rate"]) if judged else float("nan")
    return out


@dataclass(frozen=True)
class _Rule:
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


_RULES: tuple[_Rule, ...] = (
    _Rule(
        "input_drift",
        lambda f: ",".join(f.drifted),
        lambda f: len(f.drifted) / max(len(f.signals), 1) if f.drifted else 0.0,
        lambda f: f.t.max_drifted_signal_share,
        lambda f: (
            f"[{f.scope}] {len(f.drifted)} of {len(f.signals)} input signals drifted "
            f"(normed Wasserstein > {f.v['signal_drift_limit']:.2f}): {_drift_names(f)}"
        ),
    ),
    _Rule(
        "prediction_drift",
        lambda f: "risk",
        lambda f: f.v.get("ValueDrift:risk", 0.0),
        lambda f: f.v["risk_drift_limit"],
        lambda f: (
            f"[{f.scope}] risk scores drifted: distance {f.v['ValueDrift:risk']:.2f} > {f.v['risk_drift_limit']:.2f}; "
            f"mean {f.v.get('MeanValue:risk', float('nan')):.3f}, p90 {f.v.get('QuantileValue:risk:0.9', float('nan')):.3f}"
        ),
    ),
    _Rule(
        "high_band_share",
        lambda f: "band",
        lambda f: f.v["high_band_share"],
        lambda f: f.t.max_high_band_share,
        lambda f: (
            f"[{f.scope}] {f.v['high_band_share']:.1%} of live scores are high-band "
            f"(reference {f.v['reference_high_band_share']:.1%}, limit {f.t.max_high_band_share:.0%})"
        ),
    ),
    _Rule(
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
    _Rule(
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
)
_RULES += (
    _Rule(
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
_MISSING_RULE = _Rule(
    "missing_data",
    lambda f: f.item.removesuffix(MISSING_SUFFIX),
    lambda f: f.v[f.item] - f.v[f"reference_{f.item}"],
    lambda f: f.t.max_missing_increase,
    lambda f: (
        f"[{f.scope}] {f.item.removesuffix(MISSING_SUFFIX)}: missing share up "
        f"{f.v[f.item] - f.v[f'reference_{f.item}']:.0%} over the reference"
    ),
)


def _alerts(
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
    checks = [(r, facts) for r in _RULES if judged or not r.needs_outcomes]
    checks += [(_MISSING_RULE, replace(facts, item=m)) for m in missing]
    alerts = []
    for rule, f in checks:
        value, limit = rule.value(f), rule.limit(f)
        if value > limit:
            shown = (1.0 - value, 1.0 - limit) if rule.kind == "performance" else (value, limit)
            alerts.append(Alert(scope, rule.kind, rule.subject(f), *shown, rule.message(f)))
    return alerts


def _record(cfg: MonitorConfig, run: MonitorRun) -> None:
    """Append the run's alerts to alerts.jsonl and, when configured, POST them to a webhook."""
    payload: dict[str, Any] = {
        "time": run.now.isoformat(),
        "scopes": {s.scope: {"predictions": s.n_current, "verdict": s.verdict, "report": str(s.report_html)} for s in run.scopes},
        "alerts": [asdict(a) for a in run.alerts],
    }
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.out_dir / "alerts.jsonl", "a") as fh:
        fh.write(json.dumps(payload, default=float) + "\n")
    if cfg.webhook:
        import httpx

        try:
            httpx.post(cfg.webhook, json=payload, timeout=10).raise_for_status()
        except httpx.HTTPError as err:
            run.overall.notes.append(f"webhook failed: {type(err).__name__}")
