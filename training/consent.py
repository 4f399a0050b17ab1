"""`forget(cfg) -> ForgetResult`: consent withdrawn — delete what the service holds, record which models saw them."""

from __future__ import annotations

from dataclasses import dataclass

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
    versions = tracking.model_versions()
    engine = prediction_log.engine_for(cfg.db_url)
    prediction_log.create_schema(engine)
    n_pred, n_out = prediction_log.forget(engine, cfg.partner, key, versions)
    tracking.count_withdrawal(versions)
    return ForgetResult(key, n_pred, n_out, versions)
