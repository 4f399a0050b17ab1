"""`forget(cfg) -> ForgetResult`: consent withdrawn — delete what the service holds, record which models saw them."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from data import prediction_log
from data.pseudonym import Pseudonymizer
from training import tracking


@dataclass(frozen=True)
class ForgetConfig:
    db_url: str
    partner: str
    participant_id: str  # the partner's own id; it is pseudonymised here exactly as the service does
    demo: bool = True


@dataclass
class ForgetResult:
    participant_key: str
    predictions_deleted: int
    outcomes_deleted: int
    models_trained_before: list[str]


def forget(cfg: ForgetConfig) -> ForgetResult:
    """Delete the participant's logged inputs, predictions and outcomes; record the withdrawal with every registered
    model version trained before it (they may have learned from this person) and tag those versions in MLflow."""
    key = Pseudonymizer.from_env(cfg.demo)(cfg.partner, cfg.participant_id)
    tracking.configure()
    client = MlflowClient()
    versions = sorted(
        (v.version for v in client.search_model_versions(f"name='{tracking.REGISTERED_MODEL}'")), key=lambda v: int(v)
    )
    engine = prediction_log.engine_for(cfg.db_url)
    prediction_log.create_schema(engine)
    n_pred, n_out = prediction_log.forget(engine, cfg.partner, key, versions)
    for v in versions:
        # Only counts: the tag must not become a list of who withdrew.
        current = client.get_model_version(tracking.REGISTERED_MODEL, v).tags.get("earlywarn.withdrawals_after_training", "0")
        client.set_model_version_tag(tracking.REGISTERED_MODEL, v, "earlywarn.withdrawals_after_training", str(int(current) + 1))
    return ForgetResult(key, n_pred, n_out, versions)
