"""MLflow pyfunc wrapper (logged as code, not pickled): long daily table in, each participant's status and risk out."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from earlywarn.data.validation import validate_features
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.scoring import OUTPUTS, histories_from_frame, score_histories


class RelapseRiskPyfunc(PythonModel):
    """Scores the window ending on each participant's last day through the one scoring core."""

    def load_context(self, context: PythonModelContext) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return score_table(self.bundle, model_input)


def score_table(bundle: ModelBundle, table: pd.DataFrame) -> pd.DataFrame:
    """What the data contract accepts (dates or ISO strings; absent signals are missing) -> one row per participant."""
    typed = validate_features(table, source="model input")
    histories = histories_from_frame(typed, bundle.features, bundle.input_days)
    s = score_histories(bundle, histories)
    columns = {
        "participant_id": histories.participant_ids,
        "window_end": [d.isoformat() for d in histories.end_dates],
        "status": s.status,
        "reason": s.reason,
        "risk": s.risk.astype(np.float64),
        "risk_low": s.risk_low.astype(np.float64),
        "risk_high": s.risk_high.astype(np.float64),
        "band": s.band,
    }
    return pd.DataFrame({name: columns[name] for name, _, _ in OUTPUTS})  # exactly the signature's outputs


mlflow.models.set_model(RelapseRiskPyfunc())
