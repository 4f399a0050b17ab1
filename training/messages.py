"""Every sentence a score carries (driver texts, why a score is withheld), in the person's language via gettext catalogs.

The English msgids live here; `training/locales/<lang>/LC_MESSAGES/earlywarn.po` holds each translation (Babel reads
them). `negotiate` picks a language from an Accept-Language header as RFC 9110 says (q-values, wildcard, English when
nothing matches)."""

from __future__ import annotations

import functools
import re
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.pofile import read_po

DOMAIN = "earlywarn"
LOCALES_DIR = Path(__file__).with_name("locales")
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "hi")
DEFAULT = "en"

Plural = tuple[str, str]  # (singular, plural) msgids: the catalogs hold every form the language has (msgstr[0..n])

# Why a score is withheld, one message per status; a pair is chosen by the count of days it names.
REASONS: dict[str, str | Plural] = {
    "stale": (
        "The newest day with any signal is {days_old} day old; a score needs data from the last {max_days} days.",
        "The newest day with any signal is {days_old} days old; a score needs data from the last {max_days} days.",
    ),
    "recent_event": (
        "An event was reported on {event_date}; the model does not score the day after an event.",
        "An event was reported on {event_date}; the model does not score the {washout} days after an event.",
    ),
    "insufficient_data": "Days with any signal: {observed} of the last {lookback}; the minimum is {needed}.",
    "non_finite": "The model did not produce a finite score for this input.",
    "withdrawn": "This participant withdrew consent: nothing is scored or stored for them.",
    "silent": "This partner is in silent mode: scores are kept for validation and not shown until it goes live.",
}
REASON_COUNTS = {"stale": "days_old", "recent_event": "washout"}  # the parameter that picks a plural reason's form
# What moved a score: a signal that changed against the person's own baseline, or stopped arriving; each is chosen by
# the number of recent days it covers, and {amount} is a number with its unit ("1 hour", "2.5 hours").
DRIVERS: dict[str, Plural] = {
    "lower": (
        "{signal} was {amount} below usual over the last day (usually {baseline}, now {recent}).",
        "{signal} was {amount} below usual over the last {days} days (usually {baseline}, now {recent}).",
    ),
    "higher": (
        "{signal} was {amount} above usual over the last day (usually {baseline}, now {recent}).",
        "{signal} was {amount} above usual over the last {days} days (usually {baseline}, now {recent}).",
    ),
    "pattern": (
        "{signal} was about as usual on the last day, but its pattern changed.",
        "{signal} was about as usual on average over the last {days} days, but its day-to-day pattern changed.",
    ),
    "missing": (
        "{signal}: no data arrived on the last day.",
        "{signal}: no data arrived on {missing} of the last {days} days.",
    ),
}
# What a band means, as a natural frequency from the event rate observed in it on validation data (never from the
# point risk alone): per 10 from about 1 in 10 up, per 100 below it.
FREQUENCIES = {
    "per_10": "About {count} in 10 people with a score in this band had an event reported within {days} days.",
    "per_100": "About {count} in 100 people with a score in this band had an event reported within {days} days.",
    "under_1_in_100": "Fewer than 1 in 100 people with a score in this band had an event reported within {days} days.",
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
# How a difference is shown: (unit, factor applied to the raw difference, decimals).
DISPLAY_UNITS: dict[str, tuple[str, float, int]] = {
    "sleep_duration_h": ("hour", 1, 1),
    "sleep_midpoint_h": ("hour", 1, 1),
    "sleep_efficiency": ("percentage point", 100, 0),
    "steps": ("step", 1, 0),
    "active_minutes": ("minute", 1, 0),
    "sedentary_minutes": ("minute", 1, 0),
    "screen_time_min": ("minute", 1, 0),
    "screen_unlocks": ("unlock", 1, 0),
    "night_screen_min": ("minute", 1, 0),
    "calls_count": ("call", 1, 1),
    "call_duration_min": ("minute", 1, 0),
    "time_at_home_frac": ("percentage point", 100, 0),
    "distance_km": ("km", 1, 1),
    "location_entropy": ("point", 1, 2),
    "places_visited": ("place", 1, 1),
    "resting_hr_bpm": ("beat per minute", 1, 0),
    "hrv_rmssd_ms": ("ms", 1, 0),
    "mood_ema": ("point", 1, 1),
    "anxiety_ema": ("point", 1, 1),
}
GENERIC_UNIT = "unit"
# A number with its unit, by the unit's name above: the form follows the language's CLDR plural rule for the number
# as shown (English "1 hour" but "1.0 hours"; French "1,5 heure").
UNITS: dict[str, Plural] = {
    "hour": ("{n} hour", "{n} hours"),
    "minute": ("{n} minute", "{n} minutes"),
    "step": ("{n} step", "{n} steps"),
    "percentage point": ("{n} percentage point", "{n} percentage points"),
    "unlock": ("{n} unlock", "{n} unlocks"),
    "call": ("{n} call", "{n} calls"),
    "km": ("{n} km", "{n} km"),
    "point": ("{n} point", "{n} points"),
    "place": ("{n} place", "{n} places"),
    "beat per minute": ("{n} beat per minute", "{n} beats per minute"),
    "ms": ("{n} ms", "{n} ms"),
    "unit": ("{n} unit", "{n} units"),
}
_CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")  # how gettext numbers a language's forms (Babel's order)


def msgids() -> set[str]:
    """Every single message the service can send, as written in English (plural messages: `plural_msgids`)."""
    return {m for m in REASONS.values() if isinstance(m, str)} | set(SIGNAL_LABELS.values()) | set(FREQUENCIES.values())


def plural_msgids() -> set[Plural]:
    """Every (singular, plural) message pair."""
    return {m for m in REASONS.values() if isinstance(m, tuple)} | set(DRIVERS.values()) | set(UNITS.values())


def natural_frequency(language: str, rate: float | None, days: int) -> str | None:
    """'About 4 in 10 people with a score in this band had an event reported within 14 days' for an observed rate."""
    if rate is None or not 0 <= rate <= 1:
        return None
    if rate >= 0.095:  # "1 in 10" and up; below, per 100 says 7 rather than rounding to 1 in 10
        key, count = "per_10", round(rate * 10)
    elif round(rate * 100) >= 1:
        key, count = "per_100", round(rate * 100)
    else:
        key, count = "under_1_in_100", 0
    return gettext(language, FREQUENCIES[key]).format(count=number(language, count, 0), days=number(language, days, 0))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@functools.cache
def catalog(language: str) -> dict[str, str | tuple[str, ...]]:
    """msgid -> translation for one language (a plural message: its singular msgid -> every form, in the order of the
    catalog's Plural-Forms); English is empty, the msgids are the text."""
    if language == DEFAULT:
        return {}
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with open(path, "rb") as f:
        po = read_po(f, locale=language, domain=DOMAIN)
    out: dict[str, str | tuple[str, ...]] = {}
    for m in po:
        if not m.id or m.fuzzy:
            continue
        if isinstance(m.id, tuple):
            forms = tuple(str(form) for form in m.string or ())
            if forms and all(forms):
                out[str(m.id[0])] = forms
        elif m.string:
            out[str(m.id)] = str(m.string)
    return out


def gettext(language: str, msgid: str) -> str:
    found = catalog(language).get(msgid, msgid)
    return found if isinstance(found, str) else msgid


@functools.lru_cache(maxsize=4096)
def plural_index(language: str, shown: str) -> int:
    """Which of the language's plural forms a number takes, as shown (e.g. "1", "1.5", "1.0"): its CLDR category, in
    gettext's order of the language's forms. CLDR rules read the visible decimals, which gettext's integer
    expressions cannot. Cached: a 1,000-participant response asks about a few hundred distinct numbers."""
    rule, order = _plural_rule(language)
    return order.index(rule(Decimal(shown)))


@functools.cache
def _plural_rule(language: str) -> tuple[Any, list[str]]:
    rule = Locale.parse(language).plural_form
    return rule, [t for t in _CLDR_ORDER if t in rule.tags or t == "other"]


def ngettext(language: str, message: Plural, shown: str) -> str:
    """The form of a plural message for a number as shown."""
    index = plural_index(language, shown)
    if language == DEFAULT:
        return message[0] if index == 0 else message[1]
    forms = catalog(language).get(message[0])
    if not isinstance(forms, tuple):
        return message[0] if index == 0 else message[1]
    return forms[min(index, len(forms) - 1)]


def render(language: str, msgid: str | Plural, count: int | None = None, **params: Any) -> str:
    """A message in `language` with its parameters; a plural message takes the form for `count`."""
    if isinstance(msgid, tuple):
        return ngettext(language, msgid, str(count)).format(**params)
    return gettext(language, msgid).format(**params)


def amount(language: str, unit: str, value: float, decimals: int) -> str:
    """A number with its unit in `language`: "1 minute", "2.5 hours", "1,5 heure"."""
    shown = number(language, value, decimals)
    plain = f"{round(value, decimals):.{decimals}f}"
    return ngettext(language, UNITS.get(unit, UNITS[GENERIC_UNIT]), plain).format(n=shown)


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
    return _formatted(language, round(value, decimals), decimals)


@functools.lru_cache(maxsize=16384)
def _formatted(language: str, value: float, decimals: int) -> str:
    pattern, locale = _number_format(language, decimals)
    return str(pattern.apply(value, locale))


@functools.cache
def _number_format(language: str, decimals: int) -> tuple[Any, Locale]:
    """Parsed once per language and precision: a 1,000-participant response writes about 8,000 numbers."""
    from babel.numbers import parse_pattern

    return parse_pattern("#,##0" + ("." + "0" * decimals if decimals else "")), Locale.parse(language)
