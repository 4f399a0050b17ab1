"""Every sentence a score carries (driver texts, why a score is withheld), in the person's language via gettext catalogs.

The English msgids live here; `training/locales/<lang>/LC_MESSAGES/earlywarn.po` holds each translation (Babel reads
them). `negotiate` picks a language from an Accept-Language header as RFC 9110 says (q-values, wildcard, English when
nothing matches)."""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.pofile import read_po

DOMAIN = "earlywarn"
LOCALES_DIR = Path(__file__).with_name("locales")
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "hi")
DEFAULT = "en"

# Why a score is withheld, one message per status.
REASONS = {
    "stale": "The newest day with any signal is {days_old} days old; a score needs data from the last {max_days} days.",
    "recent_event": "An event was reported on {event_date}; the model does not score the {washout} days after an event.",
    "insufficient_data": "{observed} of the last {lookback} days have any signal; at least {needed} are needed.",
    "non_finite": "The model did not produce a finite score for this input.",
    "withdrawn": "This participant withdrew consent: nothing is scored or stored for them.",
}
# What moved a score: a signal that changed against the person's own baseline, or stopped arriving.
DRIVERS = {
    "lower": "{signal} was {difference} {unit} below usual over the last {days} days (usually {baseline}, now {recent}).",
    "higher": "{signal} was {difference} {unit} above usual over the last {days} days (usually {baseline}, now {recent}).",
    "pattern": "{signal} was about as usual on average over the last {days} days, but its day-to-day pattern changed.",
    "missing": "{signal}: no data arrived on {missing} of the last {days} days.",
}
SIGNAL_LABELS = {
    "sleep_duration_h": "Sleep",
    "sleep_midpoint_h": "The middle of the night's sleep",
    "sleep_efficiency": "Sleep efficiency",
    "steps": "Step count",
    "active_minutes": "Active time",
    "sedentary_minutes": "Sedentary time",
    "screen_time_min": "Screen time",
    "screen_unlocks": "Phone unlocks",
    "night_screen_min": "Night-time screen use",
    "calls_count": "The number of calls",
    "call_duration_min": "Time on calls",
    "time_at_home_frac": "Time at home",
    "distance_km": "Distance travelled",
    "location_entropy": "Variety of places",
    "places_visited": "Places visited",
    "resting_hr_bpm": "Resting heart rate",
    "hrv_rmssd_ms": "Heart-rate variability",
    "mood_ema": "Self-reported mood",
    "anxiety_ema": "Self-reported anxiety",
}
# How a difference is shown: (unit word, factor applied to the raw difference, decimals).
DISPLAY_UNITS: dict[str, tuple[str, float, int]] = {
    "sleep_duration_h": ("hours", 1, 1),
    "sleep_midpoint_h": ("hours", 1, 1),
    "sleep_efficiency": ("percentage points", 100, 0),
    "steps": ("steps", 1, 0),
    "active_minutes": ("minutes", 1, 0),
    "sedentary_minutes": ("minutes", 1, 0),
    "screen_time_min": ("minutes", 1, 0),
    "screen_unlocks": ("unlocks", 1, 0),
    "night_screen_min": ("minutes", 1, 0),
    "calls_count": ("calls", 1, 1),
    "call_duration_min": ("minutes", 1, 0),
    "time_at_home_frac": ("percentage points", 100, 0),
    "distance_km": ("km", 1, 1),
    "location_entropy": ("points", 1, 2),
    "places_visited": ("places", 1, 1),
    "resting_hr_bpm": ("beats per minute", 1, 0),
    "hrv_rmssd_ms": ("ms", 1, 0),
    "mood_ema": ("points", 1, 1),
    "anxiety_ema": ("points", 1, 1),
}
GENERIC_UNIT = "units"


def msgids() -> set[str]:
    """Every message the service can send, as written in English."""
    units = {u for u, _, _ in DISPLAY_UNITS.values()} | {GENERIC_UNIT}
    return set(REASONS.values()) | set(DRIVERS.values()) | set(SIGNAL_LABELS.values()) | units


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@functools.cache
def catalog(language: str) -> dict[str, str]:
    """msgid -> translation for one language (English: empty, the msgids are the text)."""
    if language == DEFAULT:
        return {}
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with open(path, "rb") as f:
        po = read_po(f, locale=language, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext(language: str, msgid: str) -> str:
    return catalog(language).get(msgid, msgid)


def render(language: str, msgid: str, **params: Any) -> str:
    return gettext(language, msgid).format(**params)


_RANGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$|^\*$")


def negotiate(accept_language: str | None) -> str:
    """The best of LANGUAGES for an Accept-Language header (RFC 9110 §12.5.4): highest q first, then header order;
    a range matches its language or any subtag of it ("pt-BR" -> pt); q=0 rules a language out; English otherwise."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = -1.0  # a malformed weight: the range is ignored, not ruled out
        if _RANGE.match(tag.strip()) and 0 < q <= 1:
            ranked.append((-q, position, tag.strip().lower()))
        elif q == 0 and tag.strip():
            ranked.append((1.0, position, "!" + tag.strip().lower()))  # excluded
    excluded = {t[1:].split("-")[0] for _, _, t in ranked if t.startswith("!")}
    for _, _, tag in sorted(r for r in ranked if not r[2].startswith("!")):
        if tag == "*":
            rest = [lang for lang in LANGUAGES if lang not in excluded]
            return rest[0] if rest else DEFAULT
        base = tag.split("-")[0]
        if base in LANGUAGES and base not in excluded:
            return base
    return DEFAULT


def number(language: str, value: float, decimals: int) -> str:
    """A number written the way the language writes it (decimal comma in most of Europe)."""
    pattern, locale = _number_format(language, decimals)
    return str(pattern.apply(round(value, decimals), locale))


@functools.cache
def _number_format(language: str, decimals: int) -> tuple[Any, Locale]:
    """Parsed once per language and precision: a 1,000-participant response writes about 8,000 numbers."""
    from babel.numbers import parse_pattern

    return parse_pattern("#,##0" + ("." + "0" * decimals if decimals else "")), Locale.parse(language)
