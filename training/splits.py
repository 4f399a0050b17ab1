"""Person-level splits stratified by outcome: outer folds (one split, K folds or leave-one-subject-out) and each fold's
inner roles (train, validation, calibration — or cross-fitted calibration when a calibration split would be unusable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from earlywarn.data.windows import WindowSet

Folds = int | Literal["loso"]
SPLIT = {"train": 0.6, "val": 0.15, "calib": 0.1, "test": 0.15}  # one split (folds 0 or 1)
INNER = {"train": 0.7, "val": 0.175, "calib": 0.125}  # within each outer fold's non-test participants
CROSS_FIT_INNER = {"train": 0.8, "val": 0.2}  # the fold's model when calibration is cross-fitted
MIN_CALIB_WINDOWS = 20  # of each class, for a calibration split to be used as it is
MIN_CALIB_PEOPLE = 2  # of each class (participants with / without any positive window)


class TrainingDataError(ValueError):
    """The data cannot support the requested training at all (one class, fewer people than folds)."""


@dataclass
class FoldPlan:
    """Which participants play which role in one outer fold; `cross_fit` is set when calibration is cross-fitted."""

    test: np.ndarray
    train: np.ndarray
    val: np.ndarray
    calib: np.ndarray
    cross_fit: list[dict[str, np.ndarray]] = field(default_factory=list)  # per inner fold: train, val, predict

    @property
    def calibration(self) -> str:
        if self.cross_fit:
            return f"cross-fitted out-of-fold predictions ({len(self.cross_fit)} inner folds)"
        return "calibration split"

    def tuning_people(self) -> set[str]:
        """Everyone whose windows reach fitting, early stopping, calibration or thresholds in this fold."""
        roles = [self.train, self.val, self.calib, *(p for inner in self.cross_fit for p in inner.values())]
        return set().union(*(set(map(str, r)) for r in roles))


def person_strata(windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """Participants that have windows, and whether each has any positive window."""
    codes = windows.participant
    people = np.unique(codes)
    positive = np.zeros(len(windows.panel.participants), bool)
    np.logical_or.at(positive, codes, windows.label.astype(bool))
    return windows.panel.participants[people].astype(str), positive[people]


def stratified_split(people: np.ndarray, strata: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Assign whole participants to named parts in the given shares, each outcome class cut separately so every
    part gets its share of cases and of non-cases."""
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {name: [] for name in fractions}
    for value in (False, True):
        members = np.sort(people[strata == value])
        members = members[rng.permutation(len(members))]
        bounds = np.round(np.cumsum([0.0, *fractions.values()]) * len(members)).astype(int)
        for i, name in enumerate(fractions):
            parts[name] += list(members[bounds[i] : bounds[i + 1]])
    return {name: np.array(sorted(v), dtype=object) for name, v in parts.items()}


def _k_fold(people: np.ndarray, strata: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K person-level folds with the outcome classes spread evenly (scikit-learn's StratifiedGroupKFold)."""
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [people[test] for _, test in cv.split(people, strata.astype(int), groups=people)]


def outer_test_sets(people: np.ndarray, strata: np.ndarray, folds: Folds, seed: int) -> list[np.ndarray]:
    """The held-out participants of each outer fold."""
    if folds == "loso":
        return [np.array([p], dtype=object) for p in sorted(people)]
    if folds < 2:
        return [stratified_split(people, strata, SPLIT, seed)["test"]]
    if len(people) < folds:
        raise TrainingDataError(f"{folds} folds need at least {folds} participants with windows; there are {len(people)}")
    return _k_fold(people, strata, folds, seed)


def _calibration_usable(
    calib: np.ndarray, people: np.ndarray, strata: np.ndarray, windows_per: dict[str, tuple[int, int]]
) -> bool:
    chosen = np.isin(people, calib)
    pos_people, neg_people = int(strata[chosen].sum()), int((~strata[chosen]).sum())
    pos = sum(windows_per[p][1] for p in calib)
    neg = sum(windows_per[p][0] for p in calib)
    return min(pos_people, neg_people) >= MIN_CALIB_PEOPLE and min(pos, neg) >= MIN_CALIB_WINDOWS


def _cross_fit(rest: np.ndarray, strata: np.ndarray, seed: int) -> list[dict[str, np.ndarray]]:
    k = int(min(3, strata.sum(), (~strata).sum()))
    if k < 2:  # one person of a class: two folds, one of which lacks that class (the pooled predictions still hold it)
        k = 2
    inner = []
    for j, held in enumerate(_k_fold(rest, strata, k, seed)):
        others = ~np.isin(rest, held)
        fit = stratified_split(rest[others], strata[others], CROSS_FIT_INNER, seed + 1000 + j)
        inner.append({"train": fit["train"], "val": fit["val"], "predict": held})
    return inner


def plan_folds(windows: WindowSet, folds: Folds, seed: int) -> list[FoldPlan]:
    """Outer folds with their inner roles; nothing tuned in a fold sees that fold's test participants."""
    people, strata = person_strata(windows)
    if strata.all() or not strata.any():
        raise TrainingDataError("every participant's windows hold one outcome class: there is nothing to discriminate")
    counts = np.zeros((len(windows.panel.participants), 2), np.int64)
    np.add.at(counts, (windows.participant, windows.label.astype(np.int64)), 1)
    windows_per = {str(windows.panel.participants[i]): (int(c[0]), int(c[1])) for i, c in enumerate(counts)}
    plans = []
    for k, test in enumerate(outer_test_sets(people, strata, folds, seed)):
        keep = ~np.isin(people, test)
        rest, rest_strata = people[keep], strata[keep]
        if rest_strata.all() or not rest_strata.any():
            raise TrainingDataError(f"fold {k}: the participants left for training hold one outcome class")
        inner = stratified_split(rest, rest_strata, INNER, seed + k)
        plan = FoldPlan(test, inner["train"], inner["val"], inner["calib"])
        if not _calibration_usable(plan.calib, people, strata, windows_per):
            fit = stratified_split(rest, rest_strata, CROSS_FIT_INNER, seed + k)
            plan = FoldPlan(test, fit["train"], fit["val"], np.array([], dtype=object), _cross_fit(rest, rest_strata, seed + k))
        plans.append(plan)
    return plans
