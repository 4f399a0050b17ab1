"""Service settings, all from the environment (secrets never from the repository)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "relapse-risk"
DEFAULT_DB = Path("runs/earlywarn.db")
DEFAULT_SPOOL = Path("runs/spool")
DEFAULT_BENTOML_HOME = Path("runs/bentoml")


@dataclass(frozen=True)
class ServeConfig:
    """Where the prediction log lives, where records spool, and whether this is a demo."""

    db_url: str
    spool_dir: Path
    demo: bool
    fsync: bool
    model_tag: str

    @classmethod
    def from_env(cls) -> ServeConfig:
        db_url = os.environ.get("EARLYWARN_DB_URL") or f"sqlite:///{DEFAULT_DB.resolve()}"
        db_file = os.environ.get("EARLYWARN_DB_URL_FILE")
        if db_file:  # a URL with a password belongs in a file or the environment, never in the repository
            db_url = Path(db_file).read_text().strip()
        return cls(
            db_url=db_url,
            spool_dir=Path(os.environ.get("EARLYWARN_SPOOL_DIR", DEFAULT_SPOOL)).resolve(),
            demo=os.environ.get("EARLYWARN_MODE", "demo") != "production",
            fsync=os.environ.get("EARLYWARN_SPOOL_FSYNC", "0") == "1",
            model_tag=os.environ.get("EARLYWARN_MODEL_TAG", f"{MODEL_NAME}:latest"),
        )


def bentoml_home() -> Path:
    """BENTOML_HOME, defaulting to runs/bentoml inside the project so `make run` writes nothing outside it."""
    return Path(os.environ.get("BENTOML_HOME") or DEFAULT_BENTOML_HOME).resolve()
