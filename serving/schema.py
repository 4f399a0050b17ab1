"""Request and response schemas of the /v1 API, built from the served model's features and the contract's ranges."""

# Models are built at run time from the served model's features, which static typing cannot follow.
# mypy: disable-error-code="valid-type,arg-type,call-overload,misc,maybe-unrecognized-str-typeform"

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, create_model

from earlywarn.data.contract import SIGNALS
from earlywarn.training.scoring import MAX_STALENESS_DAYS

MAX_PARTICIPANTS = 1000
MAX_DAYS = 90
MAX_ID_LENGTH = 128
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, hide_input_in_errors=True)  # no values in logs


def _feature_field(name: str) -> Any:
    sig = SIGNALS.get(name)
    desc = (
        f"{sig.description} ({sig.unit}); null or absent = not observed"
        if sig
        else "Custom feature; null or absent = not observed"
    )
    bounds = {"ge": sig.low, "le": sig.high} if sig else {}
    return (Annotated[float | None, Field(description=desc, **bounds)], None)


def score_request_model(features: list[str]) -> type[BaseModel]:
    """The POST /v1/risk-scores body for a model with these features (unknown features are rejected)."""
    day = create_model(
        "Day",
        __config__=STRICT,
        date=(dt.date, Field(description="ISO day, YYYY-MM-DD; strictly increasing within a participant")),
        **{f: _feature_field(f) for f in features},
    )
    participant = create_model(
        "Participant",
        __config__=STRICT,
        participant_id=(Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")], ...),
        days=(Annotated[list[day], Field(min_length=1, max_length=MAX_DAYS)], ...),
    )
    return create_model(
        "RiskScoreRequest",
        __config__=STRICT,
        as_of=(
            dt.date | None,
            Field(
                None,
                description="The day the scores are for (default: today, UTC). No day may be after it; a participant "
                f"whose newest day with any signal is more than {MAX_STALENESS_DAYS} days before it gets status "
                "'stale' and no score.",
            ),
        ),
        participants=(Annotated[list[participant], Field(min_length=1, max_length=MAX_PARTICIPANTS)], ...),
    )


def max_body_bytes(features: list[str]) -> int:
    """Room for the largest legal request in compact JSON: 1,000 participants x 90 days, every signal present
    with a 24-character number, plus slack for ids; anything larger cannot be legal and is refused unparsed."""
    per_day = 48 + sum(len(f) + 4 + 24 for f in features)
    return MAX_PARTICIPANTS * (256 + MAX_ID_LENGTH + MAX_DAYS * per_day)


class Outcome(BaseModel):
    model_config = STRICT
    participant_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")]
    date: dt.date
    event: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_\-]*$", description="e.g. relapse, hospitalisation")
    ]


class FeedbackRequest(BaseModel):
    """What the care team did about an escalation: any answer snoozes its episode (docs/clinical.md says how long),
    `false_alarm` also closes it."""

    model_config = STRICT
    action: Literal["contacted", "false_alarm", "already_in_care", "no_action"]
    note: Annotated[
        str | None,
        Field(
            max_length=500,
            description="Bookkeeping for the partner's own records (who followed up, a ticket number); "
            "never clinical detail, names or contact details",
        ),
    ] = None
    as_of: dt.date | None = Field(None, description="The day the team acted (default: today, UTC); the snooze counts from it")


class EscalationFeedbackRequest(FeedbackRequest):
    """Feedback with the escalation's alert id in the body (the BentoML clients' form of the same call)."""

    alert_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, description="From the escalation")]


# Days are sent as YYYY-MM-DD text; the schema says so, so generated clients parse them as dates.
Day = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]


class NoInput(BaseModel):
    """An empty JSON object."""

    model_config = STRICT


class Stored(BaseModel):
    stored: int
    new: int | None = Field(description="Outcomes not stored before (null while the store is away)")


class FeedbackStored(BaseModel):
    stored: int
    alert_id: str
    episode: Literal["snoozed", "closed"]
    quiet_until: Day | None = Field(None, description="The last day of the snooze, YYYY-MM-DD")


class OutcomeRequest(BaseModel):
    model_config = STRICT
    outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=10_000)]


def loc_path(loc: tuple[int | str, ...]) -> str:
    """('participants', 3, 'days', 5, 'steps') -> 'participants[3].days[5].steps'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_errors(err: ValidationError, limit: int = 50) -> list[dict[str, str]]:
    """Pydantic errors as {field, message}, without echoing input values."""
    out = []
    for e in err.errors(include_input=False, include_url=False)[:limit]:
        loc = tuple(p for p in e["loc"] if p not in ("function-after",))
        message = "unknown field: not a feature of the served model" if e["type"] == "extra_forbidden" else e["msg"]
        out.append({"field": loc_path(loc) or "body", "message": message})
    return out


def as_of_errors(as_of: dt.date | None, today: dt.date) -> list[dict[str, str]]:
    """`as_of` may lead UTC's today by one day (partners east of UTC), not more."""
    if as_of is not None and (as_of - today).days > 1:
        return [{"field": "as_of", "message": f"more than a day after today ({today}, UTC)"}]
    return []


def day_order_errors(participants: list[Any], as_of: dt.date | None = None) -> list[dict[str, str]]:
    """Dates must be strictly increasing within a participant and not after `as_of`; participant ids unique within a
    request."""
    errors: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for i, p in enumerate(participants):
        if p.participant_id in seen:
            errors.append(
                {"field": f"participants[{i}].participant_id", "message": f"duplicate of participants[{seen[p.participant_id]}]"}
            )
        seen.setdefault(p.participant_id, i)
        days = p.days
        for j in range(1, len(days)):
            if days[j].date <= days[j - 1].date:
                what = "duplicated" if days[j].date == days[j - 1].date else "out of order"
                errors.append(
                    {"field": f"participants[{i}].days[{j}].date", "message": f"date {what}: dates must be strictly increasing"}
                )
                break
        if as_of is not None and days[-1].date > as_of:
            j = next(j for j, d in enumerate(days) if d.date > as_of)
            errors.append(
                {"field": f"participants[{i}].days[{j}].date", "message": f"after as_of ({as_of}): days cannot be in the future"}
            )
    return errors


# --- responses (documented in OpenAPI; the service writes them as plain JSON) ----------------------------------------


class Driver(BaseModel):
    """A signal that moved the score from the person's own baseline."""

    signal: str
    kind: Literal["change", "missing_data"] = Field(
        description="change: the signal moved away from the person's baseline; missing_data: most of its part is due to "
        "days missing beyond the person's usual gaps"
    )
    direction: Literal["raises risk", "lowers risk"]
    contribution: float = Field(
        description="The signal's exact part in the change of the shown log-odds from the person's usual days (their "
        "baseline mean with their usual gaps) to now; the contributions of all signals add up to that change. Only "
        "signals with a part of at least 0.1 are listed"
    )
    recent_mean: float | None = Field(description="Mean over the recent days (the last 7)")
    baseline_mean: float | None = Field(description="The person's baseline mean, the one the model used")
    deviation_sd: float | None = Field(description="recent_mean minus baseline_mean, in the person's own SDs")
    recent_days_missing: int = Field(description="Recent days on which the signal did not arrive")
    unit: str | None
    text: str = Field(description="One plain sentence, in the language negotiated from Accept-Language")


class Notified(BaseModel):
    event: Literal["escalation.opened", "escalation.reminder", "escalation.rise", "escalation.lost_contact", "escalation.closed"]
    alert_id: str


class Escalation(BaseModel):
    """The participant's escalation episode with this partner (docs/clinical.md, "Escalations")."""

    state: Literal["new", "ongoing", "snoozed", "lost_contact", "none"] = Field(
        description="new: opened by this score; ongoing: open; snoozed: open (or just dismissed) and quieted by "
        "feedback; lost_contact: no score could be made while at risk; none"
    )
    alert_id: str | None = None
    since: Day | None = Field(None, description="The day the episode opened, YYYY-MM-DD")
    lost_since: Day | None = Field(None, description="lost_contact: the first day no score could be made")
    quiet_until: Day | None = Field(None, description="snoozed: the last quiet day")
    notified: list[Notified] | None = Field(None, description="The webhook notifications this answer queued")


class RiskResult(BaseModel):
    """One participant's result: a score, or the reason there is none."""

    participant_id: str
    window_end: Day = Field(description="The participant's newest reported day, YYYY-MM-DD")
    as_of: Day | None = Field(None, description="The day the score is for, YYYY-MM-DD")
    status: Literal["scored", "insufficient_data", "stale", "recent_event", "withdrawn", "silent"]
    reason: str | None = Field(None, description="Why there is no score (not scored only), in the negotiated language")
    risk: float | None = Field(None, description="Calibrated probability of an event within the horizon (scored only)")
    risk_interval: list[float] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="[low, high]: an 80% interval for the person's true risk, from the model's own uncertainty and the "
        "missing days; it always holds risk (scored only)",
    )
    interval_checked: bool | None = Field(
        None,
        description="True when the interval's coverage was fitted and tested against a known true risk (synthetic "
        "validation); false for a model-based interval nobody could check (a model trained only on real data)",
    )
    band: Literal["low", "elevated", "high"] | None = None
    band_text: str | None = Field(
        None,
        description="What the band meant on validation data, as a natural frequency in the negotiated language: 'About 4 "
        "in 10 people with a score in this band had an event reported within 14 days' (from the band's observed event "
        "rate, never from the point risk alone)",
    )
    escalate: bool | None = Field(
        None, description="True when this result notifies the care team: an opening, a reminder, a material rise or lost contact"
    )
    escalation: Escalation | None = None
    drivers: list[Driver] | None = Field(
        None,
        description="Up to 3 signals with the largest contributions of at least 0.1 in shown log-odds; a signal the "
        "partner never sends is never one (scored only)",
    )
    data_quality: dict[str, Any] = Field(
        description="days_observed, baseline_days, lookback_days, missing_share per signal; signals_used (what the score "
        "rests on), signals_not_sent (never arrived in the history sent), signals_stopped (missing on at least 4 of "
        "the last 7 days, clearly more than the person usually misses)"
    )


class RiskScoreResponse(BaseModel):
    model_version: str
    request_id: str
    results: list[RiskResult]
