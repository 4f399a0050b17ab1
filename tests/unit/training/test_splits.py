"""Person-level splits: stratified by outcome, disjoint, leave-one-subject-out, cross-fitted calibration when needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.data.validation import validate_features, validate_outcomes
from earlywarn.data.windows import WindowConfig, build_windows
from earlywarn.training.splits import INNER, TrainingDataError, person_strata, plan_folds, stratified_split


def _case_control(n: int, cases: int, days: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n)]
    dates = pd.date_range("2025-01-01", periods=days)
    feats = pd.DataFrame(
        {"participant_id": np.repeat(ids, days), "date": np.tile(dates, n), "steps": rng.uniform(2000, 12000, n * days)}
    )
    label = np.repeat((np.arange(n) < cases).astype(int), days)
    labels = feats[["participant_id", "date"]].assign(label=label)
    return build_windows(validate_features(feats), validate_outcomes(labels), WindowConfig(lookback=7, min_observed_days=1))


def test_stratified_split_gives_every_part_its_share_of_each_class():
    people = np.array([f"p{i}" for i in range(40)], dtype=object)
    strata = np.arange(40) < 16
    parts = stratified_split(people, strata, {"a": 0.5, "b": 0.25, "c": 0.25}, seed=3)
    assert sorted(np.concatenate(list(parts.values()))) == sorted(people)
    cases = {k: int(np.isin(v, people[strata]).sum()) for k, v in parts.items()}
    assert cases == {"a": 8, "b": 4, "c": 4}
    assert stratified_split(people, strata, {"a": 0.5, "b": 0.25, "c": 0.25}, seed=3)["b"].tolist() == parts["b"].tolist()


@pytest.mark.parametrize("folds", [5, "loso", 0])
@pytest.mark.parametrize("seed", range(5))
def test_small_case_control_plans_are_nested_and_stratified(folds, seed):
    windows = _case_control(30, 12, seed=seed)
    plans = plan_folds(windows, folds, seed)
    people, strata = person_strata(windows)
    tested = np.concatenate([p.test for p in plans])
    if folds != 0:
        assert sorted(tested) == sorted(people)  # out-of-fold predictions on every participant
    assert len(plans) == {5: 5, "loso": 30, 0: 1}[folds]
    for plan in plans:
        assert not set(map(str, plan.test)) & plan.tuning_people(), "a test participant reached tuning"
        if folds == 5:  # each fold holds cases and controls in proportion
            assert 2 <= np.isin(plan.test, people[strata]).sum() <= 3
        if plan.cross_fit:  # cross-fitting predicts every non-test participant exactly once
            predicted = np.concatenate([inner["predict"] for inner in plan.cross_fit])
            assert sorted(predicted) == sorted(set(people) - set(plan.test))
            assert all(not set(inner["predict"]) & (set(inner["train"]) | set(inner["val"])) for inner in plan.cross_fit)
            assert len(plan.calib) == 0
    assert any(p.cross_fit for p in plans), "30 people leave too small a calibration split: it must be cross-fitted"


def test_a_large_cohort_keeps_its_calibration_split():
    plans = plan_folds(_case_control(200, 80, days=40), 0, 0)
    assert not plans[0].cross_fit and len(plans[0].calib) == pytest.approx(0.85 * 200 * INNER["calib"], abs=2)


def test_impossible_tasks_say_why():
    with pytest.raises(TrainingDataError, match="one outcome class"):
        plan_folds(_case_control(10, 0), 5, 0)
    with pytest.raises(TrainingDataError, match="at least 12 participants"):
        plan_folds(_case_control(10, 4), 12, 0)
