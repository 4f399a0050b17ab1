"""`--since` everywhere: a day (YYYY-MM-DD) or a duration back from now (7d, 24h, 30m)."""

from __future__ import annotations

import datetime as dt

_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def since(text: str, now: dt.datetime | None = None) -> dt.timedelta:
    """How far back `text` reaches from now: a duration as given, or the time since the start of that day (UTC).
    A ValueError names the accepted forms."""
    now = now or dt.datetime.now(dt.UTC)
    value = text.strip()
    if len(value) >= 2 and value[-1] in _UNITS and value[:-1].isdigit():
        return dt.timedelta(**{_UNITS[value[-1]]: int(value[:-1])})
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {text!r}: use a day (2025-03-01) or a duration (7d, 24h, 30m)") from None
    return max(now - dt.datetime.combine(day, dt.time(), dt.UTC), dt.timedelta(0))


def since_day(text: str, now: dt.datetime | None = None) -> dt.date:
    """The first day `text` reaches back to."""
    now = now or dt.datetime.now(dt.UTC)
    return (now - since(text, now)).date()
