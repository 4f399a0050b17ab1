"""Model cards structured after the TRIPOD+AI reporting items, as JSON (for the API) and Markdown (for people)."""

from __future__ import annotations

from typing import Any

from training.scoring import MAX_STALENESS_DAYS

INTENDED_USE = (
    "Decision support for care teams monitoring people in treatment for a mental-health condition: the score flags "
    "people whose recent behaviour resembles the weeks before a relapse so a clinician can check in sooner. "
    "It is not a diagnosis, not a crisis or suicide-risk detector, and must not be used to deny or ration care."
)
LIMITATIONS = [
    "Trained and evaluated on the data summarised below; performance on other populations, devices or apps is unknown "
    "until checked with local outcomes (see monitoring).",
    "Behavioural signals are indirect: illness, holidays, travel, shift work or a new phone can look like a prodrome.",
    "Windows with too few observed days are not scored; heavy missingness lowers reliability even above that minimum.",
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
    bands: dict[str, float],
) -> dict[str, Any]:
    """The card as a JSON-able dict; sections follow TRIPOD+AI (title, intended use, data, outcome, predictors, ...)."""
    subgroups = {k: v for k, v in metrics.items() if k.startswith("subgroup_")}
    return {
        "title": "earlywarn relapse-risk model",
        "version": version,
        "intended_use": INTENDED_USE,
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
        "calibration": {k: metrics.get(k) for k in ("ece", "brier")} | {"method": model.get("calibration")},
        "alerting": {
            k: metrics.get(k)
            for k in (
                "sensitivity",
                "specificity",
                "balanced_accuracy",
                "mcc",
                "alerts_per_participant_month",
                "median_lead_time_days",
            )
        },
        "bands": bands,
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
        f"- Method: {cal.get('method')}; ECE {_fmt(cal.get('ece'))}; Brier {_fmt(cal.get('brier'))}",
        "",
        "## 9. Alerting, lead time and burden (at the high band)",
        *[f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in alert.items()],
        "",
        "## 10. Risk bands",
        *[f"- {k}: {_fmt(v)}" for k, v in card["bands"].items()],
        "",
        "## 11. Subgroups",
        *([f"- {k}: {_fmt(v)}" for k, v in card["subgroups"].items()] or ["- No participant attributes were given."]),
        "",
        "## 12. Limitations",
        *[f"- {x}" for x in card["limitations"]],
        "",
        "## 13. Ethics and privacy",
        card["ethics"],
        "",
    ]
    return "\n".join(lines)
