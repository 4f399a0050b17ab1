"""Service settings, all from the environment (secrets never from the repository)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from data import prediction_log, state

MODEL_NAME = "relapse-risk"


@dataclass(frozen=True)
class ServeConfig:
    """Where the prediction log lives, where records spool, and whether this is a demo."""

    db_url: str
    spool_dir: Path
    demo: bool
    fsync: bool
    model_tag: str
    rate_limit: str  # per partner, in the `limits` notation: "250/second", or several: "250/second;5000/minute"

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls(
            db_url=prediction_log.url_from_env(),
            spool_dir=Path(os.environ.get("EARLYWARN_SPOOL_DIR") or state.path("spool")).resolve(),
            demo=os.environ.get("EARLYWARN_MODE", "demo") != "production",
            fsync=os.environ.get("EARLYWARN_SPOOL_FSYNC", "0") == "1",
            model_tag=os.environ.get("EARLYWARN_MODEL_TAG", f"{MODEL_NAME}:latest"),
            # Half the measured single-worker capacity: one partner cannot starve the others.
            rate_limit=os.environ.get("EARLYWARN_RATE_LIMIT", "250/second"),
        )


def bentoml_home() -> Path:
    """BENTOML_HOME, defaulting to bentoml/ under the state root so `make run` writes nothing outside it."""
    return Path(os.environ.get("BENTOML_HOME") or state.path("bentoml")).resolve()
