"""Training end to end on a tiny cohort: metrics, plots, MLflow run and registry, pyfunc model, promotion gates."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from earlywarn.data.windows import WindowConfig
from earlywarn.training import supply_chain, tracking
from earlywarn.training.fit import FitConfig
from earlywarn.training.promote import PromoteConfig, promote
from earlywarn.training.train import TrainConfig, train

pytestmark = pytest.mark.slow

FLAT_KEYS = {
    "auroc",
    "auroc_ci_low",
    "auroc_ci_high",
    "auprc",
    "auprc_ci_low",
    "auprc_ci_high",
    "brier",
    "ece",
    "balanced_accuracy",
    "mcc",
    "sensitivity",
    "specificity",
    "alerts_per_participant_month",
    "median_lead_time_days",
    "n_participants",
    "n_windows",
    "oracle_auroc",
    # what a care team meets (issue 15, item 7)
    "ppv_high",
    "npv_high",
    "ppv_elevated",
    "npv_elevated",
    "event_sensitivity",
    "alerts_per_100_participant_months",
    "episode_ppv",
    "episode_ppv_ci_low",
    "lead_time_p50_days",
    "event_sensitivity_episodes",
    "high_band_mean_risk",
    "high_band_event_rate",
    "calibration_slope",
    "calibration_intercept",
    "net_benefit_high",
    "interval_coverage",
    "interval_width_mean",
}


REPS = 20  # bootstrap repetitions in promotion: its intervals are not what these tests check


def _cfg(cohort, out: Path, **fit) -> TrainConfig:
    return TrainConfig(
        features=cohort.features_path,
        outcomes=cohort.outcomes_path,
        out=out,
        window=WindowConfig(lookback=28, horizon=14),
        fit=FitConfig(max_epochs=3, progress=False, **fit),
        bootstrap_reps=50,
    )


def test_train_logs_everything_and_registers_a_challenger(small_cohort, mlflow_uri, tmp_path):
    result = train(_cfg(small_cohort, tmp_path / "out"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics) >= FLAT_KEYS and all(isinstance(v, (int, float)) for v in metrics.values())
    assert metrics["auroc_ci_low"] <= metrics["auroc"] <= metrics["auroc_ci_high"]
    assert any(k.startswith("subgroup_platform_ios_") for k in metrics) and "baseline_auroc" in metrics
    ios = "subgroup_platform_ios_auroc"
    assert metrics[f"{ios}_ci_low"] <= metrics[ios] <= metrics[f"{ios}_ci_high"]
    assert metrics["subgroup_gap_platform_ci_low"] <= metrics["subgroup_gap_platform"] <= metrics["subgroup_gap_platform_ci_high"]
    assert 0 <= metrics["ppv_high"] <= 1 and 0 <= metrics["event_sensitivity"] <= 1 and metrics["calibration_slope"] > 0
    assert metrics["ppv_high"] >= metrics["ppv_elevated"] - 0.05 and metrics["npv_elevated"] >= metrics["npv_high"] - 0.05
    for png in ("roc.png", "pr.png", "calibration.png", "decision_curve.png", "trajectories.png"):
        assert (tmp_path / "out" / png).stat().st_size > 5_000
    card = (tmp_path / "out" / "model_card.md").read_text()
    assert "not a diagnosis" in card and "Limitations" in card and f"version {result.model_version}" in card
    assert "risk interval" in card and "calibration slope" in card and "event sensitivity" in card

    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.data.params["model"] == "additive" and run.data.params["window_lookback"] == "28"
    assert len(client.get_metric_history(result.run_id, "val_auroc")) >= 2  # per-epoch
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {
        "metrics.json",
        "reference.parquet",
        "feature_spec.json",
        "model_card.json",
        "roc.png",
        "training_data.json",
    } <= artifacts
    reference = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="reference.parquet"))
    assert {"risk", "band", "steps", "steps__missing", "days_observed"} <= set(reference.columns)
    assert "participant_id" not in reference.columns

    assert tracking.version_info("challenger").version == result.model_version
    model = tracking.load_pyfunc("challenger")
    assert model.metadata.signature is not None
    table = pd.read_parquet(small_cohort.features_path)
    table = table[table["participant_id"].isin(["P00", "P01"])]
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    scored = model.predict(table)
    assert scored["participant_id"].tolist() == ["P00", "P01"]
    assert scored["risk"].between(0, 1).all() and set(scored["band"]) <= {"low", "elevated", "high"}


def test_promotion_gates_and_rollback(small_cohort, mlflow_uri, tmp_path):
    first = train(_cfg(small_cohort, tmp_path / "a"))
    # A first model has no champion to beat, so it must clear a floor: here too few held-out events to judge it.
    floor = promote(PromoteConfig(max_ece=0.2, bootstrap_reps=REPS))
    assert not floor.promoted and "events" in {g.name for g in floor.failed} and tracking.version_info("champion") is None
    with pytest.raises(ValueError, match="--force needs --reason"):
        promote(PromoteConfig(max_ece=0.2, force=True, bootstrap_reps=REPS))
    forced = promote(
        PromoteConfig(max_ece=0.2, force=True, forced_by="dr.ana", reason="pilot on 80 synthetic people", bootstrap_reps=REPS)
    )
    assert forced.promoted and forced.champion == first.model_version and "overriding events (by dr.ana" in forced.message
    tags = MlflowClient().get_model_version("relapse-risk", first.model_version).tags
    assert tags["promotion_override_by"] == "dr.ana" and tags["promotion_override_reason"] == "pilot on 80 synthetic people"
    assert "events" in tags["promotion_override_gates"] and tags["promotion_override_at"]
    # A network that has barely started learning, on a week of days without a personal baseline, must not replace a
    # trained one (untrained weights over informative deviation inputs can rank well by chance, so the weak model
    # also gets weak inputs).
    weak = train(
        replace(
            _cfg(small_cohort, tmp_path / "b", lr=1e-6),
            compare_baseline=False,
            window=WindowConfig(lookback=7, min_observed_days=3, baseline_days=0),
            fit=FitConfig(max_epochs=1, lr=1e-6, progress=False, seed=1),
        )
    )
    refused = promote(PromoteConfig(max_ece=0.2, bootstrap_reps=REPS))
    assert not refused.promoted and tracking.version_info("champion").version == first.model_version
    assert "auroc" in {g.name for g in refused.failed} and "auroc gate failed" in refused.message
    assert refused.challenger == weak.model_version
    third = train(replace(_cfg(small_cohort, tmp_path / "c"), compare_baseline=False))
    ok = promote(PromoteConfig(max_ece=0.2, auroc_tolerance=0.5, max_subgroup_drop=0.5, bootstrap_reps=REPS))
    assert ok.promoted and tracking.version_info("champion").version == third.model_version
    back = promote(PromoteConfig(rollback=True, bootstrap_reps=REPS))
    assert back.promoted and tracking.version_info("champion").version == first.model_version
    # Each decision left a signed record; the newest names the champion, so packaging accepts it.
    tagged = tracking.promotion_records()
    newest = supply_chain.newest_record(tagged)
    assert newest is not None and (newest.action, newest.version) == ("rollback", first.model_version)
    assert set(tagged) == {first.model_version, third.model_version}  # the weak one was never promoted
    strict = promote(PromoteConfig(max_ece=0.0001, auroc_tolerance=0.5, max_subgroup_drop=0.5, bootstrap_reps=REPS))
    assert not strict.promoted and [g.name for g in strict.failed] == ["ece"]
