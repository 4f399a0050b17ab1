"""The validation report a governance board reads (HTML with figures, plus JSON), written one way for a partner's
retrospective data (`earlywarn evaluate`) and for a silent partner's own prospective traffic (`monitor run`)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


def sections(metrics: dict[str, float], cohort: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's tables from a flat metrics dict (training/evaluate.py) and a cohort description."""
    return {name: {k: metrics.get(k) for k in keys} for name, keys in SECTIONS.items()} | {"cohort": cohort}


def plain(value: Any) -> Any:
    """JSON for numpy numbers (and anything else as text)."""
    return float(value) if isinstance(value, np.floating | np.integer) else str(value)


def write(
    out: Path,
    record: dict[str, Any],
    frame: pd.DataFrame,
    risk: np.ndarray,
    thresholds: dict[str, float],
    events: pd.DataFrame | None,
) -> tuple[Path, Path]:
    """validation.json and validation.html (with figures/) in `out`. The record holds title, summary, protocol,
    sections, subgroups, checks and meets_criteria; its data fingerprint is shown when present."""
    from earlywarn.training.plots import save_plots  # here: it switches matplotlib to Agg, which notebooks must not get on import

    out.mkdir(parents=True, exist_ok=True)
    figures = save_plots(frame, risk, thresholds, out / "figures", events) if len(frame) else []
    report_json, report_html = out / "validation.json", out / "validation.html"
    report_json.write_text(json.dumps(record, indent=2, default=plain))
    report_html.write_text(_html(record, [p.name for p in figures]))
    return report_html, report_json


def _html(record: dict[str, Any], figures: list[str]) -> str:
    def rows(values: dict[str, Any]) -> str:
        return "".join(f"<tr><td>{html.escape(k)}</td><td>{_shown(v)}</td></tr>" for k, v in values.items())

    verdict = "meets every criterion" if record["meets_criteria"] else "does not meet every criterion"
    checks = "".join(
        f"<tr><td>{c['criterion']}</td><td>{c['limit']:g}</td><td>{_shown(c['measured'])}</td>"
        f"<td>{'met' if c['met'] else 'not met'}</td></tr>"
        for c in record["checks"]
    )
    digest = f" Data sha256 {record['data']['sha256'][:16]}…" if "data" in record else ""
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(record['title'])}</title>",
        f"<h1>{html.escape(record['title'])}</h1>",
        f"<p><b>Verdict:</b> on these data the model {verdict} fixed in advance. {html.escape(record['summary'])} "
        "Decision support, not a diagnosis.</p>",
        f"<p><b>Protocol.</b> {html.escape(record['protocol'])}.{digest}</p>",
        f"<h2>Criteria</h2><table border=1><tr><th>criterion</th><th>limit</th><th>measured</th><th></th></tr>{checks}</table>",
    ]
    for name, values in record["sections"].items():
        parts.append(f"<h2>{name.capitalize()}</h2><table border=1>{rows(values)}</table>")
    if record.get("subgroups"):
        parts.append(f"<h2>Subgroups</h2><table border=1>{rows(record['subgroups'])}</table>")
    parts += [f"<figure><img src='figures/{name}' alt='{name}'><figcaption>{name}</figcaption></figure>" for name in figures]
    return "\n".join(parts)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{html.escape(str(k))} {_shown(v)}" for k, v in value.items())
    if isinstance(value, float):
        return "n/a" if value is None or not np.isfinite(value) else f"{value:.3g}"
    return html.escape(str(value))
