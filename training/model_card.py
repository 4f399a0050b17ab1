"""Model cards structured after the TRIPOD+AI reporting items, as JSON (for the API) and Markdown (for people)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from earlywarn.training.scoring import MAX_STALENESS_DAYS, MIN_DRIVER_EFFECT

if TYPE_CHECKING:
    from earlywarn.training.bundle import ModelBundle

INTENDED_USE = (
    "Decision support for care teams monitoring people in treatment for a mental-health condition: the score flags "
    "people whose recent behaviour resembles the weeks before a relapse so a clinician can check in sooner. "
    "It is not a diagnosis, not a crisis or suicide-risk detector, and must not be used to deny or ration care."
)
# Who a model's notion of "worse" fits: a one-sided model reads a manic or hypersomnic week as reassuring.
POPULATION = {
    "depression": (
        "This model was trained for depressive relapse (condition profile 'depression'): each signal has one worse "
        "direction (less sleep, less activity, fewer calls, more time at home, lower mood, ...). Do not use it for "
        "people with bipolar disorder or psychosis, where manic or hypersomnic weeks (less or much more sleep, more "
        "activity, calls and travel) also precede relapse: it may read those weeks as lowering risk. Train with "
        "`--condition bipolar` for them."
    ),
    "bipolar": (
        "This model was trained for bipolar disorder (condition profile 'bipolar'): sleep, activity, phone use, calls, "
        "mobility and mood count as warning signs when they move away from the person's usual level in either "
        "direction, so manic-type and depressive weeks both raise the risk."
    ),
}
LIMITATIONS = [
    "Trained and evaluated on the data summarised below; performance on other populations, devices or apps is unknown "
    "until checked with local outcomes (see monitoring).",
    "Behavioural signals are indirect: illness, holidays, travel, shift work or a new phone can look like a prodrome.",
    "Windows with too few observed days are not scored; above that minimum, missing days widen the risk interval "
    "(section 9) — read the interval, not only the risk.",
    f"A score is for one day (the request's as_of, default today): a person whose newest day with any signal is more "
    f"than {MAX_STALENESS_DAYS} days older is answered 'stale', not scored. In the washout after a reported event "
    "(the model never saw such windows) the answer is 'recent_event', not a score.",
    "Risk bands are set for an alert budget on validation data; the share of high alerts moves with case mix.",
    "Events without a behavioural prodrome cannot be anticipated; a low score is not reassurance.",
    "Subgroup results with few windows have wide uncertainty; fairness across groups not listed was not assessed.",
]


def build_card(
    version: str | None,
    model: dict[str, Any],
    data: dict[str, Any],
    evaluation: dict[str, Any],
    metrics: dict[str, float],
    bands: dict[str, Any],
) -> dict[str, Any]:
    """The card as a JSON-able dict; sections follow TRIPOD+AI (title, intended use, data, outcome, predictors, ...)."""
    subgroups = {k: v for k, v in metrics.items() if k.startswith("subgroup_")}
    return {
        "title": "earlywarn relapse-risk model",
        "version": version,
        "intended_use": INTENDED_USE + " " + POPULATION[model.get("condition", "depression")],
        "intended_users": "Clinicians and care coordinators in partner services; not patients directly.",
        "model": model,
        "data": data,
        "outcome": {
            "definition": evaluation["outcome"],
            "horizon_days": evaluation["horizon"],
            "lookback_days": evaluation["lookback"],
        },
        "predictors": data.get("features", []),
        "missing_data": "Missing days and signals are kept as missing; the model sees an observed mask and days since each "
        "signal was last seen. Windows with fewer than the minimum observed days are not scored.",
        "evaluation_protocol": evaluation["protocol"],
        "validation_data": {
            "kind": data.get("validation_data", "unknown"),
            "participants": data.get("participants"),
            "calibrated_on": model.get("calibrated_on"),
            "person_level": {
                k: metrics.get(k)
                for k in ("person_auroc", "person_auroc_ci_low", "person_auroc_ci_high", "person_mcc", "person_balanced_accuracy")
                if k in metrics
            },
        },
        "performance": {
            k: metrics.get(k)
            for k in ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low", "auprc_ci_high", "oracle_auroc")
            if k in metrics
        },
        "calibration": {
            k: metrics.get(k)
            for k in (
                "ece",
                "brier",
                "calibration_slope",
                "calibration_intercept",
                "high_band_mean_risk",
                "high_band_event_rate",
                "high_band_calibration_gap",
                "high_band_gap_ci_low",
                "high_band_gap_ci_high",
                "elevated_band_mean_risk",
                "elevated_band_event_rate",
                "elevated_band_calibration_gap",
                "elevated_band_gap_ci_low",
                "elevated_band_gap_ci_high",
            )
        }
        | {"method": model.get("calibration")},
        "alerting": {
            k: metrics.get(k)
            for k in (
                "sensitivity",
                "specificity",
                "ppv_high",
                "npv_high",
                "ppv_elevated",
                "npv_elevated",
                "balanced_accuracy",
                "mcc",
                "event_sensitivity",
                "median_lead_time_days",
                "alerts_per_100_participant_months",
                "episode_ppv",
                "episode_ppv_ci_low",
                "episode_ppv_ci_high",
                "episodes_opened",
                "episodes_post_event",
                "event_sensitivity_episodes",
                "events_judged_for_sensitivity",
                "lead_time_p10_days",
                "lead_time_p25_days",
                "lead_time_p50_days",
                "lead_time_p75_days",
                "lead_time_p90_days",
                "alerts_per_participant_month",
                "net_benefit_high",
                "net_benefit_elevated",
            )
        },
        "uncertainty": {"method": model.get("risk_interval")} | {k: v for k, v in metrics.items() if k.startswith("interval_")},
        "bands": bands,
        "partial_signals": {k: v for k, v in metrics.items() if k.startswith("profile_")},
        "drivers": {"minimum_effect_log_odds": MIN_DRIVER_EFFECT},
        "subgroups": subgroups,
        "baseline_comparison": evaluation.get("baseline"),
        "limitations": LIMITATIONS,
        "ethics": "Participant ids are pseudonymised; the score supports, never replaces, clinical judgement. High-band "
        "results carry an escalation flag for a human to review.",
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "—" if v is None else str(v)


def card_markdown(card: dict[str, Any]) -> str:
    perf, cal, alert = card["performance"], card["calibration"], card["alerting"]
    lines = [
        f"# {card['title']} — version {card['version'] or 'unregistered'}",
        "",
        "## 1. Intended use",
        card["intended_use"],
        "",
        f"Intended users: {card['intended_users']}",
        "",
        "## 2. Model",
        *[f"- **{k}**: {_fmt(v)}" for k, v in card["model"].items()],
        "",
        "## 3. Data",
        *[f"- **{k}**: {_fmt(v)}" for k, v in card["data"].items() if k != "features"],
        f"- **predictors** ({len(card['predictors'])}): {', '.join(card['predictors'])}",
        "",
        "## 4. Outcome",
        f"{card['outcome']['definition']} Lookback {card['outcome']['lookback_days']} days, "
        f"horizon {card['outcome']['horizon_days']} days.",
        "",
        "## 5. Missing data",
        card["missing_data"],
        "",
        "## 6. Evaluation protocol",
        card["evaluation_protocol"],
        "",
        "### Validation data",
        f"The figures below come from **{card['validation_data']['kind']}** data "
        f"({card['validation_data']['participants']} participants); calibration was fitted on "
        f"{card['validation_data']['calibrated_on']}. Synthetic results show the pipeline can learn a signal that is "
        "there; they are not evidence about real patients. See docs/validation.md for real-data checks.",
        *[f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in card["validation_data"]["person_level"].items()],
        "",
        "## 7. Performance (95% bootstrap intervals by participant)",
        f"- AUROC {_fmt(perf.get('auroc'))} ({_fmt(perf.get('auroc_ci_low'))}–{_fmt(perf.get('auroc_ci_high'))})",
        f"- AUPRC {_fmt(perf.get('auprc'))} ({_fmt(perf.get('auprc_ci_low'))}–{_fmt(perf.get('auprc_ci_high'))})",
    ]
    if perf.get("oracle_auroc") is not None:
        lines.append(f"- Oracle AUROC on the same windows (synthetic data only): {_fmt(perf['oracle_auroc'])}")
    if card.get("baseline_comparison"):
        lines.append(f"- Baseline (logistic on window summaries): {card['baseline_comparison']}")
    lines += [
        "",
        "## 8. Calibration",
        f"- Method: {cal.get('method')}",
        *[f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in cal.items() if k != "method"],
        "- Slope 1 and intercept 0 are ideal; a slope below 1 means risks are too extreme. The high band's mean risk "
        "beside its observed event rate says whether a high score means what it says.",
        "",
        "## 9. Uncertainty: the risk interval",
        "Every score carries `risk_interval` and `interval_checked`. The interval's width comes from the model's own "
        "uncertainty (how uncertain the training people leave the weight of each signal) and the missing days (how "
        "far each signal's part would move had its missing days been a little better or worse than usual), scaled by "
        "split-conformal calibration per band and class of days missing so that it holds the true risk at the stated "
        "rate where a true risk is known (synthetic data). On real data the true risk is unknown: the interval is then "
        "model-based and `interval_checked` is false.",
        *[f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in card.get("uncertainty", {}).items()],
        "",
        "## 10. Alerting, lead time and burden (at the band thresholds; decision_curve.png plots net benefit)",
        *[f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in alert.items()],
        "- Per episode, each held-out participant's days replayed through the service's own episode rules (no "
        "feedback): episode PPV is the share of openings followed by an event within the horizon (openings in the "
        "washout after an event are post-event and left out), with its 95% participant-bootstrap interval; event "
        "sensitivity per episode is the share of events an opening came before within the horizon; lead times run "
        "from an opening to its first event (10th to 90th percentile); alerts per 100 participant-months count "
        "openings. Each band is also told to care teams as a natural frequency of its observed rate (section 11).",
        "",
        "## 11. Risk bands (thresholds on the shown risk; each band stated as the event rate observed in it on the "
        "held-out participants, with its 95% participant-bootstrap interval)",
        *[f"- {k}: {_fmt(v)}" for k, v in card["bands"].items() if k != "observed"],
        *[
            f"- {band}: {o['rate']:.1%} of {o['windows']:.0f} windows had an event ({o['ci_low']:.1%}–{o['ci_high']:.1%})"
            for band, o in (card["bands"].get("observed") or {}).items()
        ],
        "",
        "## 11a. Partners that send only some signals (the held-out windows with the other sources never sent)",
        *(
            [f"- {k.removeprefix('profile_').replace('_', ' ')}: {_fmt(v)}" for k, v in card["partial_signals"].items()]
            or ["- Not measured."]
        ),
        "",
        "## 12. Subgroups (AUROC with 95% participant-bootstrap intervals; gap = best minus worst within an attribute)",
        *([f"- {k}: {_fmt(v)}" for k, v in card["subgroups"].items()] or ["- No participant attributes were given."]),
        "",
        "## 13. Drivers",
        "Each score names up to three signals that moved its shown log-odds from the person's usual days (their "
        "baseline mean on every window day, with as many gaps as they usually have). The model adds one part per "
        "signal, so the contributions are exact and add up to the change in shown log-odds. A driver moves the shown "
        f"log-odds by at least {MIN_DRIVER_EFFECT} or is not listed. `kind: missing_data` means most of the signal's "
        "part is due to days missing beyond the person's usual gaps; a signal a partner never sends is never a "
        "driver. Drivers describe the model, not causes in the person.",
        "",
        "## 14. Limitations",
        *[f"- {x}" for x in card["limitations"]],
        "",
        "## 15. Ethics and privacy",
        card["ethics"],
        "",
    ]
    return "\n".join(lines)


_INTERNAL_KEYS = {"run_id", "mlflow_run_id", "source", "path", "artifact_uri"}


def public(value: Any) -> Any:
    """The card without what only the operator should see (run ids and file-system paths), and with every undefined
    number (a NaN: e.g. a subgroup too small for an AUROC) as null, which JSON can carry."""
    if isinstance(value, dict):
        return {
            k: public(v)
            for k, v in value.items()
            if k not in _INTERNAL_KEYS and not k.endswith("_path") and not (isinstance(v, str) and v.startswith("/"))
        }
    if isinstance(value, list | tuple):
        return [public(v) for v in value]
    if isinstance(value, np.floating | float):  # numpy's float32 is not a float: it reached JSON as NaN, a 500
        return float(value) if math.isfinite(value) else None
    return value


def served_card(bundle: ModelBundle, version: str) -> dict[str, Any]:
    """The card as the API shows it: version, training date, data, metrics with intervals, bands, intended use,
    limits, and the rules that answer a status instead of a score."""
    card = public(bundle.meta.get("model_card", {}))
    card["version"] = version
    card["trained_at"] = bundle.meta.get("trained_at")
    card["band_thresholds"] = {"elevated": bundle.bands.elevated, "high": bundle.bands.high}
    card["window"] = {"lookback_days": bundle.window.lookback, "min_observed_days": bundle.window.min_observed_days}
    card["not_scored"] = {
        "max_staleness_days": MAX_STALENESS_DAYS,
        "washout_days": bundle.window.washout_days,
        "min_observed_days": bundle.window.min_observed_days,
    }
    card["features"] = bundle.features
    return public(card)  # the thresholds and band rates too
