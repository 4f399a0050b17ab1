"""External validation of a registered model on a partner's own labelled data: a report a governance board can read,
recorded with the model version in MLflow."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from earlywarn.data import state
from earlywarn.data.contract import PARTICIPANT
from earlywarn.data.ingest import GridData, load_grid
from earlywarn.data.windows import build_windows
from earlywarn.training import tracking
from earlywarn.training.criteria import Check, Criteria, judge
from earlywarn.training.evaluate import evaluate
from earlywarn.training.plots import save_plots

VALIDATION_EXPERIMENT = "earlywarn-validation"
SECTIONS = {  # what the report shows, in TRIPOD+AI's order where it applies
    "cohort": ("people", "participant_days", "events", "windows", "prevalence", "first_date", "last_date"),
    "discrimination": ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low", "auprc_ci_high"),
    "calibration": ("calibration_slope", "calibration_intercept", "ece", "brier", "high_band_mean_risk",
                    "high_band_event_rate", "high_band_calibration_gap", "elevated_band_mean_risk",
                    "elevated_band_event_rate", "elevated_band_calibration_gap"),
    "decisions": ("sensitivity", "specificity", "ppv_high", "npv_high", "net_benefit_high", "net_benefit_elevated"),
    "episodes": ("episode_ppv", "episode_ppv_ci_low", "episode_ppv_ci_high", "event_sensitivity_episodes",
                 "lead_time_p10_days", "lead_time_p25_days", "lead_time_p50_days", "lead_time_p75_days",
                 "lead_time_p90_days", "alerts_per_100_participant_months"),
}  # fmt: skip


@dataclass(frozen=True)
class EvaluateConfig:
    """A partner's features and outcomes files, the registered model to check, and the criteria for the verdict."""

    features: Path
    outcomes: Path
    model: str = "champion"  # an alias or a version number
    out: Path = field(default_factory=lambda: state.path("evaluate"))
    criteria: Criteria = field(default_factory=Criteria)
    attributes: Path | None = None  # participants.csv beside the features by default (subgroups)
    real: bool = True  # real people's data (a synthetic check is recorded as such and never counts as real evidence)
    bootstrap_reps: int = 200
    seed: int = 0


@dataclass
class EvaluateResult:
    version: str
    report_html: Path
    report_json: Path
    checks: list[Check]
    meets: bool
    run_id: str
    metrics: dict[str, float]


def evaluate_external(cfg: EvaluateConfig) -> EvaluateResult:
    """Score every window of the partner's data with the registered model, measure what a care team would meet,
    judge it against the criteria, write the report and record it with the model version."""
    tracking.configure()
    info = tracking.version_info(cfg.model)
    if info is None:
        raise ValueError(f"no registered model version or alias {cfg.model!r}")
    bundle = tracking.load_bundle(info.version)
    data = load_grid(cfg.features, cfg.outcomes, pad=bundle.window.lookback - 1)
    windows = build_windows(data.panel, data.outcomes, bundle.window, data.mode)
    risk = bundle.assess(windows.history(None, bundle.input_days)).risk
    frame, events = windows.frame(), data.outcomes if data.mode == "event" else None
    attributes_path = cfg.attributes or cfg.features.parent / "participants.csv"
    attributes = pd.read_csv(attributes_path, dtype={PARTICIPANT: str}) if attributes_path.exists() else None
    bands = bundle.bands
    metrics = evaluate(
        frame, risk, bands.high, bundle.window.horizon, events, attributes, None, cfg.bootstrap_reps, cfg.seed,
        bands.elevated, washout=bundle.window.washout_days,
    )  # fmt: skip
    cohort = _cohort(data, frame)
    measured = {"people": cohort["people"], "events": cohort["events"], "auroc_ci_low": metrics["auroc_ci_low"]}
    measured["high_band_gap"] = abs(metrics.get("high_band_calibration_gap", float("nan")))
    measured["alerts_per_100_participant_months"] = metrics.get("alerts_per_100_participant_months", float("nan"))
    checks = judge(cfg.criteria, measured)
    out = cfg.out / f"v{info.version}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    figures = save_plots(frame, risk, {"high": bands.high, "elevated": bands.elevated}, out / "figures", events)
    record = {
        "model_version": info.version,
        "data": {"features": cfg.features.name, "outcomes": cfg.outcomes.name, "sha256": _fingerprint(cfg)},
        "real_people": cfg.real,
        "protocol": f"every window of the partner's data scored by version {info.version} as registered (no refit, no "
        f"recalibration); participant-bootstrap 95% intervals ({cfg.bootstrap_reps} resamples); episodes replayed "
        "through the service's episode rules; outcome mode "
        f"{data.mode or 'none'}",
        "cohort": cohort,
        "sections": {name: {k: metrics.get(k) for k in keys} for name, keys in SECTIONS.items()} | {"cohort": cohort},
        "subgroups": {k: v for k, v in metrics.items() if k.startswith("subgroup_")},
        "criteria": asdict(cfg.criteria),
        "checks": [asdict(c) for c in checks],
        "meets_criteria": all(c.met for c in checks),
    }
    report_json = out / "validation.json"
    report_json.write_text(json.dumps(record, indent=2, default=_plain))
    report_html = out / "validation.html"
    report_html.write_text(_html(record, [p.name for p in figures]))
    run_id = _register(info.version, record, metrics, out)
    return EvaluateResult(info.version, report_html, report_json, checks, all(c.met for c in checks), run_id, metrics)


def _cohort(data: GridData, frame: pd.DataFrame) -> dict[str, Any]:
    panel, real = data.panel, np.zeros(data.panel.n_rows, bool)
    for start, end in zip(panel.offsets[:-1], panel.offsets[1:], strict=True):
        real[start + panel.pad : end] = True
    missing = np.isnan(panel.values[real]).mean(axis=0)
    events = 0 if data.outcomes is None else len(data.outcomes)
    return {
        "people": float(len(panel.participants)),
        "participant_days": float(data.participant_days),
        "events": float(events),
        "windows": float(len(frame)),
        "prevalence": float(frame["label"].mean()) if len(frame) else float("nan"),
        "first_date": str(data.first_date),
        "last_date": str(data.last_date),
        "missing_share": {f: round(float(m), 4) for f, m in zip(panel.features, missing, strict=True)},
    }


def _fingerprint(cfg: EvaluateConfig) -> str:
    digest = hashlib.sha256()
    for path in (cfg.features, cfg.outcomes):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, np.floating | np.integer) else str(value)


def _register(version: str, record: dict[str, Any], metrics: dict[str, float], folder: Path) -> str:
    """A validation run holding the report, and a tag on the model version pointing at it."""
    with tracking.run(VALIDATION_EXPERIMENT, run_name=f"validation of version {version}") as run_id:
        params = {"model_version": version, "data_sha256": record["data"]["sha256"], "real_people": record["real_people"]}
        tracking.log_run(params, metrics, [folder], texts={"protocol.txt": record["protocol"]})
    summary = {"run_id": run_id, "real_people": record["real_people"], "meets_criteria": record["meets_criteria"]}
    summary |= {
        "data_sha256": record["data"]["sha256"],
        "people": record["cohort"]["people"],
        "events": record["cohort"]["events"],
    }
    tracking.tag_version(version, "validation_", {run_id: json.dumps(summary, default=_plain)})
    return run_id


def validations(version: str) -> list[dict[str, Any]]:
    """The validation records of a model version, newest last."""
    return [json.loads(v) for _, v in sorted(tracking.version_tags(version, "validation_").items())]


def _html(record: dict[str, Any], figures: list[str]) -> str:
    def rows(values: dict[str, Any]) -> str:
        return "".join(f"<tr><td>{html.escape(k)}</td><td>{_shown(v)}</td></tr>" for k, v in values.items())

    verdict = "meets every criterion" if record["meets_criteria"] else "does not meet every criterion"
    checks = "".join(
        f"<tr><td>{c['criterion']}</td><td>{c['limit']:g}</td><td>{_shown(c['measured'])}</td>"
        f"<td>{'met' if c['met'] else 'not met'}</td></tr>"
        for c in record["checks"]
    )
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>Validation of model version {record['model_version']}</title>",
        f"<h1>External validation of model version {record['model_version']}</h1>",
        f"<p><b>Verdict:</b> on these data the model {verdict} fixed for this validation. "
        f"{'Real people' if record['real_people'] else 'Synthetic data: not evidence about real people'}. "
        "Decision support, not a diagnosis.</p>",
        f"<p><b>Protocol.</b> {html.escape(record['protocol'])}. Data sha256 {record['data']['sha256'][:16]}…</p>",
        f"<h2>Criteria</h2><table border=1><tr><th>criterion</th><th>limit</th><th>measured</th><th></th></tr>{checks}</table>",
    ]
    for name, values in record["sections"].items():
        parts.append(f"<h2>{name.capitalize()}</h2><table border=1>{rows(values)}</table>")
    if record["subgroups"]:
        parts.append(f"<h2>Subgroups</h2><table border=1>{rows(record['subgroups'])}</table>")
    parts += [f"<figure><img src='figures/{name}' alt='{name}'><figcaption>{name}</figcaption></figure>" for name in figures]
    return "\n".join(parts)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{html.escape(str(k))} {_shown(v)}" for k, v in value.items())
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.3g}"
    return html.escape(str(value))
