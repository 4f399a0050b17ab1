"""Partners that send only some sources: every non-empty subset of the contract sources a model's features come from."""

from __future__ import annotations

import itertools

from earlywarn.data.contract import SOURCES, source

PROFILE_WINDOWS = 30_000  # windows each profile is scored on (a seeded sample of larger sets)


def source_subsets(features: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of the contract sources among `features`, the full set first."""
    names = [s for s in SOURCES if any(source(f) == s for f in features)]
    return [tuple(c) for k in range(len(names), 0, -1) for c in itertools.combinations(names, k)]
