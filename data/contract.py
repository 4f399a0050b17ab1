"""The data contract: table shapes and the standard feature vocabulary with units and ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PARTICIPANT = "participant_id"
DATE = "date"
EVENT = "event"
LABEL = "label"
KEY_COLUMNS = (PARTICIPANT, DATE)

Direction = Literal[1, -1, 0]
EITHER_WAY = 2  # a direction value: a move away from the person's usual level either way is worse (see CONDITIONS)

# Where a signal comes from: partners collect some sources and not others (a wearable and no phone data, a phone and
# no wearable, check-ins only), and a model must score people on whatever subset a partner sends.
SOURCES: dict[str, tuple[str, ...]] = {
    "wearable": ("sleep", "activity", "physiology"),
    "phone": ("phone", "social", "mobility"),
    "check_in": ("self_report",),
}

# The condition a model is trained for decides which way is "worse". In depressive relapse each signal has one worse
# direction (the contract's `worse`); in bipolar disorder manic and depressive episodes move sleep, activity, phone
# use, calls, mobility and mood in opposite directions, so a move away from the person's usual level either way is.
Condition = Literal["depression", "bipolar"]
CONDITIONS: dict[str, frozenset[str]] = {
    "depression": frozenset(),
    "bipolar": frozenset({"sleep", "activity", "phone", "social", "mobility", "self_report"}),
}


@dataclass(frozen=True)
class Signal:
    """One standard daily feature: its unit, valid range and which way is 'worse'."""

    name: str
    unit: str
    low: float
    high: float
    group: str
    description: str
    # +1: higher values usually accompany deterioration; -1: lower values do; 0: no fixed direction.
    worse: Direction


STANDARD_SIGNALS: tuple[Signal, ...] = (
    Signal("sleep_duration_h", "hours", 0, 24, "sleep", "Total time asleep in the main sleep episode ending on this day", -1),
    Signal(
        "sleep_midpoint_h",
        "hours after midnight",
        0,
        24,
        "sleep",
        "Clock time halfway between sleep onset and wake (e.g. 3.5 = 03:30)",
        1,
    ),
    Signal("sleep_efficiency", "fraction", 0, 1, "sleep", "Time asleep divided by time in bed", -1),
    Signal("steps", "steps/day", 0, 100_000, "activity", "Step count over the day", -1),
    Signal("active_minutes", "min/day", 0, 1440, "activity", "Minutes in active bouts", -1),
    Signal("sedentary_minutes", "min/day", 0, 1440, "activity", "Minutes in sedentary bouts while the wearable was worn", 1),
    Signal("screen_time_min", "min/day", 0, 1440, "phone", "Minutes the phone was unlocked", 1),
    Signal("screen_unlocks", "count/day", 0, 2000, "phone", "Number of unlock episodes", 1),
    Signal("night_screen_min", "min/night", 0, 360, "phone", "Minutes unlocked between 00:00 and 06:00", 1),
    Signal("calls_count", "count/day", 0, 500, "social", "Incoming plus outgoing calls", -1),
    Signal("call_duration_min", "min/day", 0, 1440, "social", "Total duration of incoming plus outgoing calls", -1),
    Signal("time_at_home_frac", "fraction", 0, 1, "mobility", "Share of located time spent at home", 1),
    Signal("distance_km", "km/day", 0, 2000, "mobility", "Distance travelled", -1),
    Signal("location_entropy", "nats", 0, 10, "mobility", "Entropy of time spent across significant places", -1),
    Signal("places_visited", "count/day", 0, 200, "mobility", "Distinct significant places visited", -1),
    Signal("resting_hr_bpm", "beats/min", 25, 220, "physiology", "Resting heart rate", 1),
    Signal("hrv_rmssd_ms", "ms", 1, 300, "physiology", "Heart-rate variability, RMSSD during sleep", -1),
    Signal("mood_ema", "0-10 scale (10 = best)", 0, 10, "self_report", "Self-reported mood", -1),
    Signal("anxiety_ema", "0-10 scale (10 = worst)", 0, 10, "self_report", "Self-reported anxiety", 1),
)

SIGNALS: dict[str, Signal] = {s.name: s for s in STANDARD_SIGNALS}
STANDARD_FEATURES: tuple[str, ...] = tuple(SIGNALS)


def source(name: str) -> str | None:
    """The source (wearable, phone, check_in) a standard signal comes from; None for a custom feature."""
    sig = SIGNALS.get(name)
    return next((src for src, groups in SOURCES.items() if sig and sig.group in groups), None)


def worse_direction(name: str, condition: Condition = "depression") -> int:
    """Which way a signal moves when things get worse for this condition: +1, -1, EITHER_WAY, or 0 (no known way)."""
    sig = SIGNALS.get(name)
    if sig is None:
        return 0
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {tuple(CONDITIONS)}, got {condition!r}")
    return EITHER_WAY if sig.group in CONDITIONS[condition] else sig.worse


def feature_columns(columns: list[str] | tuple[str, ...], exclude: tuple[str, ...] = ()) -> list[str]:
    """The feature columns of a daily table: everything but the key columns, in table order."""
    return [c for c in columns if c not in KEY_COLUMNS and c not in exclude]
