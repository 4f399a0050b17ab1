"""Windows as partners that send only some sources would send them: every non-empty subset of the model's sources."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from data.contract import SOURCES, source
from data.windows import WindowSet

PROFILE_WINDOWS = 30_000  # windows each profile is scored on (a seeded sample of larger sets)


def source_subsets(features: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of the contract sources among `features`, the full set first."""
    names = [s for s in SOURCES if any(source(f) == s for f in features)]
    return [tuple(c) for k in range(len(names), 0, -1) for c in itertools.combinations(names, k)]


def keep_only(history: np.ndarray, features: list[str], sources: tuple[str, ...]) -> np.ndarray:
    """A copy of [B, D, F] histories with every contract signal outside `sources` never sent (custom features stay)."""
    out = history.copy()
    out[:, :, [j for j, f in enumerate(features) if source(f) is not None and source(f) not in sources]] = np.nan
    return out


def as_profiles(
    windows: WindowSet, features: list[str], days: int, seed: int = 0, cap: int = PROFILE_WINDOWS
) -> Iterator[tuple[tuple[str, ...], np.ndarray, np.ndarray]]:
    """(sources, [B, days, F] histories with only those sources, [B] labels) for every source subset, on the same
    windows (at most `cap` of them, seeded)."""
    if len(windows) > cap:
        windows = windows.subset(np.sort(np.random.default_rng(seed).choice(len(windows), cap, replace=False)))
    history = windows.history(None, days)
    for sources in source_subsets(features):
        yield sources, keep_only(history, features, sources), windows.label
