"""Small case-control cohorts train under K-fold and leave-one-subject-out on every seed, nested, with person-level
metrics; an impossible task is one clear line from the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import earlywarn.training.fold_fit as fold_module
import earlywarn.training.train as train_module
from earlywarn.cli import app
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import SynthConfig
from earlywarn.data.windows import WindowConfig
from earlywarn.training.fit import FitConfig
from earlywarn.training.train import TrainConfig, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def case_control(tmp_path_factory):
    """30 people, 40% cases, 60 days each: the size of a real case-control actigraphy study."""
    return synth(SynthConfig(participants=30, days=60, seed=5, design="case-control"), tmp_path_factory.mktemp("cc"))


def _cfg(cohort, out: Path, folds, seed: int) -> TrainConfig:
    return TrainConfig(
        features=cohort.features_path,
        outcomes=cohort.outcomes_path,
        window=WindowConfig(lookback=7, min_observed_days=1),
        fit=FitConfig(max_epochs=1, progress=False, seed=seed, hparams={"hidden": 8}),
        cv_folds=folds,
        compare_baseline=False,
        bootstrap_reps=10,
        register=False,
        log_model=False,
        out=out,
    )


@pytest.mark.parametrize("folds", [5, "loso"])
def test_thirty_person_case_control_trains_on_every_seed_with_nested_folds(
    case_control, folds, mlflow_uri, tmp_path, monkeypatch
):
    seen: list[set[str]] = []  # per fold: every participant a fit_net call was given (training or early stopping)
    tuned: list[set[str]] = []  # per fold: the participants calibration, bands and thresholds were fitted on
    real_fold, real_fit, real_calibrate = train_module.train_fold, fold_module.fit_net, fold_module._fit_and_calibrate

    def spy_fold(*args, **kw):
        seen.append(set())
        return real_fold(*args, **kw)

    def spy_fit(cfg, train_set, val_set, **kw):
        seen[-1].update(map(str, train_set.participant_id), map(str, val_set.participant_id))
        return real_fit(cfg, train_set, val_set, **kw)

    def spy_calibrate(*args, **kw):
        fitted = real_calibrate(*args, **kw)
        tuned.append(set(map(str, fitted.tuning.participant_id)))
        return fitted

    monkeypatch.setattr(train_module, "train_fold", spy_fold)
    monkeypatch.setattr(fold_module, "fit_net", spy_fit)
    monkeypatch.setattr(fold_module, "_fit_and_calibrate", spy_calibrate)
    # Leave-one-subject-out fits 30 folds, each with cross-fitted calibration: three seeds of it are enough to show
    # no seed crashes it, at a third of the suite's time for five.
    for seed in range(5 if folds == 5 else 3):
        seen.clear(), tuned.clear()
        result = train(_cfg(case_control, tmp_path / f"{folds}-{seed}", folds, seed))
        m = result.metrics
        assert m["n_folds"] == (5 if folds == 5 else 30) == len(result.folds) == len(tuned) == len(seen)
        assert m["person_n"] == 30 and 0 <= m["person_auroc"] <= 1 and np.isfinite(m["person_mcc"])
        assert m["folds_cross_fitted_calibration"] >= 1
        for k, plan in enumerate(result.folds):
            test = set(map(str, plan.test))
            assert not test & seen[k], f"fold {k} fit or stopped early on test people"
            assert not test & tuned[k], f"fold {k} calibrated or thresholded on test people"
            assert seen[k] and tuned[k]
    card = (tmp_path / f"{folds}-{seed}" / "model_card.md").read_text()
    assert "cross-fitted" in card and "synthetic" in card


def test_cli_says_in_one_line_when_the_task_is_impossible(tmp_path):
    cohort = synth(SynthConfig(participants=6, days=40, seed=1, design="case-control"), tmp_path / "c")
    args = ["train", "--features", str(cohort.features_path), "--outcomes", str(cohort.outcomes_path)]
    res = CliRunner().invoke(app, [*args, "--lookback", "7", "--min-observed-days", "1", "--cv-folds", "12"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[-1].startswith("error: 12 folds need at least 12 participants")
    assert "Traceback" not in res.output
