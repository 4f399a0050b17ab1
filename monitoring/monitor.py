"""The monitoring stage: `monitor(cfg) -> MonitorRun` — live predictions against the champion's reference, per partner too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from earlywarn.data import state, store
from earlywarn.data.contract import SIGNALS
from earlywarn.data.summary import MISSING_SUFFIX
from earlywarn.monitoring import prospective
from earlywarn.monitoring.escalation_load import budget_alert, escalation_figures, report_delays
from earlywarn.monitoring.inputs import band_quality, champion_reference, matured_labels, people, scored_rows
from earlywarn.monitoring.rules import Alert, Thresholds, alerts_for

OVERALL = "all"


def default_workspace() -> Path:
    """The Evidently workspace `monitor run` writes and `monitor ui` opens."""
    return state.path("monitoring", "workspace")


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
    washout_days: int = 28  # an escalation opened this soon after an event is post-event
    thresholds: Thresholds = field(default_factory=Thresholds)
    out_dir: Path = field(default_factory=lambda: state.path("monitoring"))
    workspace: Path | None = field(default_factory=default_workspace)
    webhook: str | None = None
    now: dt.datetime | None = None  # default: the wall clock
    # Above this many predictions a uniform sample of participants is judged. The drift limits are set mostly by the
    # reference's participants: 7,000 live people instead of 14,000 widened them by 2 % (0.162 vs 0.159) and saved 6 s.
    max_rows: int = 50_000


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
    recent, aged = scored_rows(recent, numeric), scored_rows(aged, numeric)
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
    scored = store.scored_days(engine, partner=cfg.partners, window_end=(today - cfg.feedback_window, today))
    for result in results:
        mine_opened, mine_outcomes, mine_scored = (_scoped(f, result.scope) for f in (opened, outcomes, scored))
        _judge_feedback(result, mine_opened, cfg.thresholds)
        result.values |= escalation_figures(mine_opened, mine_outcomes, mine_scored, today, cfg.horizon_days, cfg.washout_days)
        result.values |= report_delays(mine_outcomes)
        budget = cfg.thresholds if result.scope != OVERALL or len(partners) != 1 else _for_one(cfg.thresholds, partners[0])
        if (over := budget_alert(result.scope, result.values, budget)) is not None:
            result.alerts.append(over)
            result.verdict = "alert"
    run = MonitorRun(now, results)
    for partner in sorted(store.silent_partners(engine) & (set(partners) | set(cfg.partners or ()))):
        run.overall.notes.append(prospective.report_for(engine, partner, now, cfg.horizon_days, cfg.out_dir / "reports"))
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
    n_people = people(current)
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
        v |= band_quality(matured, t)
        v["matured_windows"], v["matured_events"] = float(len(matured)), float(n_events)
        snapshots.append(perf)
        result.performance_html, _ = evidently_io.save_reports(perf, cfg.out_dir / "reports", f"{stamp}-{scope}-performance")
    else:
        result.notes.append(
            f"{len(matured)} matured predictions with {n_events} events: too few to judge AUROC "
            f"(need {t.min_matured_windows} and {t.min_matured_events} events)"
        )
    result.alerts = alerts_for(scope, v, t, result.drifted_signals, signals, missing, judged)
    result.verdict = "alert" if result.alerts else "ok"
    if workspace is not None:
        result.snapshot_ids = evidently_io.add_to_workspace(workspace, snapshots, scope, signals, f"{stamp} {scope}")
    return result


def _scoped(frame: pd.DataFrame, scope: str) -> pd.DataFrame:
    return frame if scope == OVERALL or frame.empty else frame[frame["partner"] == scope]


def _for_one(t: Thresholds, partner: str) -> Thresholds:
    """With one partner the overall scope is that partner's: its budget applies there."""
    budget = t.alert_budgets.get(partner)
    return t if budget is None else dataclasses.replace(t, alert_budgets={OVERALL: budget})


def _judge_feedback(result: MonitorResult, opened: pd.DataFrame, t: Thresholds) -> None:
    """Escalations opened in the feedback window and what care teams said about them; alert precision (the share of
    feedback that is not "false_alarm") alerts below its limit once enough escalations have feedback. Post-event
    escalations (opened after an event, however late it was reported) count neither way."""
    opened = opened[~opened["post_event"].astype(bool)]
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
