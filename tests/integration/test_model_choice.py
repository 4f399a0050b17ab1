"""`earlywarn train` chooses between the sequence model and the logistic baseline by nested participant-grouped CV
for small cohorts (the default `--model auto`), registers the choice and records why (issue 29, item 4)."""

from __future__ import annotations

import json

import mlflow
import pytest
from typer.testing import CliRunner

from earlywarn.cli import app
from earlywarn.training import choose

pytestmark = pytest.mark.slow


def _train(cohort, tmp_path, *extra: str):
    args = ["train", "--features", str(cohort.features_path), "--outcomes", str(cohort.outcomes_path), *extra]
    done = CliRunner().invoke(app, [*args, "--max-epochs", "2", "--out", str(tmp_path / "train")])
    assert done.exit_code == 0, done.output
    [line] = [line for line in done.output.splitlines() if line.startswith("model choice:")]
    return line


def test_auto_chooses_by_nested_cv_on_a_small_cohort_and_records_why(mlflow_uri, tmp_path, monkeypatch):
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig
    from earlywarn.training import tracking

    cohort = synth(SynthConfig(participants=40, days=60, seed=3, design="case-control"), tmp_path / "cohort")
    line = _train(cohort, tmp_path)  # the default is auto, and 40 people is a small cohort
    chosen = line.split()[2]
    assert chosen in choose.CANDIDATES and "nested estimate on unseen people" in line
    tracking.configure()
    info = tracking.version_info(tracking.CHALLENGER)
    assert info is not None and tracking.load_bundle(info.version).kind == choose.CANDIDATES[chosen].kind
    run = mlflow.get_run(info.run_id)
    assert run.data.tags["model_choice"] == chosen
    record = json.loads(mlflow.artifacts.load_text(f"runs:/{info.run_id}/model_choice.json"))
    folds = record["auroc_per_outer_fold"]
    assert {len(v) for v in folds.values()} == {len(record["picked_per_outer_fold"])} == {choose.OUTER_FOLDS}
    assert record["behaviour_weight"] == (0.0 if chosen != "sequence" else 0.1)
    # the rule as stated, recomputed from the recorded per-fold figures
    assert chosen == choose.Comparison(folds).choice
    picked = record["picked_per_outer_fold"]
    assert record["chosen_auroc_per_outer_fold"] == [folds[k][i] for i, k in enumerate(picked)]
    assert run.data.metrics["choice_nested_auroc_auto"] == pytest.approx(sum(record["chosen_auroc_per_outer_fold"]) / 5)

    monkeypatch.setattr(choose, "SMALL_COHORT", 30)  # the same people as a "large" cohort: no choice is made
    line = _train(cohort, tmp_path)
    assert line.startswith("model choice: sequence: 40 participants (more than 30)")
    line = _train(cohort, tmp_path, "--model", "choose")  # unless asked for
    assert "nested estimate" in line


def test_the_one_standard_error_rule():
    def compared(baseline, sequence, no_penalty):
        return choose.Comparison({"baseline": baseline, "sequence": sequence, "sequence_no_penalty": no_penalty})

    flat = [0.70, 0.71, 0.69, 0.72, 0.70]
    ahead = compared(flat, [0.80, 0.82, 0.78, 0.81, 0.79], [0.75, 0.76, 0.74, 0.77, 0.75])
    assert ahead.best() == "sequence" and ahead.choice == "sequence"
    noisy = compared(flat, [0.80, 0.60, 0.75, 0.65, 0.70], [0.60] * 5)  # level with the baseline, give or take
    assert noisy.choice == "baseline"
    close = compared([0.6] * 5, [0.80, 0.82, 0.78, 0.81, 0.79], [0.81, 0.80, 0.79, 0.80, 0.82])  # within one SE
    assert close.best() == "sequence_no_penalty" and close.choice == "sequence"
    tie = compared([0.7, 0.7], [0.7, 0.7], [0.7, 0.7])
    assert tie.choice == "baseline"
    gap = compared([0.7, 0.71, 0.5], [0.6, 0.62, float("nan")], [0.6, 0.6, 0.6])  # the NaN fold is left out of pairs
    assert gap.choice == "baseline" and "baseline chosen, the best" in gap.reason()
