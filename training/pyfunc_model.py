"""MLflow pyfunc wrapper (logged as code, not pickled): long daily table in, one calibrated risk per participant out."""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from data.validation import validate_features
from data.windows import latest_windows
from training.bundle import ModelBundle
from training.calibration import BANDS


class RelapseRiskPyfunc(PythonModel):
    """Scores the window ending on each participant's last day, with the bundle's own preprocessing and calibration."""

    def load_context(self, context: PythonModelContext) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        table = validate_features(model_input, source="model input")
        missing = set(self.bundle.features) - set(table.columns)
        for name in missing:
            table[name] = float("nan")
        ids, values, _ = latest_windows(table, self.bundle.features, self.bundle.window.lookback)
        risk = self.bundle.risk(values)
        bands = self.bundle.bands.assign(risk)
        return pd.DataFrame({"participant_id": ids, "risk": risk, "band": [BANDS[b] for b in bands]})


mlflow.models.set_model(RelapseRiskPyfunc())
