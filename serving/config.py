"""Service settings, all from the environment (secrets never from the repository)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from data import prediction_log, state
from data.pseudonym import env_secret, run_mode

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
    day_limit: str  # per partner, participant-days scored (a request's cost is its number of days)
    outcome_limit: str  # per partner, outcomes reported
    auth_failure_limit: str  # per client address, failed authentications; beyond it every request is refused
    queue_limit: int  # participants waiting to be scored on this worker; beyond it, 503 with Retry-After
    ops_token: str | None  # bearer token for /metrics and /v1/status (production: required to read them)

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls(
            db_url=prediction_log.url_from_env(),
            spool_dir=Path(os.environ.get("EARLYWARN_SPOOL_DIR") or state.path("spool")).resolve(),
            demo=run_mode() == "demo",
            fsync=flag("EARLYWARN_SPOOL_FSYNC", default=False),
            model_tag=os.environ.get("EARLYWARN_MODEL_TAG", f"{MODEL_NAME}:latest"),
            # Half the measured single-worker capacity: one partner cannot starve the others.
            rate_limit=os.environ.get("EARLYWARN_RATE_LIMIT", "250/second"),
            # A full request (1,000 participants x 90 days) must fit; about half a worker's measured capacity.
            day_limit=os.environ.get("EARLYWARN_DAY_LIMIT", "90000/second;1000000/minute"),
            outcome_limit=os.environ.get("EARLYWARN_OUTCOME_LIMIT", "10000/minute;200000/day"),
            auth_failure_limit=os.environ.get("EARLYWARN_AUTH_FAILURE_LIMIT", "20/minute"),
            queue_limit=int(os.environ.get("EARLYWARN_QUEUE_LIMIT", "20000")),
            ops_token=env_secret("EARLYWARN_OPS_TOKEN"),
        )


def flag(name: str, default: bool) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (any case); anything else is refused, naming the variable."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r}: use true or false")


def bentoml_home() -> Path:
    """BENTOML_HOME, defaulting to bentoml/ under the state root so `make run` writes nothing outside it."""
    return Path(os.environ.get("BENTOML_HOME") or state.path("bentoml")).resolve()
