"""`earlywarn evaluate`: a partner's retrospective file through the CLI, a report written and recorded with the model
version; the production promotion gate that asks for such a record on real people (issue 29)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from earlywarn.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture
def registry(served_model, monkeypatch):
    for k, v in served_model.items():
        if not k.startswith("_"):
            monkeypatch.setenv(k, v)
    return served_model["_mlflow_version"]


@pytest.mark.parametrize("design", ["relapse", "case-control"])
def test_a_partners_file_is_evaluated_reported_and_recorded_with_the_version(registry, design, tmp_path):
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig
    from earlywarn.training.external import validations

    partner = synth(SynthConfig(participants=40, days=150, seed=23, design=design), tmp_path / "partner")
    criteria = tmp_path / "criteria.toml"
    criteria.write_text("[criteria]\nmin_people = 30\nmin_events = 5\nmin_auroc_lower = 0.5\n")
    before = len(validations(registry))
    args = ["evaluate", "--features", str(partner.features_path), "--outcomes", str(partner.outcomes_path)]
    done = CliRunner().invoke(
        app, [*args, "--model", registry, "--out", str(tmp_path / "reports"), "--criteria", str(criteria), "--synthetic"]
    )
    assert done.exit_code == 0, done.output
    lines = [line for line in done.output.splitlines() if line.startswith(("met ", "FAIL"))]
    assert len(lines) == 5 and "measured 40" in next(line for line in lines if "min_people" in line)
    [report] = (tmp_path / "reports").glob("*/validation.json")
    record = json.loads(report.read_text())
    assert record["model_version"] == registry and record["real_people"] is False
    assert record["cohort"]["people"] == 40 and set(record["cohort"]["missing_share"]) and len(record["data"]["sha256"]) == 64
    auroc = record["sections"]["discrimination"]
    assert 0 <= auroc["auroc_ci_low"] <= auroc["auroc"] <= auroc["auroc_ci_high"] <= 1
    assert record["sections"]["calibration"]["calibration_slope"] is not None
    episodes = record["sections"]["episodes"]
    if design == "relapse":  # dated events: episode precision and lead times under the service's rules
        assert episodes["alerts_per_100_participant_months"] > 0 and episodes["episode_ppv"] is not None
    html = report.with_name("validation.html").read_text()
    assert "Verdict" in html and "Synthetic data" in html and "calibration.png" in html
    assert {p.name for p in (report.parent / "figures").iterdir()} >= {"roc.png", "calibration.png", "decision_curve.png"}
    records = validations(registry)
    assert len(records) == before + 1 and records[-1]["real_people"] is False and records[-1]["people"] == 40


def test_production_promotion_needs_a_validation_record_on_real_people(registry, tmp_path, monkeypatch):
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig
    from earlywarn.training.promote import _validated_on_real_data

    gate = _validated_on_real_data(registry)
    assert not gate.passed and "no validation record on real people" in gate.detail  # synthetic records do not count
    partner = synth(SynthConfig(participants=30, days=120, seed=5), tmp_path / "clinic")
    args = ["evaluate", "--features", str(partner.features_path), "--outcomes", str(partner.outcomes_path)]
    assert CliRunner().invoke(app, [*args, "--model", registry, "--out", str(tmp_path / "r")]).exit_code == 0
    gate = _validated_on_real_data(registry)
    assert gate.passed and "30 real people" in gate.detail
