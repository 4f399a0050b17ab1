"""External validation of a registered model on a partner's own labelled data: a report a governance board can read,
recorded with the model version in MLflow."""

from __future__ import annotations

import datetime as dt
import hashlib
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
from earlywarn.training import validation_report as report
from earlywarn.training.criteria import Check, Criteria, judge
from earlywarn.training.evaluate import evaluate

VALIDATION_EXPERIMENT = "earlywarn-validation"


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
    real = "Real people." if cfg.real else "Synthetic data: not evidence about real people."
    record = {
        "title": f"External validation of model version {info.version}",
        "summary": real,
        "model_version": info.version,
        "data": {"features": cfg.features.name, "outcomes": cfg.outcomes.name, "sha256": _fingerprint(cfg)},
        "real_people": cfg.real,
        "protocol": f"every window of the partner's data scored by version {info.version} as registered (no refit, no "
        f"recalibration); participant-bootstrap 95% intervals ({cfg.bootstrap_reps} resamples); episodes replayed "
        "through the service's episode rules; outcome mode "
        f"{data.mode or 'none'}",
        "cohort": cohort,
        "sections": report.sections(metrics, cohort),
        "subgroups": {k: v for k, v in metrics.items() if k.startswith("subgroup_")},
        "criteria": asdict(cfg.criteria),
        "checks": [asdict(c) for c in checks],
        "meets_criteria": all(c.met for c in checks),
    }
    thresholds = {"high": bands.high, "elevated": bands.elevated}
    report_html, report_json = report.write(out, record, frame, risk, thresholds, events)
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


def _register(version: str, record: dict[str, Any], metrics: dict[str, float], folder: Path) -> str:
    """A validation run holding the report, and a tag on the model version pointing at it."""
    with tracking.run(VALIDATION_EXPERIMENT, run_name=f"validation of version {version}") as run_id:
        params = {"model_version": version, "data_sha256": record["data"]["sha256"], "real_people": record["real_people"]}
        tracking.log_run(params, metrics, [folder], texts={"protocol.txt": record["protocol"]})
    summary = {"run_id": run_id, "real_people": record["real_people"], "meets_criteria": record["meets_criteria"]}
    summary["time"] = dt.datetime.now(dt.UTC).isoformat()
    summary |= {
        "data_sha256": record["data"]["sha256"],
        "people": record["cohort"]["people"],
        "events": record["cohort"]["events"],
    }
    tracking.tag_version(version, "validation_", {run_id: json.dumps(summary, default=report.plain)})
    return run_id


def validations(version: str) -> list[dict[str, Any]]:
    """The validation records of a model version, newest last."""
    records = [json.loads(v) for v in tracking.version_tags(version, "validation_").values()]
    return sorted(records, key=lambda r: r.get("time", ""))  # run ids are random: order by when each was made
