"""Risk-score results as FHIR R4 RiskAssessments in a Bundle, for partners whose systems speak FHIR
(`Accept: application/fhir+json`); built and checked with the `fhir.resources` models."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.riskassessment import RiskAssessment

MEDIA_TYPE = "application/fhir+json"
BASE = "https://earlywarn.dev/fhir"  # our extensions and code systems
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
QUALITATIVE = {"low": "low", "elevated": "moderate", "high": "high"}  # our bands in HL7's risk-probability codes
UCUM = "http://unitsofmeasure.org"


def wanted(accept: str | None) -> bool:
    """Whether the caller asked for FHIR (`Accept: application/fhir+json`, before plain JSON if both are listed)."""
    types = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return MEDIA_TYPE in types and ("application/json" not in types or types.index(MEDIA_TYPE) < types.index("application/json"))


def risk_assessment(result: dict[str, Any], partner: str, model_version: str, horizon_days: int) -> RiskAssessment:
    """One result: a scored one carries probability, band, interval and drivers; a withheld one (`cancelled`) says why."""
    day = result.get("as_of") or result["window_end"]
    made: dict[str, Any] = {
        "status": "final" if result["status"] == "scored" else "cancelled",
        # The partner's own id for the person, as an identifier under the partner's namespace: never our pseudonym.
        "subject": {"identifier": {"system": f"urn:earlywarn:partner:{partner}", "value": result["participant_id"]}},
        "occurrenceDateTime": day,
        "method": {
            "coding": [{"system": f"{BASE}/model-version", "code": model_version, "display": "earlywarn relapse-risk model"}],
            "text": f"earlywarn relapse-risk model, version {model_version}",
        },
        "extension": [{"url": f"{BASE}/StructureDefinition/status", "valueCode": result["status"]}],
    }
    if result["status"] != "scored":
        made["note"] = [{"text": result.get("reason") or result["status"]}]
        return RiskAssessment(**made)
    low, high = result["risk_interval"]
    made["prediction"] = [
        {
            "outcome": {"text": f"relapse or other reported event within {horizon_days} days"},
            "probabilityDecimal": result["risk"],
            "qualitativeRisk": {
                "coding": [{"system": RISK_PROBABILITY, "code": QUALITATIVE[result["band"]]}],
                "text": result["band"],
            },
            "whenRange": {"high": {"value": horizon_days, "unit": "days", "system": UCUM, "code": "d"}},
            "extension": [{"url": f"{BASE}/StructureDefinition/risk-interval-80", "valueRange": _range(low, high)}],
        }
    ]
    if drivers := result.get("drivers"):
        made["basis"] = [{"display": d["text"]} for d in drivers]
    if result.get("band_text"):
        made["note"] = [{"text": result["band_text"]}]
    return RiskAssessment(**made)


def _range(low: float, high: float) -> dict[str, Any]:
    return {"low": {"value": low}, "high": {"value": high}}


def bundle(results: list[dict[str, Any]], partner: str, model_version: str, horizon_days: int) -> dict[str, Any]:
    """A `collection` Bundle with one RiskAssessment per result, in order, as JSON-ready data."""
    entries = [BundleEntry(resource=risk_assessment(r, partner, model_version, horizon_days)) for r in results]
    return Bundle(type="collection", entry=entries).model_dump(mode="json", exclude_none=True)
